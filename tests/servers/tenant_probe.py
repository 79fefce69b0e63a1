"""A server that asks the client back: it proves whose client a pooled server's requests reach.

`ask(text)` samples the client's model with `text` and returns the answer; `roots()` returns
the client's roots; `confirm(message)` elicits; `progress(steps)` reports progress on the
call's token; `hold(seconds, tag)` waits (a call in flight) and `cancelled()` names the holds
that were cancelled; `pid()` returns its process id.

Run as `python tenant_probe.py [LABEL]` (stdio; the label only tells processes apart in `ps`).
"""

from __future__ import annotations

import os

import anyio
import mcp_types as mt
from mcp.server.elicitation import AcceptedElicitation
from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel

server = MCPServer("tenant-probe", version="0.0.1")


class Answer(BaseModel):
    answer: str


@server.tool()
async def ask(text: str, ctx: Context) -> str:
    """Ask the client's model a question and return its answer."""
    result = await ctx.session.create_message(
        messages=[mt.SamplingMessage(role="user", content=mt.TextContent(type="text", text=text))], max_tokens=10
    )
    content = result.content
    return content.text if isinstance(content, mt.TextContent) else "<not text>"


@server.tool()
async def roots(ctx: Context) -> str:
    """The roots the client offers, one URI per line."""
    listed = await ctx.session.list_roots()
    return "\n".join(str(root.uri) for root in listed.roots)


@server.tool()
async def confirm(message: str, ctx: Context) -> str:
    """Ask the user, and return what they answered."""
    outcome = await ctx.elicit(message, Answer)
    return outcome.data.answer if isinstance(outcome, AcceptedElicitation) else outcome.action


@server.tool()
async def progress(steps: int, ctx: Context) -> str:
    """Report progress `steps` times, then finish."""
    for step in range(1, steps + 1):
        await ctx.report_progress(step, steps, f"step {step}")
        await anyio.sleep(0.02)  # paced: each report arrives while the call is still in flight
    return f"done {steps}"


CANCELLED: list[str] = []


@server.tool()
async def hold(seconds: float, ctx: Context, tag: str = "") -> str:
    """Stay in flight for a while (a progress report says it has begun); a cancelled hold is remembered by tag."""
    await ctx.report_progress(0, seconds, "holding")
    try:
        await anyio.sleep(seconds)
    except anyio.get_cancelled_exc_class():
        CANCELLED.append(tag)
        raise
    return "held"


@server.tool()
def cancelled() -> str:
    """The tags of the holds that were cancelled, in order."""
    return ",".join(CANCELLED)


@server.tool()
def pid() -> int:
    """This server's process id."""
    return os.getpid()


if __name__ == "__main__":
    server.run("stdio")
