"""A Streamable HTTP server whose tool list changes, shared by several gateways.

`echo` echoes; `add_tool` adds a tool named by its `name` argument and tells every session
connected to this server that the tool list changed (each gateway has its own session).

Run: `python tests/servers/changing_http.py 127.0.0.1:PORT` (endpoint /mcp).
"""

from __future__ import annotations

import sys
from typing import Any

import mcp_types as mt
import uvicorn
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions, Server
from mcp.server.models import InitializationOptions

Ctx = ServerRequestContext[Any, Any]
TEXT = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
NAME = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}

sessions: dict[int, Any] = {}
added: list[str] = []


async def list_tools(ctx: Ctx, params: mt.PaginatedRequestParams | None) -> mt.ListToolsResult:
    sessions[id(ctx.session)] = ctx.session
    tools = [
        mt.Tool(name="echo", description="Echo the text.", input_schema=TEXT),
        mt.Tool(name="add_tool", description="Add a tool.", input_schema=NAME),
    ]
    tools += [mt.Tool(name=name, description="An added tool.", input_schema=TEXT) for name in added]
    return mt.ListToolsResult(tools=tools)


async def call_tool(ctx: Ctx, params: mt.CallToolRequestParams) -> mt.CallToolResult:
    arguments = params.arguments or {}
    if params.name == "add_tool":
        added.append(str(arguments["name"]))
        for key, session in list(sessions.items()):
            try:
                await session.send_tool_list_changed()
            except Exception:  # a gateway that went away
                sessions.pop(key, None)
        return mt.CallToolResult(content=[mt.TextContent(type="text", text="added")])
    return mt.CallToolResult(content=[mt.TextContent(type="text", text=str(arguments.get("text", "")))])


class ChangingServer(Server[Any]):
    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        options = NotificationOptions(tools_changed=True)
        return super().create_initialization_options(options, experimental_capabilities, extensions)


def main() -> None:
    host, _, port = sys.argv[1].rpartition(":")
    server = ChangingServer("changing", version="1.0.0", on_list_tools=list_tools, on_call_tool=call_tool)  # pyright: ignore[reportCallIssue]
    uvicorn.run(server.streamable_http_app(host=host), host=host, port=int(port), log_level="warning")


if __name__ == "__main__":
    main()
