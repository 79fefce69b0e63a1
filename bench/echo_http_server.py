"""The SDK's own server over Streamable HTTP with one `echo` tool: the direct HTTP baseline.

Run: `python bench/echo_http_server.py PORT`.
"""

from __future__ import annotations

import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("bench-echo-http")


@server.tool()
def echo(text: str) -> str:
    """Echo the text."""
    return text


if __name__ == "__main__":
    server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[1]))
