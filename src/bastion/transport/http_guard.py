"""The gate every MCP POST passes before any MCP handling: bounded, parsed once, consistent.

A POST body is read with a size limit (413) and a deadline for the whole body (408, so a
client that trickles bytes or stalls holds a connection for seconds, not forever), then
parsed once with `jsonrpc.decode`: malformed JSON is a JSON-RPC parse error, a frame of the
wrong shape an invalid request, both with HTTP 400, and nothing unparsed goes further. The
routing headers intermediaries act on (`Mcp-Method`, `Mcp-Name`) must agree with the body
when they are sent, whatever the era: a load balancer or rate limiter that routed on the
header must not see the gateway execute something else (`HeaderMismatch`, -32020). A POST
that would open a new session asks `admit` first; when the gateway is full it is answered
503 with `Retry-After` instead of queueing. The parsed frame is left in the ASGI scope
(`FRAME_SCOPE_KEY`) and the body replayed to the app behind.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

import orjson
from mcp.shared.inbound import (
    MCP_METHOD_HEADER,
    MCP_NAME_HEADER,
    NAME_BEARING_METHODS,
    decode_header_value,
    find_duplicated_routing_header,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.codes import HEADER_MISMATCH, INVALID_REQUEST
from bastion.transport.http_front_app import header_map, repeats_a_header
from bastion.transport.jsonrpc import Frame, FrameError, decode

__all__ = [
    "FRAME_SCOPE_KEY",
    "MAX_BODY_BYTES",
    "READ_TIMEOUT_SECONDS",
    "RETRY_AFTER_SECONDS",
    "Admit",
    "RequestGuard",
    "header_mismatch",
]

logger = logging.getLogger(__name__)

MAX_BODY_BYTES: Final = 4 << 20
"""The largest POST body accepted (the stdio front's frame limit, and the SDK's default)."""
READ_TIMEOUT_SECONDS: Final = 10.0
"""How long the whole body of one POST may take to arrive."""
RETRY_AFTER_SECONDS: Final = 2
"""What a 503 asks a client to wait before it tries to open a session again."""
FRAME_SCOPE_KEY: Final = "bastion.frame"
"""Where the guard leaves the parsed frame for the MCP layer (it is never parsed twice)."""

_METHOD_HEADER: Final = MCP_METHOD_HEADER.encode()
_NAME_HEADER: Final = MCP_NAME_HEADER.encode()

Admit = Callable[[Scope, Frame], int | None]
"""None when the gateway has room for the session this request would open (or it exists), else seconds to wait."""


class RequestGuard:
    def __init__(
        self,
        app: ASGIApp,
        admit: Admit,
        *,
        max_body: int = MAX_BODY_BYTES,
        read_timeout: float = READ_TIMEOUT_SECONDS,
    ) -> None:
        self._app = app
        self._admit = admit
        self._max_body = max_body
        self._read_timeout = read_timeout
        self._deadlines = _Deadlines(read_timeout)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self._app(scope, receive, send)
            return
        declared = header_map(scope).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self._max_body):
            await _reply(send, 413, None, INVALID_REQUEST, f"Request body over the {self._max_body}-byte limit")
            return
        try:
            body = await self._deadlines.keep(self._read(receive))
        except TimeoutError:
            logger.info("a client took longer than %.0f s to send its request body", self._read_timeout)
            await _reply(send, 408, None, INVALID_REQUEST, "Request body not received in time", close=True)
            return
        if body is None:  # the client went away mid-body: nobody to answer
            return
        if len(body) > self._max_body:
            await _reply(send, 413, None, INVALID_REQUEST, f"Request body over the {self._max_body}-byte limit")
            return
        frame = decode(body)
        if isinstance(frame, FrameError):
            await _reply(send, 400, frame.request_id, frame.code, frame.message)
            return
        mismatch = header_mismatch(scope, frame)
        if mismatch is not None:
            await _reply(send, 400, frame.get("id"), HEADER_MISMATCH, mismatch)
            return
        retry = self._admit(scope, frame) if "method" in frame else None
        if retry is not None:
            logger.warning("refused a new session: the gateway is at its session limit")
            await _reply(
                send, 503, frame.get("id"), INVALID_REQUEST, "Too many sessions are opening or open", retry_after=retry
            )
            return
        scope[FRAME_SCOPE_KEY] = frame
        replay: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

        async def replayed() -> Message:
            return replay.pop() if replay else await receive()

        await self._app(scope, replayed, send)

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body, or its first part over the limit; None if the client went away mid-body."""
        message = await receive()
        if message["type"] != "http.request":
            return None
        first: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            return first  # the whole body in one message: nothing to join
        body = bytearray(first)
        while len(body) <= self._max_body and message.get("more_body", False):
            message = await receive()
            if message["type"] != "http.request":
                return None
            body += message.get("body", b"")
        return bytes(body)


class _Deadlines:
    """Reads that must finish within `seconds` of their start, watched by one timer for them all.

    Neither anyio's `move_on_after` (it asks which async library runs, twice a request) nor
    `asyncio.timeout`: that arms a timer and cancels it on every request, and the loop keeps each
    cancelled timer in its heap until it comes due, so ten seconds' worth of them are sifted
    (in Python) on every push. Here a timer waits for the earliest deadline (all reads share one
    timeout, so the first one in is the first one due), cancels the reads that are overdue, and
    is armed again only while reads remain. An overdue read raises TimeoutError, and a
    cancellation from elsewhere passes through, as with `asyncio.timeout`."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._due: dict[asyncio.Task[Any], float] = {}
        """The reads in flight and when each is due, in the order they started (so by deadline)."""
        self._overdue: set[asyncio.Task[Any]] = set()
        self._armed: asyncio.AbstractEventLoop | None = None
        """The loop whose timer watches the reads; None while none is armed (a guard may outlive a loop, as in tests)."""

    async def keep(self, read: Awaitable[bytes | None]) -> bytes | None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a read with a deadline must run in an asyncio task")
        loop = asyncio.get_running_loop()
        cancelling = task.cancelling()
        self._due[task] = loop.time() + self._seconds
        if self._armed is not loop:
            self._armed = loop
            loop.call_at(self._due[task], self._expire, loop)
        try:
            return await read
        except BaseException as exc:
            if task in self._overdue:  # as asyncio.timeout does: take back the cancellation asked for
                ours = task.uncancel() <= cancelling  # (and not also one from elsewhere)
                if ours and isinstance(exc, asyncio.CancelledError):
                    raise TimeoutError from exc
            raise
        finally:
            self._due.pop(task, None)
            self._overdue.discard(task)

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop is not self._armed:
            return  # armed in a loop since replaced
        now = loop.time()
        for task, due in list(self._due.items()):
            if due > now:
                loop.call_at(due, self._expire, loop)
                return
            del self._due[task]
            self._overdue.add(task)
            task.cancel()
        self._armed = None


def header_mismatch(scope: Scope, frame: Frame) -> str | None:
    """Why the routing headers disagree with the body (or appear twice); None when they agree or are absent."""
    headers = header_map(scope)
    if repeats_a_header(scope) or not b"".join(headers).islower():  # else no name, in any case, comes twice
        raw: list[tuple[bytes, bytes]] = scope.get("headers", [])
        duplicated = find_duplicated_routing_header((name.decode("latin-1"), "") for name, _ in raw)
        if duplicated is not None:
            return f"{duplicated} header appears more than once"
    method_header = headers.get(_METHOD_HEADER)
    method = frame.get("method")
    if method_header is not None and method_header.decode("latin-1") != method:
        return f"{MCP_METHOD_HEADER} header does not match the request body's method"
    name_header = headers.get(_NAME_HEADER)
    key = NAME_BEARING_METHODS.get(method) if isinstance(method, str) else None
    if name_header is not None and key is not None:
        params: dict[str, Any] = frame.get("params") or {}
        # A header naming something the body does not carry did not come from this request either.
        if decode_header_value(name_header.decode("latin-1")) != params.get(key):
            return f"{MCP_NAME_HEADER} header does not match the request body's {key!r}"
    return None


async def _reply(
    send: Send,
    status: int,
    request_id: int | str | None,
    code: int,
    message: str,
    *,
    retry_after: int | None = None,
    close: bool = False,
) -> None:
    body = orjson.dumps({"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}})
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
