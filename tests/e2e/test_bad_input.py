"""Bad input from a client: a clear JSON-RPC error or a logged drop, never a crash, never forwarded."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BASTION, PYTHON, child_env

pytestmark = [pytest.mark.e2e]

INIT = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}


def exchange(home: Path, tmp_path: Path, lines: list[bytes]) -> list[dict[str, Any]]:
    """Send raw lines to `bastion wrap` (after a handshake) and collect every frame it answers."""
    handshake = [
        json.dumps({"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": INIT}).encode(),
        b'{"jsonrpc": "2.0", "method": "notifications/initialized"}',
    ]
    closing = json.dumps({"jsonrpc": "2.0", "id": "last", "method": "ping"}).encode()
    stdin = b"\n".join([*handshake, *lines, closing]) + b"\n"
    argv = [*BASTION, "wrap", "--", PYTHON, "-m", "bastion.demo.server", str(tmp_path)]
    done = subprocess.run(argv, input=stdin, capture_output=True, env=child_env(home), timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def error_codes(frames: list[dict[str, Any]]) -> list[int]:
    return [frame["error"]["code"] for frame in frames if "error" in frame]


def test_malformed_json_and_invalid_json_rpc_get_errors_and_the_session_goes_on(home: Path, tmp_path: Path) -> None:
    frames = exchange(
        home,
        tmp_path,
        [
            b"{this is not json",
            b"[1, 2, 3]",
            b'"a string"',
            b'{"jsonrpc": "1.0", "id": 5, "method": "ping"}',
            b'{"jsonrpc": "2.0", "id": true, "method": "ping"}',
            b'{"jsonrpc": "2.0", "id": 6, "method": "tools/list", "params": [1]}',
        ],
    )
    assert error_codes(frames) == [-32700, -32600, -32600, -32600, -32600, -32602]
    assert frames[-1] == {"jsonrpc": "2.0", "id": "last", "result": {}}


def test_unknown_methods_are_method_not_found(home: Path, tmp_path: Path) -> None:
    frames = exchange(home, tmp_path, [b'{"jsonrpc": "2.0", "id": 7, "method": "tools/frobnicate"}'])
    assert [frame["error"]["code"] for frame in frames if frame.get("id") == 7] == [-32601]


def test_an_oversized_frame_is_refused_without_buffering_it_and_the_next_frame_works(
    home: Path, tmp_path: Path
) -> None:
    huge = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 8,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "x" * (5 << 20)}},
        }
    )
    echo = json.dumps(
        {"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "small"}}}
    )
    frames = exchange(home, tmp_path, [huge.encode(), echo.encode()])
    refused = [frame for frame in frames if frame.get("id") == 8]
    assert [frame["error"]["code"] for frame in refused] == [-32600]
    answered = [frame for frame in frames if frame.get("id") == 9]
    assert answered[0]["result"]["content"][0]["text"] == "small"


def test_frames_nested_too_deep_are_refused(home: Path, tmp_path: Path) -> None:
    deep: Any = "x"
    for _ in range(100):
        deep = [deep]
    frame = {
        "jsonrpc": "2.0",
        "id": 10,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": deep}},
    }
    frames = exchange(home, tmp_path, [json.dumps(frame).encode()])
    assert [f["error"]["code"] for f in frames if f.get("id") == 10] == [-32600]


def test_requests_before_initialize_are_refused(home: Path, tmp_path: Path) -> None:
    argv = [*BASTION, "wrap", "--", PYTHON, "-m", "bastion.demo.server", str(tmp_path)]
    stdin = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode() + b"\n"
    done = subprocess.run(argv, input=stdin, capture_output=True, env=child_env(home), timeout=60, check=False)
    frames = [json.loads(line) for line in done.stdout.splitlines()]
    assert error_codes(frames) == [-32600]


def test_an_invalid_config_exits_2_naming_file_line_and_fix(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "bastion.toml"
    config.write_text('[gateway]\ninstance = "x"\n\n[servers.fs]\ncommand = "npx"\nargz = ["-y"]\n', encoding="utf-8")
    done = subprocess.run(
        [*BASTION, "run", "--config", str(config)], capture_output=True, env=child_env(home), timeout=60, check=False
    )
    assert done.returncode == 2
    message = done.stderr.decode()
    assert f"{config}:6" in message
    assert "servers.fs.argz" in message
    assert "fix:" in message


def test_a_granted_root_that_does_not_exist_is_refused_at_start_naming_it(home: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    argv = [*BASTION, "wrap", "--fs-read", str(missing), "--", PYTHON, "-m", "bastion.demo.server", str(tmp_path)]
    done = subprocess.run(argv, input=b"", capture_output=True, env=child_env(home), timeout=60, check=False)
    assert done.returncode == 2
    assert b"fs_read" in done.stderr
    assert str(missing).encode() in done.stderr
