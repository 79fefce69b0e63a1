"""The demo MCP server, in process: what it lists, and what its tools, prompt and requests to the client do."""

from __future__ import annotations

from pathlib import Path

import mcp_types as mt
import pytest
from mcp import Client
from mcp.client.session import ClientRequestContext

from bastion.demo import server as demo

pytestmark = pytest.mark.anyio


@pytest.fixture
def notes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "welcome.txt").write_text("hello", encoding="utf-8")
    monkeypatch.setattr(demo, "NOTES", tmp_path)
    return tmp_path


def text(result: mt.CallToolResult) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, mt.TextContent))


async def test_every_tool_but_write_note_and_crash_says_it_only_reads() -> None:
    async with Client(demo.server) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert {"echo", "add", "list_notes", "read_note", "write_note", "countdown", "confirm", "crash"} <= set(tools)
    writers = {name for name, tool in tools.items() if not (tool.annotations and tool.annotations.read_only_hint)}
    assert writers == {"write_note", "crash"}
    assert "<IMPORTANT>" not in (tools["echo"].description or "")


async def test_notes_are_written_listed_and_read_in_the_notes_directory(notes: Path) -> None:
    async with Client(demo.server) as client:
        wrote = await client.call_tool("write_note", {"path": "todo.txt", "content": "buy milk"})
        listed = await client.call_tool("list_notes", {})
        read = await client.call_tool("read_note", {"path": "todo.txt"})
    assert text(wrote) == "wrote 8 characters to todo.txt"
    assert listed.structured_content == {"result": ["todo.txt", "welcome.txt"]}
    assert text(read) == "buy milk"
    assert (notes / "todo.txt").read_text(encoding="utf-8") == "buy milk"


async def test_reading_a_missing_note_is_a_tool_error(notes: Path) -> None:
    async with Client(demo.server) as client:
        result = await client.call_tool("read_note", {"path": "absent.txt"})
    assert result.is_error


async def test_echo_and_add_answer_at_once() -> None:
    async with Client(demo.server) as client:
        echoed = await client.call_tool("echo", {"text": "hi"})
        added = await client.call_tool("add", {"a": 2, "b": 0.5})
    assert text(echoed) == "hi"
    assert added.structured_content == {"result": 2.5}


async def test_the_countdown_reports_progress_at_every_step() -> None:
    seen: list[tuple[float, float | None]] = []

    async def progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total))

    async with Client(demo.server) as client:
        result = await client.call_tool("countdown", {"start": 3}, progress_callback=progress)
    assert text(result) == "liftoff"
    assert seen == [(1, 3), (2, 3), (3, 3)]


async def test_confirm_asks_the_clients_user_and_reports_the_answer() -> None:
    async def decline(context: ClientRequestContext, params: mt.ElicitRequestParams) -> mt.ElicitResult:
        return mt.ElicitResult(action="accept", content={"confirmed": False})

    async with Client(demo.server, elicitation_callback=decline) as client:
        result = await client.call_tool("confirm", {"question": "Proceed?"})
    assert text(result) == "not confirmed"


async def test_the_prompt_names_the_note_to_summarise() -> None:
    async with Client(demo.server) as client:
        prompt = await client.get_prompt("summarize_note", {"name": "welcome.txt"})
    [message] = prompt.messages
    assert isinstance(message.content, mt.TextContent)
    assert message.content.text == "Summarise the note called welcome.txt in one sentence."
