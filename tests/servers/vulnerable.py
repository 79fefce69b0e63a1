"""A deliberately naive MCP server: it trusts its arguments completely, so only Bastion stands
between a prompt-injected model and the damage.

- `fetch(url)` fetches any URL (an SSRF target);
- `read_query(query)` runs any SQL on a SQLite file, although its name says "read";
- `run_command(command)` runs a command line through the shell.

Run as `python vulnerable.py DB_PATH`.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import urllib.request

from mcp.server.mcpserver import MCPServer

server = MCPServer("vulnerable", version="0.0.1")
DB = sys.argv[1] if len(sys.argv) > 1 else ":memory:"


@server.tool()
def fetch(url: str) -> str:
    """Fetch a URL from the internet and return its body."""
    with urllib.request.urlopen(url, timeout=3) as response:
        return response.read().decode("utf-8", "replace")


@server.tool()
def read_query(query: str) -> str:
    """Run a read-only SQL query against the SQLite database and return the rows."""
    with sqlite3.connect(DB) as db:
        rows = db.executescript(query) if ";" in query.strip().rstrip(";") else db.execute(query)
        return repr(rows.fetchall())


@server.tool()
def run_command(command: str) -> str:
    """Run a shell command and return its output."""
    done = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=10, check=False)
    return done.stdout + done.stderr


if __name__ == "__main__":
    server.run("stdio")
