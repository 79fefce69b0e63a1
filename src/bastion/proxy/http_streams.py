"""Where server-to-client traffic rides at the HTTP front.

An `Exchange` is the answer to one POSTed request: plain JSON when nothing else has to
reach the client first, or an SSE stream once something does (progress, a log message, a
server's sampling or elicitation request), ending with the reply. A `Standalone` stream is
a handshake-era session's GET stream, for what belongs to no request (list changes). A
2026-07-28 client has neither between requests: its change events go through `ClientBus`
to the `subscriptions/listen` streams it holds open. `HttpPeer` is the session core's view
of one client over HTTP, choosing among them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Final

import anyio
import anyio.lowlevel
import orjson
from anyio.streams.memory import MemoryObjectSendStream
from mcp.shared.subscriptions import ServerEvent, event_from_wire
from starlette.types import Send

from bastion.codes import SERVER_UNAVAILABLE
from bastion.proxy.client_requests import ClientRequests
from bastion.transport.jsonrpc import Frame
from bastion.types import Era, Reply, RpcError

__all__ = ["SSE_HEADERS", "ClientBus", "Exchange", "HttpPeer", "Standalone", "json_response", "sse_event"]

logger = logging.getLogger(__name__)

SSE_HEADERS: Final[list[tuple[bytes, bytes]]] = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache, no-transform"),
    (b"x-accel-buffering", b"no"),
]


def sse_event(frame: Frame) -> bytes:
    return b"event: message\r\ndata: " + orjson.dumps(frame) + b"\r\n\r\n"


async def json_response(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    start: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": start + (headers or [])})
    await send({"type": "http.response.body", "body": body})


class Exchange:
    """One POSTed request's answer: JSON if the reply is all there is, else an SSE stream ending with it."""

    def __init__(self, send: Send, headers: list[tuple[bytes, bytes]], *, json_ok: bool, sse_ok: bool) -> None:
        self._send = send
        self._headers = headers
        self._json_ok = json_ok
        self.sse_ok = sse_ok
        self._streaming = False
        self._lock = asyncio.Lock()  # uncontended, it neither yields nor looks up the current task
        self.closed = False

    async def emit(self, frame: Frame) -> bool:
        """Put a notification or a server request on this request's stream; False if it cannot carry it."""
        if self.closed or not self.sse_ok:
            return False
        async with self._lock:
            if self.closed:
                return False
            try:
                if not self._streaming:
                    self._streaming = True
                    await self._send(
                        {"type": "http.response.start", "status": 200, "headers": SSE_HEADERS + self._headers}
                    )
                await self._send({"type": "http.response.body", "body": sse_event(frame), "more_body": True})
            except OSError:
                self.closed = True
                return False
        return True

    async def finish(self, frame: Frame, status: int = 200) -> None:
        """Answer with the reply: the end of the stream if one was opened, else JSON (or a one-event stream)."""
        async with self._lock:
            if self.closed:
                return
            self.closed = True
            try:
                if self._streaming:
                    await self._send({"type": "http.response.body", "body": sse_event(frame), "more_body": False})
                elif self._json_ok:
                    await json_response(self._send, status, orjson.dumps(frame), self._headers)
                else:
                    await self._send(
                        {"type": "http.response.start", "status": 200, "headers": SSE_HEADERS + self._headers}
                    )
                    await self._send({"type": "http.response.body", "body": sse_event(frame), "more_body": False})
            except OSError:
                logger.info("could not answer request %r: the client is gone", frame.get("id"))


class Standalone:
    """A handshake-era session's GET stream: what belongs to no request, until the client goes."""

    def __init__(self, feed: MemoryObjectSendStream[Frame]) -> None:
        self._feed = feed
        self.closed = False

    async def emit(self, frame: Frame) -> bool:
        if self.closed:
            return False
        try:
            self._feed.send_nowait(frame)
        except (anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
            return False
        return True

    def close(self) -> None:
        self.closed = True
        self._feed.close()


class ClientBus:
    """`subscriptions/listen` fan-out per client: one client's changes reach only its own streams."""

    def __init__(self) -> None:
        self._listeners: dict[str, dict[object, tuple[Callable[[ServerEvent], None], Callable[[], None]]]] = {}

    async def publish(self, key: str, event: ServerEvent) -> None:
        for listener, _end in list(self._listeners.get(key, {}).values()):
            try:
                listener(event)
            except Exception:  # fan-out boundary: one stream must not starve the others
                logger.exception("a listen stream failed to take an event")
        await anyio.lowlevel.checkpoint()

    def subscribe(
        self, key: str, listener: Callable[[ServerEvent], None], end: Callable[[], None]
    ) -> Callable[[], None]:
        """`listener` takes the client's events until unsubscribed; `end` ends its stream (`close`)."""
        token = object()
        self._listeners.setdefault(key, {})[token] = (listener, end)

        def unsubscribe() -> None:
            listeners = self._listeners.get(key, {})
            listeners.pop(token, None)
            if not listeners:
                self._listeners.pop(key, None)

        return unsubscribe

    def close(self) -> None:
        """End every stream (the gateway is stopping)."""
        for listeners in list(self._listeners.values()):
            for _listener, end in list(listeners.values()):
                end()


class HttpPeer:
    """The client as its session sees it over HTTP: notifications and requests on the right stream."""

    def __init__(self, era: Era, bus: ClientBus, key: str) -> None:
        self._era = era
        self._bus = bus
        self._key = key
        self.exchanges: dict[int | str, Exchange] = {}
        self.standalone: Standalone | None = None
        self._requests = ClientRequests()

    @property
    def can_request(self) -> bool:
        return self._era is Era.HANDSHAKE

    async def _emit(self, frame: Frame, related: int | str | None, *, any_request: bool) -> bool:
        exchange = self.exchanges.get(related) if related is not None else None
        if exchange is not None and await exchange.emit(frame):
            return True
        if self.standalone is not None and await self.standalone.emit(frame):
            return True
        if any_request:  # a server's request must reach the client somehow: on any open request's stream
            for other in reversed(list(self.exchanges.values())):
                if await other.emit(frame):
                    return True
        return False

    async def request(self, method: str, params: dict[str, Any] | None, related: int | str | None) -> Reply:
        frame = self._requests.start(method, params)
        try:
            if not await self._emit(frame, related, any_request=True):
                return RpcError(SERVER_UNAVAILABLE, f"no open stream of this client can carry {method}")
            return await self._requests.answer(frame)
        finally:
            self._requests.forget(frame)

    async def notify(self, method: str, params: dict[str, Any] | None, related: int | str | None) -> None:
        if self._era is Era.MODERN and related is None:
            event = event_from_wire(method, params)
            if event is not None:
                await self._bus.publish(self._key, event)
                return
        frame: Frame = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            frame["params"] = params
        if not await self._emit(frame, related, any_request=False):
            logger.debug("dropped %s: no open stream of this client", method)

    def resolve(self, frame: Frame) -> bool:
        """A client's POSTed answer to a server request; False if nothing asked for it."""
        return self._requests.resolve(frame)
