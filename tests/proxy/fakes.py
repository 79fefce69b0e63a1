"""A scripted in-memory MCP server and a recording client, for unit tests of the session core."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio

from bastion.config.model import ServerConfig
from bastion.transport.jsonrpc import Frame
from bastion.transport.lines import EndOfStream
from bastion.transport.link import Connector, ServerLink
from bastion.transport.memory import MemoryChannel, memory_pair
from bastion.types import Reply, RpcError

Handler = Callable[[str, dict[str, Any] | None], Reply]


class FakeServer:
    """Answers initialize, tools/list and tools/call; records every request it receives."""

    def __init__(self, name: str, tools: list[str], on_call: Handler | None = None) -> None:
        self.name = name
        self.tools = tools
        self.on_call = on_call or (lambda _m, params: {"content": [{"type": "text", "text": f"{name}:{params}"}]})
        self.received: list[Frame] = []
        self.crash_next_call = False
        self.answer_next_call_with: Frame | None = None
        """Members of the frame sent (with the call's id) instead of a proper answer to the next call."""

    async def serve(self, channel: MemoryChannel) -> None:
        while True:
            frame = await channel.receive()
            if isinstance(frame, EndOfStream):
                return
            assert isinstance(frame, dict)
            self.received.append(frame)
            if "id" not in frame or "method" not in frame:
                continue
            if frame["method"] == "tools/call" and self.answer_next_call_with is not None:
                broken, self.answer_next_call_with = self.answer_next_call_with, None
                await channel.send({"id": frame["id"], **broken})
                continue
            reply = self._answer(frame["method"], frame.get("params"))
            if reply is None:
                await channel.aclose()
                return
            if isinstance(reply, RpcError):
                await channel.send({"jsonrpc": "2.0", "id": frame["id"], "error": reply.to_wire()})
            else:
                await channel.send({"jsonrpc": "2.0", "id": frame["id"], "result": reply})

    def _answer(self, method: str, params: dict[str, Any] | None) -> Reply | None:
        if method == "initialize":
            return {
                "protocolVersion": "2025-11-25",
                "capabilities": {"tools": {"listChanged": True}},
                "serverInfo": {"name": self.name, "version": "1.0"},
            }
        if method == "tools/list":
            return {"tools": [{"name": tool, "inputSchema": {"type": "object"}} for tool in self.tools]}
        if method == "tools/call":
            if self.crash_next_call:
                self.crash_next_call = False
                return None
            return self.on_call(method, params)
        return RpcError(-32601, f"Method not found: {method}")

    def calls(self) -> list[Frame]:
        return [frame for frame in self.received if frame.get("method") == "tools/call"]


def fake_connector(servers: dict[str, FakeServer]) -> Connector:
    @asynccontextmanager
    async def connect(name: str, _config: ServerConfig) -> AsyncIterator[ServerLink]:
        proxy_side, server_side = memory_pair()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(servers[name].serve, server_side)
            try:
                yield proxy_side
            finally:
                tasks.cancel_scope.cancel()
                await proxy_side.aclose()
                await server_side.aclose()

    return connect


class RecordingClient:
    """The client side of a session: records what the session sends it."""

    def __init__(self, can_request: bool = True) -> None:
        self._can_request = can_request
        self.notifications: list[tuple[str, dict[str, Any] | None, int | str | None]] = []
        self.requests: list[tuple[str, dict[str, Any] | None, int | str | None]] = []

    @property
    def can_request(self) -> bool:
        return self._can_request

    async def request(self, method: str, params: dict[str, Any] | None, related: int | str | None) -> Reply:
        self.requests.append((method, params, related))
        return {"answered": method}

    async def notify(self, method: str, params: dict[str, Any] | None, related: int | str | None) -> None:
        self.notifications.append((method, params, related))
