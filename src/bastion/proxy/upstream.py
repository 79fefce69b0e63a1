"""One connection to one MCP server: handshake in either era, requests, and the reader loop.

The upstream speaks raw frames on the hot path. It negotiates the era the way the SDK's
client does in `auto` mode (probe `server/discover`, fall back to `initialize`), and on a
2026-07-28 server stamps the per-request envelope on every request it forwards.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
import mcp_types as mt
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION, LATEST_MODERN_VERSION
from pydantic import ValidationError

from bastion import __version__
from bastion.codes import INTERNAL_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, REQUEST_TIMEOUT, SERVER_UNAVAILABLE
from bastion.errors import ServerUnavailable
from bastion.transport.jsonrpc import Frame, FrameError, Kind, error_frame, kind_of, result_frame
from bastion.transport.lines import EndOfStream, Oversized
from bastion.transport.link import ServerLink
from bastion.types import Era, Reply, RpcError

__all__ = ["Connection", "Upstream", "UpstreamHandler"]

logger = logging.getLogger(__name__)

DISCOVER_TIMEOUT = 10.0
TIMEOUT_RESOLUTION = 0.25
"""How often overdue requests are looked for: a request times out at most this late."""
CLIENT_INFO = {"name": "bastion", "version": __version__}


class Connection(Protocol):
    """A server as a session uses it: an `Upstream` of its own, or its view of a pooled one."""

    @property
    def name(self) -> str: ...
    @property
    def era(self) -> Era: ...
    @property
    def protocol_version(self) -> str: ...
    @property
    def server_info(self) -> dict[str, Any]: ...
    @property
    def capabilities(self) -> dict[str, Any]: ...
    @property
    def instructions(self) -> str | None: ...
    @property
    def log_level(self) -> str | None: ...
    @log_level.setter
    def log_level(self, value: str | None) -> None: ...
    async def request(self, method: str, params: dict[str, Any] | None, timeout: float | None = None) -> Reply: ...
    async def notify(self, method: str, params: dict[str, Any] | None) -> None: ...


class UpstreamHandler(Protocol):
    """What an upstream hands to its owner: requests and notifications the server sends."""

    async def server_request(self, upstream: Upstream, method: str, params: dict[str, Any] | None) -> Reply: ...
    async def server_notification(self, upstream: Upstream, method: str, params: dict[str, Any] | None) -> None: ...


@dataclass(slots=True)
class _Pending:
    method: str
    deadline: float
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    """Resolved once `reply` is set (a bare future: one per call, cheaper than an event and its waiters)."""
    reply: Reply | None = None

    def wake(self) -> None:
        if not self.done.done():  # done already: woken before, or its caller was cancelled
            self.done.set_result(None)


class Upstream:
    def __init__(
        self,
        name: str,
        link: ServerLink,
        handler: UpstreamHandler,
        *,
        client_capabilities: dict[str, Any],
        protocol: str = "auto",
        request_timeout: float = 300.0,
    ) -> None:
        self.name = name
        self.link = link
        self.handler = handler
        self.request_timeout = request_timeout
        self._client_capabilities = client_capabilities
        self._protocol = protocol
        self._ids = itertools.count(1)
        self._pending: dict[int | str, _Pending] = {}
        self._closed: str | None = None
        self._tasks: anyio.abc.TaskGroup | None = None
        self.era = Era.HANDSHAKE
        self.protocol_version = ""
        self.server_info: dict[str, Any] = {}
        self.capabilities: dict[str, Any] = {}
        self.instructions: str | None = None
        self.log_level: str | None = None
        """The client's logging level; a 2026-07-28 server learns it in each request's envelope."""

    # -- lifecycle ---------------------------------------------------------------------------------------------

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Read frames until the server goes away; reports readiness once the reader runs."""
        async with anyio.create_task_group() as tasks:
            self._tasks = tasks
            tasks.start_soon(self._expire_overdue)
            task_status.started()
            try:
                await self._read_loop()
            finally:
                self._fail_all(self.link.exit_description())
                tasks.cancel_scope.cancel()

    async def _expire_overdue(self) -> None:
        """Time out requests the server never answers.

        Deadlines are stored with each request and checked here, so a call costs no timer
        of its own on the hot path.
        """
        while True:
            await anyio.sleep(TIMEOUT_RESOLUTION)
            now = time.monotonic()
            for request_id, pending in list(self._pending.items()):
                if pending.reply is None and pending.deadline <= now:
                    pending.reply = RpcError(
                        REQUEST_TIMEOUT, f"server {self.name!r} did not answer {pending.method} in time"
                    )
                    pending.wake()
                    if isinstance(request_id, int):
                        await self._cancel(request_id, "request timed out")

    async def handshake(self, timeout: float, prefer: Era = Era.MODERN) -> None:
        """Negotiate the era and version; raise ServerUnavailable if the server does not answer.

        With `auto`, the era the client speaks is tried first (nothing to translate, so every
        feature passes as the server implements it), and the other era if the server refuses.
        """
        try:
            with anyio.fail_after(timeout):
                if self._protocol == LATEST_MODERN_VERSION:
                    if not await self._discover():
                        raise ServerUnavailable(
                            self.name, "does not speak the 2026-07-28 protocol it is configured for"
                        )
                elif self._protocol != "auto":
                    await self._initialize()
                elif prefer is Era.HANDSHAKE:
                    if not await self._initialize(fallback=True) and not await self._discover():
                        raise ServerUnavailable(self.name, "refused both initialize and server/discover")
                elif not await self._discover():
                    await self._initialize()
        except TimeoutError:
            raise ServerUnavailable(self.name, f"did not complete the MCP handshake within {timeout:g}s") from None

    async def _discover(self) -> bool:
        meta = {
            mt.PROTOCOL_VERSION_META_KEY: LATEST_MODERN_VERSION,
            mt.CLIENT_INFO_META_KEY: CLIENT_INFO,
            mt.CLIENT_CAPABILITIES_META_KEY: self._client_capabilities,
        }
        with anyio.move_on_after(DISCOVER_TIMEOUT):
            reply = await self._send_request("server/discover", {"_meta": meta}, timeout=DISCOVER_TIMEOUT)
            if isinstance(reply, RpcError):
                if reply.code == SERVER_UNAVAILABLE:
                    raise ServerUnavailable(self.name, reply.message)
                return False
            try:
                result = mt.DiscoverResult.model_validate(reply)
            except ValidationError as exc:
                logger.warning("server %s: invalid server/discover result, trying initialize: %s", self.name, exc)
                return False
            if LATEST_MODERN_VERSION not in result.supported_versions:
                return False
            self.era = Era.MODERN
            self.protocol_version = LATEST_MODERN_VERSION
            self.capabilities = result.capabilities.model_dump(by_alias=True, mode="json", exclude_none=True)
            self.instructions = result.instructions
            stamp = (result.meta or {}).get(mt.SERVER_INFO_META_KEY)
            self.server_info = stamp if isinstance(stamp, dict) else {}  # pyright: ignore[reportUnknownMemberType]
            return True
        return False

    async def _initialize(self, *, fallback: bool = False) -> bool:
        """The handshake era; False if the server refuses it and `fallback` allows trying the other."""
        version = self._protocol if self._protocol in HANDSHAKE_PROTOCOL_VERSIONS else LATEST_HANDSHAKE_VERSION
        params = {"protocolVersion": version, "capabilities": self._client_capabilities, "clientInfo": CLIENT_INFO}
        reply = await self._send_request("initialize", params, timeout=None)
        if isinstance(reply, RpcError):
            if fallback and reply.code != SERVER_UNAVAILABLE:
                return False
            raise ServerUnavailable(self.name, f"refused initialize: {reply.message} ({reply.code})")
        try:
            result = mt.InitializeResult.model_validate(reply)
        except ValidationError as exc:
            raise ServerUnavailable(
                self.name, f"sent an invalid initialize result: {exc.error_count()} errors"
            ) from exc
        if result.protocol_version not in HANDSHAKE_PROTOCOL_VERSIONS:
            raise ServerUnavailable(self.name, f"answered with unsupported protocol version {result.protocol_version}")
        self.era = Era.HANDSHAKE
        self.protocol_version = result.protocol_version
        self.capabilities = result.capabilities.model_dump(by_alias=True, mode="json", exclude_none=True)
        self.server_info = result.server_info.model_dump(by_alias=True, mode="json", exclude_none=True)
        self.instructions = result.instructions
        await self.notify("notifications/initialized", None)
        return True

    async def aclose(self) -> None:
        self._fail_all("is shutting down")
        await self.link.aclose()

    @property
    def alive(self) -> bool:
        return self._closed is None

    # -- outbound ----------------------------------------------------------------------------------------------

    async def request(self, method: str, params: dict[str, Any] | None, timeout: float | None = None) -> Reply:
        """Forward one request; the reply is the server's result or error, or why there was none."""
        if self.era is Era.MODERN:
            params = self._envelope(params)
        return await self._send_request(method, params, timeout=timeout or self.request_timeout)

    async def notify(self, method: str, params: dict[str, Any] | None) -> None:
        frame: Frame = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            frame["params"] = params
        try:
            await self.link.send(frame)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            logger.info("server %s: dropped %s, the server is gone", self.name, method)

    def _envelope(self, params: dict[str, Any] | None) -> dict[str, Any]:
        params = dict(params) if params else {}
        meta = dict(params.get("_meta") or {})
        meta[mt.PROTOCOL_VERSION_META_KEY] = self.protocol_version
        meta[mt.CLIENT_INFO_META_KEY] = CLIENT_INFO
        meta[mt.CLIENT_CAPABILITIES_META_KEY] = self._client_capabilities
        if self.log_level is not None:
            meta.setdefault(mt.LOG_LEVEL_META_KEY, self.log_level)
        params["_meta"] = meta
        return params

    async def _send_request(self, method: str, params: dict[str, Any] | None, *, timeout: float | None) -> Reply:
        if self._closed is not None:
            return RpcError(SERVER_UNAVAILABLE, f"server {self.name!r} {self._closed}")
        request_id = next(self._ids)
        deadline = time.monotonic() + (timeout if timeout is not None else 86400.0)
        pending = self._pending[request_id] = _Pending(method, deadline)
        frame: Frame = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            frame["params"] = params
        try:
            try:
                await self.link.send(frame)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                return RpcError(SERVER_UNAVAILABLE, f"server {self.name!r} {self.link.exit_description()}")
            await pending.done
            assert pending.reply is not None
            return pending.reply
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self._cancel(request_id, "cancelled by the client")
            raise
        finally:
            self._pending.pop(request_id, None)

    async def _cancel(self, request_id: int, reason: str) -> None:
        if self._closed is None and request_id in self._pending:
            await self.notify("notifications/cancelled", {"requestId": request_id, "reason": reason})

    # -- inbound -----------------------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        while True:
            received = await self.link.receive()
            if isinstance(received, EndOfStream):
                return
            if isinstance(received, Oversized):
                logger.warning("server %s: dropped a %d-byte frame over the size limit", self.name, received.size)
                pending = self._pending.get(received.request_id) if received.request_id is not None else None
                if pending is not None and pending.reply is None:
                    pending.reply = RpcError(
                        INVALID_REQUEST, f"server {self.name!r} sent a {received.size}-byte answer, over the size limit"
                    )
                    pending.wake()
                continue
            if isinstance(received, FrameError):
                logger.warning("server %s: dropped a malformed frame: %s", self.name, received.message)
                if self._fail_pending(received.request_id, received.message):
                    continue  # it was the answer to one of ours: its caller learns now, not at the timeout
                if received.request_id is not None:
                    await self._reply(error_frame(received.request_id, received.code, received.message))
                continue
            self._dispatch(received)

    def _fail_pending(self, request_id: object, why: str) -> bool:
        """Fail the request of ours that `request_id` names with a malformed answer; False if none waits."""
        pending = self._pending.get(request_id) if isinstance(request_id, int | str) else None
        if pending is None or pending.reply is not None:
            return False
        pending.reply = RpcError(INTERNAL_ERROR, f"server {self.name!r} sent a malformed answer: {why}")
        pending.wake()
        return True

    def _dispatch(self, frame: Frame) -> None:
        kind = kind_of(frame)
        if kind is Kind.RESPONSE:
            pending = self._pending.get(frame["id"])
            if pending is None:
                logger.warning("server %s: dropped a response to id %r that nobody asked for", self.name, frame["id"])
                return
            # `"error": null` is an error too (the frame was classed by its members): never look for a result then.
            pending.reply = RpcError.from_wire(frame["error"]) if "error" in frame else frame["result"]
            pending.wake()
        elif kind is Kind.NOTIFICATION:
            assert self._tasks is not None
            self._tasks.start_soon(self.handler.server_notification, self, frame["method"], frame.get("params"))
        elif kind is Kind.REQUEST:
            assert self._tasks is not None
            self._tasks.start_soon(self._answer, frame)
        elif self._fail_pending(frame.get("id"), "a response needs exactly one of result (an object) and error"):
            logger.warning("server %s: a malformed answer to id %r", self.name, frame.get("id"))

    async def _answer(self, frame: Frame) -> None:
        method = frame["method"]
        if method == "ping":
            reply: Reply = {}
        elif not isinstance(method, str) or not method:
            reply = RpcError(INVALID_REQUEST, "Invalid Request: method must be a non-empty string")
        else:
            try:
                reply = await self.handler.server_request(self, method, frame.get("params"))
            except Exception:
                logger.exception("server %s: handling its %s request failed", self.name, method)
                reply = RpcError(METHOD_NOT_FOUND, f"Bastion could not relay {method}")
        if isinstance(reply, RpcError):
            await self._reply(error_frame(frame["id"], reply.code, reply.message, reply.data))
        else:
            await self._reply(result_frame(frame["id"], reply))

    async def _reply(self, frame: Frame) -> None:
        try:
            await self.link.send(frame)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            logger.info("server %s: could not deliver a reply, the server is gone", self.name)

    def _fail_all(self, reason: str) -> None:
        if self._closed is None:
            self._closed = reason
        error = RpcError(SERVER_UNAVAILABLE, f"server {self.name!r} {reason}")
        for pending in list(self._pending.values()):
            if pending.reply is None:
                pending.reply = error
            pending.wake()


Starter = Callable[[], Awaitable[Upstream]]
