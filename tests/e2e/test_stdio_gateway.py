"""Bastion's stdio front end to end: the SDK client → `bastion wrap`/`run` → real server processes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import mcp_types as mt
import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

from bastion.codes import SERVER_UNAVAILABLE
from tests.conftest import BASTION, PYTHON, child_env
from tests.e2e.support import wait_for

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

DEMO = [PYTHON, "-m", "bastion.demo.server"]
MISBEHAVING = [PYTHON, str(Path(__file__).parents[1] / "servers" / "misbehaving.py")]


@asynccontextmanager
async def through_bastion(home: Path, args: list[str], mode: str = "legacy") -> AsyncIterator[Client]:
    params = StdioServerParameters(command=BASTION[0], args=[*BASTION[1:], *args], env=child_env(home))
    async with Client(params, mode=mode, read_timeout_seconds=30) as client:
        yield client


def wrap_demo(notes: Path, *flags: str) -> list[str]:
    """`bastion wrap` of the demo server, its notes readable (the crash tool granted, for fault tests)."""
    return ["wrap", "--fs-read", str(notes), "--grant-tool", "crash", *flags, "--", *DEMO, str(notes)]


def text(result: mt.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, mt.TextContent))


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_a_wrapped_server_is_transparent_in_both_eras(home: Path, tmp_path: Path, mode: str) -> None:
    (tmp_path / "a.txt").write_text("alpha", encoding="utf-8")
    async with through_bastion(home, wrap_demo(tmp_path), mode) as client:
        expected = "2026-07-28" if mode == "auto" else "2025-11-25"
        assert client.protocol_version == expected
        names = [tool.name for tool in (await client.list_tools()).tools]
        assert {"echo", "read_note", "countdown"} <= set(names)
        assert text(await client.call_tool("read_note", {"path": "a.txt"})) == "alpha"
        prompt = await client.get_prompt("summarize_note", {"name": "a.txt"})
        assert "a.txt" in str(prompt.messages[0].content)
        resource = await client.read_resource("notes://a.txt")
        assert "alpha" in str(resource.contents[0])


async def test_progress_notifications_reach_the_client(home: Path, tmp_path: Path) -> None:
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with through_bastion(home, wrap_demo(tmp_path)) as client:
        result = await client.call_tool("countdown", {"start": 4}, progress_callback=on_progress)
    assert text(result) == "liftoff"
    assert seen == [1, 2, 3, 4]


async def test_denied_tools_are_neither_listed_nor_callable_and_look_like_unknown_ones(
    home: Path, tmp_path: Path
) -> None:
    async with through_bastion(home, wrap_demo(tmp_path, "--deny", "write_note")) as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
        assert "write_note" not in names
        with pytest.raises(MCPError) as denied:
            await client.call_tool("write_note", {"path": "x", "content": "y"})
        with pytest.raises(MCPError) as unknown:
            await client.call_tool("no_such_tool", {})
    assert denied.value.error.code == unknown.value.error.code == -32602
    assert not (tmp_path / "x").exists()


async def test_allow_list_limits_the_listing(home: Path, tmp_path: Path) -> None:
    async with through_bastion(home, wrap_demo(tmp_path, "--allow", "echo")) as client:
        assert [tool.name for tool in (await client.list_tools()).tools] == ["echo"]


async def test_a_server_that_exits_mid_call_fails_the_call_by_name_and_is_restarted(home: Path, tmp_path: Path) -> None:
    async with through_bastion(home, wrap_demo(tmp_path, "--name", "demo")) as client:
        with pytest.raises(MCPError) as failed:
            await client.call_tool("crash", {"code": 9})
        assert failed.value.error.code == SERVER_UNAVAILABLE
        assert "demo" in failed.value.error.message

        async def answered() -> bool | None:
            try:
                assert text(await client.call_tool("echo", {"text": "back"})) == "back"
            except MCPError as exc:
                assert exc.error.code == SERVER_UNAVAILABLE  # until then, only ever this
                return None
            return True

        await wait_for(answered, timeout=20, what="the restarted server to answer", every=0.1)


async def test_cancelling_a_call_reaches_the_server_and_the_session_goes_on(home: Path, tmp_path: Path) -> None:
    async with through_bastion(home, wrap_demo(tmp_path)) as client:
        with anyio.move_on_after(0.5):
            await client.call_tool("wait", {"seconds": 30})
        assert text(await client.call_tool("echo", {"text": "still here"})) == "still here"


async def test_garbage_from_a_server_is_dropped_and_the_real_answer_still_arrives(home: Path) -> None:
    async with through_bastion(home, ["wrap", "--no-read-only", "--", *MISBEHAVING, "garbage"]) as client:
        assert text(await client.call_tool("poke", {})) == "poked"
        assert text(await client.call_tool("poke", {})) == "poked"


async def test_an_oversized_answer_is_refused_not_forwarded(home: Path) -> None:
    async with through_bastion(home, ["wrap", "--no-read-only", "--", *MISBEHAVING, "big"]) as client:
        with anyio.fail_after(20), pytest.raises(MCPError) as failed:
            await client.call_tool("poke", {})
    assert failed.value.error.code == -32600


async def test_a_malformed_answer_fails_its_call_at_once_and_the_next_call_works(home: Path) -> None:
    async with through_bastion(home, ["wrap", "--no-read-only", "--", *MISBEHAVING, "malformed"]) as client:
        with anyio.fail_after(20), pytest.raises(MCPError) as failed:  # not the request timeout
            await client.call_tool("poke", {})
        assert text(await client.call_tool("poke", {})) == "poked"
    assert failed.value.error.code == -32603
    assert "malformed" in failed.value.error.message


async def test_a_server_that_hangs_on_start_is_reported_by_name(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "bastion.toml"
    hang = ", ".join(f'"{part}"' for part in MISBEHAVING[1:])
    config.write_text(
        f'[servers.stuck]\ncommand = "{MISBEHAVING[0]}"\nargs = [{hang}, "hang"]\nstartup_timeout = 1.0\n'
        f'[servers.demo]\ncommand = "{DEMO[0]}"\nargs = ["-m", "bastion.demo.server", "{tmp_path}"]\n',
        encoding="utf-8",
    )
    async with through_bastion(home, ["run", "--config", str(config)]) as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
        assert "demo__echo" in names
        assert text(await client.call_tool("demo__echo", {"text": "ok"})) == "ok"


TIME_SERVER = Path(PYTHON).parent / "mcp-server-time"


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_the_official_time_server_works_through_bastion(home: Path, mode: str) -> None:
    async with through_bastion(home, ["wrap", "--", str(TIME_SERVER)], mode) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert names == {"get_current_time", "convert_time"}
        result = await client.call_tool("get_current_time", {"timezone": "UTC"})
        assert '"timezone": "UTC"' in text(result)


async def _sample(_ctx: object, params: mt.CreateMessageRequestParams) -> mt.CreateMessageResult:
    return mt.CreateMessageResult(
        role="assistant", content=mt.TextContent(type="text", text="short summary"), model="m"
    )


async def _elicit(_ctx: object, params: object) -> mt.ElicitResult:
    return mt.ElicitResult(action="accept", content={"confirmed": True})


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_elicitation_and_sampling_cross_the_era_bridge(home: Path, tmp_path: Path, mode: str) -> None:
    """Across eras: a 2026-07-28 server's input-required results reach a handshake-era client as
    ordinary server requests Bastion sends and answers for it; a handshake-era server's requests
    reach a 2026-07-28 client as input-required results."""
    (tmp_path / "a.txt").write_text("alpha", encoding="utf-8")
    callbacks = {"sampling_callback": _sample, "elicitation_callback": _elicit}
    # Make Bastion speak the other era to the server than the client speaks to Bastion.
    server_era = "2026-07-28" if mode == "legacy" else "2025-11-25"
    params = StdioServerParameters(
        command=BASTION[0],
        args=[*BASTION[1:], *wrap_demo(tmp_path, "--protocol", server_era)],
        env=child_env(home),
    )
    async with Client(params, mode=mode, read_timeout_seconds=30, **callbacks) as client:  # pyright: ignore[reportArgumentType]
        assert text(await client.call_tool("confirm", {"question": "Proceed?"})) == "confirmed"
        assert text(await client.call_tool("summarize", {"name": "a.txt"})) == "short summary"
