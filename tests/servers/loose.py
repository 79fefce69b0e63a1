"""An MCP server that declares nothing about its arguments, as FastMCP `**kwargs` tools and many
hand-written servers do: every tool's input schema is `{"type": "object", "additionalProperties":
true}`. It does nothing with its arguments but write each call it receives to a log, so a test
can tell which calls reached it.

`set_role` is the exception: it declares a strict schema (an enum, a required argument, no
others), for the tests of validation against the pinned schema; and `lookup_region` declares an
`x-mcp-header` property, for the 2026-07-28 `Mcp-Param-*` header checks.

Plain JSON-RPC over stdio, no SDK, so that the listed schemas are exactly these.
Run as `python loose.py LOG_PATH`.
"""

from __future__ import annotations

import json
import sys

LOOSE = {"type": "object", "additionalProperties": True}
TOOLS = [
    {"name": "http_post", "description": "Send an HTTP POST request.", "inputSchema": LOOSE},
    {"name": "read_file", "description": "Read a file.", "inputSchema": LOOSE},
    {"name": "lookup", "description": "Look something up.", "inputSchema": LOOSE},
    {
        "name": "lookup_region",
        "description": "Look up a region's status. Its `region` is mirrored in an Mcp-Param-Region header (2026-07-28).",
        "inputSchema": {
            "type": "object",
            "properties": {"region": {"type": "string", "x-mcp-header": "Region"}},
            "required": ["region"],
        },
    },
    {
        "name": "set_role",
        "description": "Set a user's role.",
        "inputSchema": {
            "type": "object",
            "properties": {
                "user": {"type": "string", "maxLength": 32},
                "role": {"type": "string", "enum": ["viewer", "editor"]},
            },
            "required": ["user", "role"],
            "additionalProperties": False,
        },
    },
]


def main() -> None:
    log = sys.argv[1]
    for line in sys.stdin:
        message = json.loads(line)
        method, request_id = message.get("method"), message.get("id")
        if request_id is None:
            continue
        if method == "initialize":
            result: object = {
                "protocolVersion": message["params"]["protocolVersion"],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "loose", "version": "1.0.0"},
            }
        elif method == "tools/list":
            result = {"tools": TOOLS}
        elif method == "tools/call":
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(message["params"]) + "\n")
            text = json.dumps(message["params"].get("arguments"))
            result = {"content": [{"type": "text", "text": text}]}
        elif method == "ping":
            result = {}
        else:
            reply = {"jsonrpc": "2.0", "id": request_id, "error": {"code": -32601, "message": "Method not found"}}
            print(json.dumps(reply), flush=True)
            continue
        print(json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result}), flush=True)


if __name__ == "__main__":
    main()
