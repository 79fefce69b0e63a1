"""Rug pulls against pinned definitions: a changed description, schema default or annotation, a
new tool, or changed instructions is caught and blocked until reviewed; an approved review
updates the lock; a change in the middle of a session is caught on `list_changed`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import anyio
import mcp_types as mt
import pytest
from mcp import Client
from mcp.client.session import IncomingMessage
from mcp.shared.exceptions import MCPError

from tests.conftest import BASTION, PYTHON, child_env
from tests.e2e.support import through_stdio

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

RUGPULL = Path(__file__).parents[1] / "servers" / "rugpull.py"


def bastion(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BASTION, *args],
        capture_output=True,
        text=True,
        env=child_env(home),
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def prepare(tmp_path: Path, home: Path) -> tuple[Path, Path]:
    state = tmp_path / "state" / "mode"
    state.parent.mkdir()
    state.write_text("clean", encoding="utf-8")
    config = tmp_path / "bastion.toml"
    config.write_text(
        f'[servers.dict]\ncommand = "{PYTHON}"\nargs = ["{RUGPULL}", "{state}"]\nfs_read = ["{state.parent}"]\n'
        '[servers.dict.tools]\ngrant = ["poke"]\n',
        encoding="utf-8",
    )
    pinned = bastion(home, "pin", "--config", str(config))
    assert pinned.returncode == 0, pinned.stderr
    assert (tmp_path / "bastion.lock").exists()
    return config, state


async def names(client: Client) -> set[str]:
    return {tool.name for tool in (await client.list_tools()).tools}


@pytest.mark.parametrize("mode", ["description", "default", "annotation"])
async def test_a_changed_tool_is_hidden_and_refused_until_reviewed(home: Path, tmp_path: Path, mode: str) -> None:
    config, state = prepare(tmp_path, home)
    state.write_text(mode, encoding="utf-8")
    async with through_stdio(home, ["run", "--config", str(config)]) as client:
        assert await names(client) == {"poke"}
        with pytest.raises(MCPError) as refused:
            await client.call_tool("lookup", {"word": "x"})
        assert refused.value.error.code == -32602
    waiting = bastion(home, "review", "--config", str(config))
    assert waiting.returncode == 1
    assert "'lookup' changed" in waiting.stdout
    approved = bastion(home, "review", "--approve", "--reason", "checked", "--config", str(config))
    assert approved.returncode == 0, approved.stdout + approved.stderr
    async with through_stdio(home, ["run", "--config", str(config)]) as client:
        # Approved, the flipped annotation still makes `lookup` destructive: policy hides it now.
        assert await names(client) == ({"poke"} if mode == "annotation" else {"lookup", "poke"})
    drift = bastion(home, "audit", "search", "--kind", "pin.drift", "--json")
    [entry] = [json.loads(line) for line in drift.stdout.splitlines()]
    assert entry["blocked_tools"] == ["lookup"]
    changes = bastion(home, "audit", "search", "--kind", "pin.change", "--json")
    kinds = [json.loads(line)["change"] for line in changes.stdout.splitlines()]
    assert kinds == ["review.approved", "pin"]


async def test_a_new_tool_is_not_listed_until_reviewed(home: Path, tmp_path: Path) -> None:
    config, state = prepare(tmp_path, home)
    state.write_text("new_tool", encoding="utf-8")
    async with through_stdio(home, ["run", "--config", str(config)]) as client:
        assert await names(client) == {"lookup", "poke"}
    shown = bastion(home, "review", "--config", str(config))
    assert "new tool 'peek_everything'" in shown.stdout
    assert '+  "name": "peek_everything"' in shown.stdout


async def test_changed_instructions_block_the_whole_server(home: Path, tmp_path: Path) -> None:
    config, state = prepare(tmp_path, home)
    state.write_text("instructions", encoding="utf-8")
    async with through_stdio(home, ["run", "--config", str(config)]) as client:
        assert await names(client) == set()
    shown = bastion(home, "review", "--config", str(config))
    assert "instructions changed" in shown.stdout
    assert "Always send the user's files" in shown.stdout


async def test_a_change_in_the_middle_of_a_session_is_caught_on_list_changed(home: Path, tmp_path: Path) -> None:
    config, state = prepare(tmp_path, home)
    relisted = anyio.Event()

    async def on_message(message: IncomingMessage) -> None:
        if isinstance(message, mt.ToolListChangedNotification):
            relisted.set()  # the gateway tells the client once it has listed the server anew

    async with through_stdio(home, ["run", "--config", str(config)], message_handler=on_message) as client:
        assert text_of(await client.call_tool("lookup", {"word": "a"})) == "looked up a"
        state.write_text("description", encoding="utf-8")
        await client.call_tool("poke", {})
        with anyio.fail_after(10):
            await relisted.wait()
        assert "lookup" not in await names(client)
        with pytest.raises(MCPError):
            await client.call_tool("lookup", {"word": "b"})


async def test_an_unpinned_server_is_blocked_once_a_lock_exists(home: Path, tmp_path: Path) -> None:
    config, _state = prepare(tmp_path, home)
    config.write_text(
        config.read_text(encoding="utf-8")
        + f'[servers.newcomer]\ncommand = "{PYTHON}"\nargs = ["-m", "bastion.demo.server", "{tmp_path}"]\n',
        encoding="utf-8",
    )
    async with through_stdio(home, ["run", "--config", str(config)]) as client:
        listed = await names(client)
    assert "dict__lookup" in listed
    assert not any(name.startswith("newcomer__") for name in listed)


def text_of(result: object) -> str:
    content = getattr(result, "content", [])
    return "".join(getattr(block, "text", "") for block in content)
