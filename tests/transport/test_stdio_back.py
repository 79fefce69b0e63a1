"""A stdio server starts with an allowlisted environment and stops within bounded waits."""

from __future__ import annotations

import sys

import anyio
import pytest

from bastion.config.model import ServerConfig
from bastion.transport.stdio_back import StdioServer, plain_launch, server_environment

pytestmark = pytest.mark.anyio

PRINT_ENV = (
    "import json, os, sys; "
    "sys.stdout.write(json.dumps({'jsonrpc': '2.0', 'method': 'env', 'params': dict(os.environ)}) + '\\n'); "
    "sys.stdout.flush(); sys.stdin.read()"
)


def test_only_allowlisted_passed_through_and_fixed_variables_reach_a_server() -> None:
    environ = {
        "PATH": "/usr/bin",
        "HOME": "/home/u",
        "AWS_SECRET_ACCESS_KEY": "nope",
        "GITHUB_TOKEN": "nope",
        "MY_VAR": "1",
    }
    server = ServerConfig(command="x", env_pass=("MY_VAR",), env={"MODE": "demo"})
    assert server_environment(server, environ) == {"PATH": "/usr/bin", "HOME": "/home/u", "MY_VAR": "1", "MODE": "demo"}


async def test_a_real_child_sees_no_ambient_secrets() -> None:
    environ = {"PATH": "/usr/bin:/bin", "SECRET_TOKEN": "must-not-leak"}
    server = ServerConfig(command=sys.executable, args=("-c", PRINT_ENV))
    launch = plain_launch(server, server_environment(server, environ))
    child = await StdioServer.start("envprinter", launch, max_bytes=1 << 20, max_depth=64)
    try:
        with anyio.fail_after(10):
            frame = await child.receive()
        assert isinstance(frame, dict)
        seen = frame["params"]
        assert "SECRET_TOKEN" not in seen
        assert seen["PATH"] == "/usr/bin:/bin"
    finally:
        with anyio.fail_after(10):
            await child.aclose()
    assert child.process.returncode is not None


async def test_a_child_that_ignores_its_stdin_closing_is_terminated() -> None:
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    server = ServerConfig(command=sys.executable, args=("-c", stubborn))
    launch = plain_launch(server, {"PATH": "/usr/bin:/bin"})
    child = await StdioServer.start("stubborn", launch, max_bytes=1 << 20, max_depth=64)
    with anyio.fail_after(10):
        await child.aclose(grace=0.5)
    assert child.process.returncode is not None
