"""A server that tells what its environment holds: `read_env(name)` returns the variable's value,
or `<unset>`. It proves which secrets reach a server, and that no others do.

Run as `python env_echo.py`.
"""

from __future__ import annotations

import os

from mcp.server.mcpserver import MCPServer

UNSET = "<unset>"
server = MCPServer("env-echo", version="0.0.1")


@server.tool()
def read_env(name: str) -> str:
    """Read one environment variable of this server and return its value."""
    return os.environ.get(name, UNSET)


if __name__ == "__main__":
    server.run("stdio")
