"""The official Node `server-everything` (npm, pinned) behind Bastion, on both fronts.

Exercises tools, resources, prompts, completions, progress, cancellation, sampling and
elicitation, with the SDK client in the handshake era and in the 2026-07-28 era.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import anyio
import mcp_types as mt
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from tests.e2e.support import NPM_BIN, free_port, serving, through_http, through_stdio

EVERYTHING = NPM_BIN / "mcp-server-everything"
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.npm,
    pytest.mark.skipif(not EVERYTHING.exists(), reason="run `npm ci --prefix tests/e2e/npm` first"),
]

Connect = Callable[..., AbstractAsyncContextManager[Client]]


async def sample(_ctx: Any, params: mt.CreateMessageRequestParams) -> mt.CreateMessageResult:
    return mt.CreateMessageResult(
        role="assistant", content=mt.TextContent(type="text", text="a sampled answer"), model="test-model"
    )


async def elicit(_ctx: Any, params: Any) -> mt.ElicitResult:
    return mt.ElicitResult(action="accept", content={"color": "blue"})


def text(result: mt.CallToolResult) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, mt.TextContent))


@pytest.fixture(params=["stdio", "http"])
def connect(request: pytest.FixtureRequest, home: Path, tmp_path: Path) -> Iterator[Connect]:
    if request.param == "stdio":

        def stdio(mode: str = "legacy", **client: Any) -> AbstractAsyncContextManager[Client]:
            return through_stdio(
                home, ["wrap", "--name", "everything", "--no-read-only", "--", "node", str(EVERYTHING)], mode, **client
            )

        yield stdio
        return
    port = free_port()
    config = tmp_path / "bastion.toml"
    config.write_text(
        f'[http]\nlisten = "127.0.0.1:{port}"\n[servers.everything]\ncommand = "node"\nargs = ["{EVERYTHING}"]\nread_only = false\n',
        encoding="utf-8",
    )
    with serving(home, config, port) as token:

        def http(mode: str = "legacy", **client: Any) -> AbstractAsyncContextManager[Client]:
            return through_http(f"http://127.0.0.1:{port}/mcp", token, mode, **client)

        yield http


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_tools_resources_prompts_and_completions_pass_through(connect: Connect, mode: str) -> None:
    async with connect(mode) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"echo", "get-sum"} <= names
        assert "hi" in text(await client.call_tool("echo", {"message": "hi"}))
        assert "5" in text(await client.call_tool("get-sum", {"a": 2, "b": 3}))
        resources = (await client.list_resources()).resources
        assert resources
        contents = (await client.read_resource(str(resources[0].uri))).contents
        assert contents
        prompts = {prompt.name for prompt in (await client.list_prompts()).prompts}
        assert "args-prompt" in prompts
        prompt = await client.get_prompt("args-prompt", {"city": "Paris", "state": "TX"})
        assert "Paris" in str(prompt.messages[0].content)
        completion = await client.complete(
            mt.PromptReference(type="ref/prompt", name="completable-prompt"), {"name": "department", "value": "E"}
        )
        assert completion.completion.values


@pytest.mark.anyio
async def test_progress_of_a_long_operation_reaches_the_client(connect: Connect) -> None:
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with connect() as client:
        result = await client.call_tool(
            "trigger-long-running-operation", {"duration": 0.5, "steps": 5}, progress_callback=on_progress
        )
    assert "completed" in text(result).lower()
    assert len(seen) >= 4


@pytest.mark.anyio
async def test_a_cancelled_call_leaves_the_session_usable(connect: Connect) -> None:
    async with connect() as client:
        with anyio.move_on_after(0.5):
            await client.call_tool("trigger-long-running-operation", {"duration": 30, "steps": 3})
        assert "still" in text(await client.call_tool("echo", {"message": "still here"}))


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_sampling_and_elicitation_from_the_server_reach_the_client(connect: Connect, mode: str) -> None:
    """In the 2026-07-28 era (`auto`) the server's requests reach the client as input-required results."""
    async with connect(mode, sampling_callback=sample, elicitation_callback=elicit) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"trigger-sampling-request", "trigger-elicitation-request"} <= names
        sampled = await client.call_tool("trigger-sampling-request", {"prompt": "say something", "maxTokens": 10})
        assert "a sampled answer" in text(sampled)
        elicited = await client.call_tool("trigger-elicitation-request", {})
        assert "blue" in text(elicited)


@pytest.mark.anyio
async def test_unknown_tools_are_refused_with_invalid_params(connect: Connect) -> None:
    async with connect() as client:
        with pytest.raises(MCPError) as refused:
            await client.call_tool("no-such-tool", {})
    assert refused.value.error.code == -32602
