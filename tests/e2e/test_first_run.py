"""What a new user meets in the first minute: the README's and the quick start's own wrap
commands, a server that cannot start, and the tools a missing grant hides."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

import mcp_types as mt
import pytest
from mcp.shared.exceptions import MCPError

from bastion.codes import SERVER_UNAVAILABLE
from tests.conftest import BASTION, child_env
from tests.e2e.support import NPM_BIN, through_stdio

pytestmark = [pytest.mark.e2e]

ROOT = Path(__file__).parents[2]
DOCUMENTED_DIR = "/srv/data"
INITIALIZE: dict[str, object] = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}


def readme_wrap_command(directory: Path) -> list[str]:
    """The README's `bastion wrap` example, word for word, with its directory replaced."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    line = next(line for line in text.splitlines() if line.startswith("bastion wrap --name fs"))
    return shlex.split(line.replace(DOCUMENTED_DIR, str(directory)))[1:]


def quickstart_wrap_command(directory: Path) -> list[str]:
    """The quick start's rewritten client entry (`"command": "bastion", "args": [...]`), with its directory replaced."""
    text = (ROOT / "docs" / "quickstart.md").read_text(encoding="utf-8")
    match = re.search(r'`"command": "bastion", "args": (\[.*?\])`', text)
    assert match is not None, "the quick start no longer shows the rewritten entry"
    args: list[str] = json.loads(match.group(1))
    return [str(directory) if arg == DOCUMENTED_DIR else arg for arg in args]


def text_of(result: mt.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, mt.TextContent))


@pytest.mark.anyio
@pytest.mark.parametrize("source", [readme_wrap_command, quickstart_wrap_command])
async def test_the_documented_npx_wrap_serves_the_official_filesystem_server_sandboxed(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: Callable[[Path], list[str]]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "hello.txt").write_text("hello from the sandbox", encoding="utf-8")
    # A cold npm cache of its own: npx's package is installed outside the sandbox, then run inside it.
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm-cache"))
    args: list[str] = source(data)
    assert "npx" in args
    assert "--fs-read" in args
    async with through_stdio(home, args) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"read_text_file", "list_directory"} <= names
        assert "write_file" not in names  # read-only by default
        result = await client.call_tool("read_text_file", {"path": str(data / "hello.txt")})
        assert text_of(result) == "hello from the sandbox"
        # Outside its root: refused by policy before the sandbox is even asked.
        with pytest.raises(MCPError) as refused:
            await client.call_tool("read_text_file", {"path": str(tmp_path / "npm-cache" / "_npx")})
        assert refused.value.data["rule"] == "paths.outside_roots"


def exchange(home: Path, args: list[str], frames: list[dict[str, object]]) -> subprocess.CompletedProcess[str]:
    stdin = "".join(json.dumps(frame) + "\n" for frame in frames)
    return subprocess.run(
        [*BASTION, *args], input=stdin, capture_output=True, text=True, env=child_env(home), timeout=90, check=False
    )


@pytest.mark.parametrize(
    ("command", "reason"),
    [("/opt/nope/server", "does not exist"), ("no-such-mcp-server-xyz", "is not found on PATH")],
)
def test_a_server_that_cannot_start_fails_initialize_and_wrap_exits_non_zero(
    home: Path, command: str, reason: str
) -> None:
    done = exchange(home, ["wrap", "--", command], [INITIALIZE])
    assert done.returncode == 1
    reply = json.loads(done.stdout.splitlines()[0])
    assert reply["id"] == 1
    assert reply["error"]["code"] == SERVER_UNAVAILABLE
    assert command in reply["error"]["message"]
    assert reason in reply["error"]["message"]
    assert reason in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.npm
def test_the_person_is_told_which_tools_a_missing_grant_hides_and_the_client_is_not(home: Path, tmp_path: Path) -> None:
    server = str(NPM_BIN / "mcp-server-filesystem")
    frames: list[dict[str, object]] = [
        INITIALIZE,
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    ]
    done = exchange(
        home,
        ["wrap", "--name", "fs", "--grant", "write", "--fs-read", str(tmp_path), "--", server, str(tmp_path)],
        frames,
    )
    replies = {reply["id"]: reply for reply in map(json.loads, done.stdout.splitlines())}
    listed = {tool["name"] for tool in replies[2]["result"]["tools"]}
    assert "create_directory" in listed  # granted write
    for tool in ("write_file", "edit_file", "move_file"):  # classed destructive: still hidden
        assert tool not in listed
        assert f"tool {tool!r} is hidden" in done.stderr
    assert "--grant destructive" in done.stderr
    assert "hidden" not in done.stdout
