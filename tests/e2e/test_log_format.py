"""`--log-format json` (or BASTION_LOG_FORMAT=json): every line a real `bastion` writes on stderr
is one JSON object, and the findings and refusals carry server, tool, rule, client and request_id
as fields, not only inside the message."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BASTION, PYTHON, child_env
from tests.e2e.support import free_port
from tests.e2e.test_first_run import INITIALIZE
from tests.e2e.test_screening import POISONED

pytestmark = [pytest.mark.e2e]

FRAMES: list[dict[str, object]] = [
    INITIALIZE,
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "tools/call",
        "params": {"name": "get_forecast", "arguments": {"city": "Oslo"}},
    },
]


def _run(home: Path, args: list[str], frames: list[dict[str, object]], env: dict[str, str] | None = None) -> Any:
    stdin = "".join(json.dumps(frame) + "\n" for frame in frames)
    return subprocess.run(
        [*BASTION, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**child_env(home), **(env or {})},
        timeout=90,
        check=False,
    )


def _records(stderr: str) -> list[dict[str, Any]]:
    """Every stderr line, parsed: a line that is not one JSON object fails the test."""
    records: list[dict[str, Any]] = []
    for line in stderr.splitlines():
        record = json.loads(line)
        assert isinstance(record, dict), line
        records.append(record)  # pyright: ignore[reportUnknownArgumentType]
    return records


def test_a_wrapped_server_logs_findings_and_refusals_as_json_lines_with_fields(home: Path) -> None:
    args = ["--log-format", "json", "wrap", "--name", "weather", "--log-level", "info", "--deny", "get_forecast"]
    done = _run(home, [*args, "--", PYTHON, str(POISONED)], FRAMES)
    assert done.returncode == 0, done.stderr
    replies = {reply["id"]: reply for reply in map(json.loads, done.stdout.splitlines())}
    assert "error" in replies[3]  # the denied tool is refused
    records = _records(done.stderr)
    assert records
    for record in records:
        assert {"time", "level", "logger", "message"} <= record.keys()
    findings = [r for r in records if r["logger"] == "bastion.findings" and r.get("tool") == "get_weather"]
    assert findings, records
    assert all(r["server"] == "weather" and r["rule"] and r["level"] == "warning" for r in findings)
    assert str(POISONED) not in json.dumps(findings)
    refusals = [r for r in records if r["logger"] == "bastion.refusals"]
    assert len(refusals) == 1, records
    refusal = refusals[0]
    assert refusal["server"] == "weather"
    assert refusal["tool"] == "get_forecast"
    assert refusal["rule"] == "tools.deny"
    assert refusal["client"] == "local"
    assert refusal["request_id"] == 3
    assert "Oslo" not in json.dumps(records)  # arguments never reach the log


def test_the_environment_variable_chooses_json_and_errors_are_json_lines_too(home: Path, tmp_path: Path) -> None:
    done = _run(home, ["run", "--config", str(tmp_path / "missing.toml")], [], {"BASTION_LOG_FORMAT": "json"})
    assert done.returncode == 2
    (record,) = _records(done.stderr)
    assert record["level"] == "error"
    assert record["message"].startswith("invalid configuration")


def test_text_stays_the_default_line_format(home: Path) -> None:
    done = _run(home, ["wrap", "--name", "weather", "--", PYTHON, str(POISONED)], FRAMES[:3])
    lines = [line for line in done.stderr.splitlines() if "bastion.findings" in line]
    assert lines
    assert all(line.startswith("bastion WARNING bastion.findings: finding ") for line in lines), lines


def test_serve_on_a_taken_port_is_one_clear_error_in_either_format(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "bastion.toml"
    config.write_text("[http]\nopen = true\n", encoding="utf-8")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        as_json = _run(home, ["--log-format", "json", "serve", "--config", str(config), "--listen", listen], [])
        as_text = _run(home, ["serve", "--config", str(config), "--listen", listen], [])
    assert as_json.returncode == as_text.returncode == 1
    (record,) = _records(as_json.stderr)
    assert record["level"] == "error"
    assert f"cannot listen on {listen}" in record["message"]
    assert "serving MCP" not in as_json.stderr
    assert as_text.stderr.startswith(f"bastion: cannot listen on {listen}: ")
    assert "Traceback" not in as_text.stderr


def test_serve_announces_where_it_listens_as_a_json_line(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "bastion.toml"
    config.write_text("[http]\nopen = true\n", encoding="utf-8")
    port = free_port()
    argv = [*BASTION, "--log-format", "json", "serve", "--config", str(config), "--listen", f"127.0.0.1:{port}"]
    with subprocess.Popen(argv, env=child_env(home), stderr=subprocess.PIPE, text=True) as gateway:
        try:
            assert gateway.stderr is not None
            first = json.loads(gateway.stderr.readline())
        finally:
            gateway.terminate()
            gateway.wait(timeout=30)
    assert first["logger"] == "bastion.announce"
    assert first["url"] == f"http://127.0.0.1:{port}/mcp"
