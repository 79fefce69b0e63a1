"""A deliberately misbehaving MCP server for fault tests (stdio, hand-written frames).

Modes (argv[1]):
  hang      never answers anything
  garbage   answers initialize, then on each tools/call first writes a non-JSON line, a
            response to an id nobody asked for and a frame nested 200 deep, then the real answer
  big       answers every tools/call with a result larger than 5 MiB
  malformed answers the first tools/call with a frame that has its id but neither a result
            object nor an error (`"result": "done"`), and the next ones properly
  exit      answers initialize and tools/list, then exits with code 7 on tools/call
"""

from __future__ import annotations

import json
import sys

MODE = sys.argv[1] if len(sys.argv) > 1 else "garbage"
MODE_STATE: dict[str, int] = {}
TOOLS = [{"name": "poke", "description": "Poke the server.", "inputSchema": {"type": "object"}}]


def send(frame: object) -> None:
    sys.stdout.write(json.dumps(frame) + "\n")
    sys.stdout.flush()


def main() -> None:
    for line in sys.stdin:
        if MODE == "hang":
            continue
        message = json.loads(line)
        method, ident = message.get("method"), message.get("id")
        if ident is None:
            continue
        if method == "initialize":
            send(
                {
                    "jsonrpc": "2.0",
                    "id": ident,
                    "result": {
                        "protocolVersion": "2025-06-18",
                        "capabilities": {"tools": {}},
                        "serverInfo": {"name": "misbehaving", "version": "0.0.1"},
                    },
                }
            )
        elif method == "tools/list":
            send({"jsonrpc": "2.0", "id": ident, "result": {"tools": TOOLS}})
        elif method == "tools/call":
            if MODE == "exit":
                sys.exit(7)
            if MODE == "malformed":
                MODE_STATE["malformed"] = MODE_STATE.get("malformed", 0) + 1
                if MODE_STATE["malformed"] == 1:
                    send({"jsonrpc": "2.0", "id": ident, "result": "done"})
                    continue
                send({"jsonrpc": "2.0", "id": ident, "result": {"content": [{"type": "text", "text": "poked"}]}})
                continue
            if MODE == "big":
                send(
                    {"jsonrpc": "2.0", "id": ident, "result": {"content": [{"type": "text", "text": "x" * (5 << 20)}]}}
                )
                continue
            sys.stdout.write("this is not json\n")
            send({"jsonrpc": "2.0", "id": 987654, "result": {}})
            deep: object = {}
            for _ in range(200):
                deep = {"a": deep}
            send({"jsonrpc": "2.0", "method": "notifications/message", "params": deep})
            send({"jsonrpc": "2.0", "id": ident, "result": {"content": [{"type": "text", "text": "poked"}]}})
        else:
            send({"jsonrpc": "2.0", "id": ident, "error": {"code": -32601, "message": f"no {method}"}})


if __name__ == "__main__":
    main()
