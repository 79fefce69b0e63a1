"""Watching before blocking, end to end: a real gateway (`bastion run`) in front of a real subprocess
server in monitor mode lets a call its policy refuses through and records it as not enforced; a
candidate policy decided beside it shows up in `bastion policy shadow`; `bastion policy promote`
makes it live and is an audit entry naming who and why; the log still verifies."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import mcp_types as mt
import pytest
from mcp.shared.exceptions import MCPError

from bastion.codes import DENIED
from tests.conftest import BASTION, PYTHON, child_env
from tests.e2e.support import through_stdio

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

VULNERABLE = Path(__file__).parents[1] / "servers" / "vulnerable.py"


def server_table(db: Path, allow: str) -> str:
    return (
        f'[servers.bad]\ncommand = "{PYTHON}"\nargs = ["{VULNERABLE}", "{db}"]\n'
        'grants = ["exec"]\n'
        f"[servers.bad.commands]\nallow = {allow}\n"
    )


@pytest.fixture
def configs(tmp_path: Path) -> tuple[Path, Path]:
    """A live config in monitor mode naming a candidate that no longer allows `echo`."""
    db = tmp_path / "db.sqlite"
    config = tmp_path / "bastion.toml"
    candidate = tmp_path / "candidate.toml"
    live = server_table(db, '{ echo = ["[A-Za-z0-9 ]*"] }')
    config.write_text('[policy]\nmode = "monitor"\ncandidate = "candidate.toml"\n' + live, encoding="utf-8")
    candidate.write_text(server_table(db, '{ printf = ["[a-z]+"] }'), encoding="utf-8")
    return config, candidate


def bastion(home: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BASTION, *args], input=stdin, capture_output=True, text=True, env=child_env(home), timeout=120, check=False
    )


def entries(home: Path, kind: str) -> list[dict[str, Any]]:
    found = bastion(home, "audit", "search", "--kind", kind, "--json")
    assert found.returncode == 0, found.stderr
    return [json.loads(line) for line in found.stdout.splitlines()]


def text(result: mt.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, mt.TextContent))


async def test_monitor_mode_lets_a_refused_call_through_and_records_it(home: Path, configs: tuple[Path, Path]) -> None:
    config, candidate = configs
    async with through_stdio(home, ["run", "--config", str(config)]) as client:
        monitored = await client.call_tool("run_command", {"command": "echo monitored; echo through"})
        assert "through" in text(monitored)  # the policy refuses shell syntax; monitor mode let it run
        fine = await client.call_tool("run_command", {"command": "echo fine"})
        assert text(fine).strip() == "fine"

    intents = {entry["decision"]["rule"]: entry for entry in entries(home, "call.intent")}
    recorded = intents["commands.metacharacter"]
    assert recorded["decision"]["action"] == "deny"
    assert recorded["decision"]["enforced"] is False
    assert recorded["decision"]["candidate"]["rule"] == "commands.metacharacter"
    assert intents["grant.exec"]["decision"]["candidate"]["rule"] == "commands.executable"
    assert "enforced" not in intents["grant.exec"]["decision"]
    outcomes = [entry for entry in entries(home, "call.outcome") if entry["intent"] == recorded["index"]]
    assert [entry["status"] for entry in outcomes] == ["ok"]
    assert entries(home, "call.denied") == []  # nothing was refused
    [start] = entries(home, "gateway.start")
    assert start["monitor"] == ["bad"]
    assert start["candidate"]["file"] == str(candidate)

    shadow = bastion(home, "policy", "shadow", "--since", "1h", "--json")
    assert shadow.returncode == 0, shadow.stderr
    [row] = [json.loads(line) for line in shadow.stdout.splitlines()]
    assert (row["tool"], row["live"], row["candidate"], row["candidate_rule"]) == (
        "run_command", "allow", "deny", "commands.executable",
    )  # fmt: skip
    assert row["arguments"] == {"command": "echo fine"}
    assert "2 calls decided under both policies; 1 differently" in shadow.stderr

    promoted = bastion(
        home, "policy", "promote", "--config", str(config), "--reason", "echo is not needed (CHG-7)", "--by", "alice"
    )
    assert promoted.returncode == 0, promoted.stderr
    assert config.read_text(encoding="utf-8") == candidate.read_text(encoding="utf-8")
    [change] = entries(home, "policy.change")
    assert (change["change"], change["reason"]) == ("promote", "echo is not needed (CHG-7)")
    assert change["by"] == "alice"
    assert change["os_user"]  # who ran the command, beside who is named as approving it
    assert change["from_sha256"] != change["to_sha256"]
    assert change["monitor"] == []
    verified = bastion(home, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr

    async with through_stdio(home, ["run", "--config", str(config)]) as client:
        with pytest.raises(MCPError) as caught:  # the promoted policy, enforced now
            await client.call_tool("run_command", {"command": "echo fine"})
    assert caught.value.error.code == DENIED
    assert caught.value.error.data == {"rule": "commands.executable"}


async def test_the_gateway_warns_loudly_at_start_in_monitor_mode(home: Path, configs: tuple[Path, Path]) -> None:
    config, _candidate = configs
    started = bastion(home, "run", "--config", str(config), "--log-level", "error")
    assert "server 'bad' runs in MONITOR mode" in started.stderr


async def test_an_invalid_candidate_stops_the_gateway_with_file_and_line(
    home: Path, configs: tuple[Path, Path]
) -> None:
    config, candidate = configs
    candidate.write_text(candidate.read_text(encoding="utf-8") + 'grants = ["fly"]\n', encoding="utf-8")
    started = bastion(home, "run", "--config", str(config))
    assert started.returncode != 0
    assert str(candidate) in started.stderr
    assert "line 7" in started.stderr or ":7" in started.stderr, started.stderr
    missing = bastion(home, "run", "--config", str(config), "--candidate", str(candidate.with_name("none.toml")))
    assert missing.returncode != 0
    assert "none.toml" in missing.stderr
