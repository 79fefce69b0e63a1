"""A minimal, fast MCP server for benchmarks: hand-written JSON-RPC lines, one `echo` tool.

It answers in microseconds, so a benchmark through Bastion measures Bastion, not the server.
"""

from __future__ import annotations

import sys

import orjson

TOOLS = [
    {
        "name": "echo",
        "description": "Echo the text.",
        "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}},
    }
]


def main() -> None:
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        message = orjson.loads(line)
        ident = message.get("id")
        if ident is None or "method" not in message:
            continue
        method = message["method"]
        if method == "initialize":
            result: dict[str, object] = {
                "protocolVersion": "2025-11-25",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "bench-echo", "version": "1"},
            }
        elif method == "tools/list":
            result = {"tools": TOOLS}
        elif method == "tools/call":
            result = {"content": [{"type": "text", "text": message["params"]["arguments"].get("text", "")}]}
        else:
            out.write(orjson.dumps({"jsonrpc": "2.0", "id": ident, "error": {"code": -32601, "message": method}}))
            out.write(b"\n")
            out.flush()
            continue
        out.write(orjson.dumps({"jsonrpc": "2.0", "id": ident, "result": result}) + b"\n")
        out.flush()


if __name__ == "__main__":
    main()
