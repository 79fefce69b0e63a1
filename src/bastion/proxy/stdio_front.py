"""The stdio front: Bastion as the command an MCP client launches.

Reads newline-delimited JSON-RPC from the client, answers the handshake itself, and hands
every other request to the session as a task of its own (so a slow call never blocks the
next one, and a client's `notifications/cancelled` cancels exactly its call). Bad input
gets a JSON-RPC error or a logged drop, never a crash and never a forwarded frame.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import anyio
import anyio.abc

from bastion.codes import INVALID_REQUEST, SERVER_UNAVAILABLE
from bastion.errors import NoServerStarted
from bastion.proxy.client_requests import ClientRequests
from bastion.proxy.handshake import (
    Envelope,
    as_modern_result,
    discover_result,
    initialize_result,
    is_modern,
    parse_envelope,
    parse_initialize,
    strip_envelope,
)
from bastion.proxy.pipeline import ClientInfo
from bastion.proxy.session import ClientPeer, Session
from bastion.transport.channel import FrameChannel
from bastion.transport.jsonrpc import Frame, FrameError, Kind, error_frame, kind_of, result_frame
from bastion.transport.lines import EndOfStream, Oversized
from bastion.types import Era, Reply, RpcError

__all__ = ["SessionFactory", "StdioFront"]

logger = logging.getLogger(__name__)

SessionFactory = Callable[[ClientInfo, ClientPeer, dict[str, Any]], Session]
DRAIN_SECONDS = 30.0
"""How long calls still in flight may take to finish once the client has closed its side."""
IDLE_WORKERS = 8
"""How many request tasks wait for the next request once theirs is answered (the rest end)."""


class _Peer:
    """The client as seen by the session: server-to-client requests and notifications over stdio."""

    def __init__(self, channel: FrameChannel, era: Era) -> None:
        self._channel = channel
        self._era = era
        self._requests = ClientRequests()

    @property
    def can_request(self) -> bool:
        return self._era is Era.HANDSHAKE

    async def request(self, method: str, params: dict[str, Any] | None, related: int | str | None) -> Reply:
        frame = self._requests.start(method, params)
        try:
            await self._channel.send(frame)
            return await self._requests.answer(frame)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return RpcError(SERVER_UNAVAILABLE, "the client is gone")
        finally:
            self._requests.forget(frame)

    async def notify(self, method: str, params: dict[str, Any] | None, related: int | str | None) -> None:
        frame: Frame = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            frame["params"] = params
        try:
            await self._channel.send(frame)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            logger.debug("dropped %s: the client is gone", method)

    def resolve(self, frame: Frame) -> bool:
        return self._requests.resolve(frame)


class StdioFront:
    def __init__(self, channel: FrameChannel, make_session: SessionFactory, *, instance: str) -> None:
        self._channel = channel
        self._make_session = make_session
        self._instance = instance
        self._session: Session | None = None
        self._peer: _Peer | None = None
        self._era: Era | None = None
        self._running: dict[int | str, anyio.CancelScope] = {}
        self._in_flight = 0
        self._idle = anyio.Event()
        self._tasks: anyio.abc.TaskGroup | None = None
        self._workers: list[asyncio.Future[tuple[Frame, Session]]] = []
        """Request tasks done with their request, each waiting for its next one (see `_spawn`)."""
        self._failed: NoServerStarted | None = None

    @property
    def failed(self) -> NoServerStarted | None:
        return self._failed

    async def serve(self) -> None:
        """Serve until the client closes its side; then stop every server.

        Ends early when not one server came up on its first try: the client has been answered
        with the reasons, and `failed` holds them for the caller to raise outside its task groups."""
        async with anyio.create_task_group() as tasks:
            self._tasks = tasks
            while True:
                received = await self._channel.receive()
                if isinstance(received, EndOfStream):
                    break
                if isinstance(received, Oversized):
                    logger.warning("dropped a %d-byte frame from the client: over the size limit", received.size)
                    await self._send(
                        error_frame(
                            received.request_id, INVALID_REQUEST, f"Frame of {received.size} bytes is over the limit"
                        )
                    )
                    continue
                if isinstance(received, FrameError):
                    logger.warning("bad frame from the client: %s", received.message)
                    await self._send(error_frame(received.request_id, received.code, received.message))
                    continue
                await self._dispatch(received)
                if self._failed is not None:
                    break
            # The client closed its side: answer what is still in flight (bounded), then stop.
            with anyio.move_on_after(DRAIN_SECONDS):
                while self._in_flight:
                    await self._idle.wait()
                    self._idle = anyio.Event()
            tasks.cancel_scope.cancel()

    async def _dispatch(self, frame: Frame) -> None:
        kind = kind_of(frame)
        if kind is Kind.RESPONSE:
            if self._peer is None or not self._peer.resolve(frame):
                logger.warning("dropped a response to id %r that Bastion never asked for", frame["id"])
        elif kind is Kind.NOTIFICATION:
            await self._notification(frame["method"], frame.get("params"))
        elif self._session is None:
            await self._open(frame)
        else:
            self._spawn(frame, self._session)

    async def _open(self, frame: Frame) -> None:
        """The first request decides the era and starts the session (and with it, the servers)."""
        method, params, request_id = frame["method"], frame.get("params"), frame["id"]
        if method == "ping":
            await self._send(result_frame(request_id, {}))
            return
        modern = method == "server/discover" or is_modern(params)
        if not modern and method != "initialize":
            await self._send(error_frame(request_id, INVALID_REQUEST, "Invalid Request: send initialize first"))
            return
        envelope = parse_envelope(params) if modern else parse_initialize(params)
        if isinstance(envelope, RpcError):
            await self._send(error_frame(request_id, envelope.code, envelope.message, envelope.data))
            return
        session = await self._start(envelope, Era.MODERN if modern else Era.HANDSHAKE)
        failures = session.start_failures()
        if failures and len(failures) == len(session.supervisors()):
            # Nothing to serve: say why to the client, and end (the CLI exits non-zero).
            reasons = "; ".join(f"{name}: {detail}" for name, detail in failures.items())
            await self._send(error_frame(request_id, SERVER_UNAVAILABLE, f"No server could be started: {reasons}"))
            self._failed = NoServerStarted(failures)
            return
        if method == "initialize":
            result = initialize_result(
                envelope.protocol_version, session.capabilities(), session.instructions(), self._instance
            )
            await self._send(result_frame(request_id, result))
        else:
            self._spawn(frame, session)

    async def _start(self, envelope: Envelope, era: Era) -> Session:
        self._era = era
        self._peer = _Peer(self._channel, era)
        client = ClientInfo("local", "stdio", era, envelope.name, envelope.version)
        session = self._make_session(client, self._peer, envelope.capabilities)
        assert self._tasks is not None
        await self._tasks.start(session.run)
        self._session = session
        return session

    def _spawn(self, frame: Frame, session: Session) -> None:
        """Run the request in a task of its own: a task that finished its last request, if one waits,
        else a new one. Starting an anyio task costs a cancel scope, an event and a task handle;
        handing a request to a waiting task costs one future."""
        assert self._tasks is not None
        self._in_flight += 1
        while self._workers:
            waiting = self._workers.pop()
            if not waiting.done():  # done: cancelled with the task group
                waiting.set_result((frame, session))
                return
        self._tasks.start_soon(self._work, frame, session)

    async def _work(self, frame: Frame, session: Session) -> None:
        """Answer requests one after another; wait for the next only while few others wait."""
        while True:
            await self._request(frame, session)
            if len(self._workers) >= IDLE_WORKERS:
                return
            waiting: asyncio.Future[tuple[Frame, Session]] = asyncio.get_running_loop().create_future()
            self._workers.append(waiting)
            del frame  # a waiting task holds no request (a frame may be megabytes)
            frame, session = await waiting

    async def _request(self, frame: Frame, session: Session) -> None:
        try:
            await self._answer(frame, session)
        except Exception as exc:  # this front's one error boundary: this request fails, the session goes on
            reply = await session.failure(frame["method"], frame.get("params"), frame["id"], exc)
            assert isinstance(reply, RpcError)
            await self._send(error_frame(frame["id"], reply.code, reply.message))
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    async def _answer(self, frame: Frame, session: Session) -> None:
        method, params, request_id = frame["method"], frame.get("params"), frame["id"]
        if request_id in self._running:
            await self._send(error_frame(request_id, INVALID_REQUEST, f"Invalid Request: id {request_id!r} is in use"))
            return
        reply: Reply
        if method == "initialize":
            reply = RpcError(INVALID_REQUEST, "Invalid Request: the session is already initialized")
        elif self._era is Era.MODERN:
            envelope = parse_envelope(params) if method != "server/discover" or params else None
            if isinstance(envelope, RpcError):
                reply = envelope
            elif method == "server/discover":
                reply = discover_result(session.capabilities(), session.instructions(), self._instance)
            else:
                reply = await self._run(session, method, strip_envelope(params), request_id)
                if isinstance(reply, dict) and reply is not _CANCELLED:
                    reply = as_modern_result(method, reply)
        else:
            reply = await self._run(session, method, params, request_id)
        if reply is _CANCELLED:
            return
        if isinstance(reply, RpcError):
            await self._send(error_frame(request_id, reply.code, reply.message, reply.data))
        else:
            await self._send(result_frame(request_id, reply))

    async def _run(self, session: Session, method: str, params: dict[str, Any] | None, request_id: int | str) -> Reply:
        with anyio.CancelScope() as scope:
            self._running[request_id] = scope
            try:
                return await session.handle(method, params, request_id)
            finally:
                self._running.pop(request_id, None)
        return _CANCELLED

    async def _notification(self, method: str, params: dict[str, Any] | None) -> None:
        if method == "notifications/cancelled":
            request_id = params.get("requestId") if params else None
            scope = self._running.get(request_id) if isinstance(request_id, int | str) else None
            if scope is not None:
                scope.cancel()
        elif self._session is not None:
            await self._session.notification(method, params)

    async def _send(self, frame: Frame) -> None:
        try:
            await self._channel.send(frame)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            logger.info("could not reply: the client is gone")


_CANCELLED: Reply = RpcError(0, "cancelled")
