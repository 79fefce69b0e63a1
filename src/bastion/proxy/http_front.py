"""The Streamable HTTP front: one endpoint (/mcp) for many clients, each with its own token.

Bastion's own small ASGI path, like the stdio front: the guard in front of it has read the
body within its limits and parsed it once; this module takes the raw method and params to
the client's session (the same core the stdio front feeds) and writes the reply, as plain
JSON when nothing streams, as SSE when progress, a log message or a server's request has
to reach the client first. The SDK is used where a message is synthesized or inspected in
depth: the handshake and discovery results, the 2026-07-28 request ladder (envelope and
routing headers), listen-stream events, DNS-rebinding checks.

Handshake era (up to 2025-11-25): `initialize` opens a session named by `Mcp-Session-Id`
(unknown ids get 404; a session answers only the credential that opened it), a GET opens
its stream for what belongs to no request, DELETE ends it. 2026-07-28: every POST stands
alone; one session of servers per client and token ceiling serves all of that client's
requests, on any instance, and `subscriptions/listen` streams carry its list changes. Whose
server processes a session uses is each server's `isolation` (proxy/pools.py): by default one
set per client identity, so one client's server state never reaches another client.
"""

from __future__ import annotations

import functools
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote

import anyio
import anyio.abc
import mcp_types as mt
import orjson
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from mcp.shared.inbound import (
    ERROR_CODE_HTTP_STATUS,
    InboundLadderRejection,
    classify_inbound_request,
    validate_mcp_param_headers,
)
from mcp.shared.subscriptions import SUBSCRIPTION_ID_META_KEY, ServerEvent, event_matches, event_to_notification
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from bastion.codes import INVALID_PARAMS, INVALID_REQUEST, SERVER_UNAVAILABLE
from bastion.config.model import HttpConfig
from bastion.errors import GatewayFull
from bastion.proxy.handshake import (
    as_modern_result,
    discover_result,
    initialize_result,
    parse_envelope,
    parse_initialize,
    strip_envelope,
)
from bastion.proxy.http_streams import SSE_HEADERS, ClientBus, Exchange, HttpPeer, Standalone, json_response, sse_event
from bastion.proxy.pipeline import ClientInfo
from bastion.proxy.pools import gateway_full
from bastion.proxy.session import LISTINGS, Session
from bastion.proxy.stdio_front import SessionFactory
from bastion.transport.http_front_app import CLIENT_SCOPE_KEY, GRANTS_SCOPE_KEY, header_map
from bastion.transport.http_guard import FRAME_SCOPE_KEY, RETRY_AFTER_SECONDS, RequestGuard
from bastion.transport.jsonrpc import Frame, Kind, error_frame, kind_of, result_frame
from bastion.types import Era, Reply, RpcError

__all__ = ["HttpFront"]

logger = logging.getLogger(__name__)

SESSION_HEADER: Final = "mcp-session-id"
VERSION_HEADER: Final = "mcp-protocol-version"
KEEPALIVE_SECONDS: Final = 15.0
"""A comment line this often on a quiet stream, so that proxies with idle timeouts keep it open."""
OPENS_NO_SESSION: Final = frozenset({"initialize"})
PASSED_KEPT: Final = 64
"""How many header combinations that passed the DNS-rebinding check are remembered (see `_guarded`)."""


@dataclass
class _Entry:
    key: str
    session: Session
    peer: HttpPeer
    owner: str
    ready: anyio.Event = field(default_factory=anyio.Event)
    scope: anyio.CancelScope | None = None
    failed: str | None = None
    full: GatewayFull | None = None
    """Why the session could not start for now (a pool at its limit): its request gets 503 and Retry-After."""
    last_used: float = 0.0
    running: dict[int | str, anyio.CancelScope] = field(default_factory=dict[int | str, anyio.CancelScope])


class HttpFront:
    def __init__(
        self,
        make_session: SessionFactory,
        *,
        instance: str,
        instructions: str | None,
        admit_session: Callable[[str], None] | None = None,
        limits: HttpConfig | None = None,
    ) -> None:
        self._make_session = make_session
        self._limits = limits or HttpConfig()
        """How many sessions at once, how many starting at once, and how long an idle one lives."""
        self._admit_session = admit_session
        """Raises `GatewayFull` when a new session of this client would find a server's pool full."""
        self._instance = instance
        self._instructions = instructions
        self._sessions: dict[str, _Entry] = {}
        self._tasks: anyio.abc.TaskGroup | None = None
        self._bus = ClientBus()
        self._security = TransportSecurityMiddleware(None)
        self._passed: set[tuple[bool, bytes | None, bytes | None, bytes | None]] = set()
        """(POST?, Content-Type, Host, Origin) the SDK's check let through: it depends on nothing else."""

    def app(self, security: TransportSecuritySettings, host: str) -> ASGIApp:
        """The MCP endpoint: the guard (limits, one parse, header checks, admission), then this front."""
        self._security = TransportSecurityMiddleware(security)
        self._passed = set()
        return RequestGuard(self, self.admit)

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Host the per-client sessions and close idle ones."""
        async with anyio.create_task_group() as tasks:
            self._tasks = tasks
            task_status.started()
            while True:
                await anyio.sleep(min(60.0, self._limits.session_idle_timeout / 4))
                now = time.monotonic()
                for entry in list(self._sessions.values()):
                    if now - entry.last_used > self._limits.session_idle_timeout and not entry.running:
                        self.close(entry.key)

    def close(self, key: str) -> None:
        entry = self._sessions.pop(key, None)
        if entry is None:
            return
        if entry.peer.standalone is not None:
            entry.peer.standalone.close()
        if entry.scope is not None:
            entry.scope.cancel()

    def drain(self) -> None:
        """Before the server stops: end every GET and listen stream (their clients reconnect, to another
        instance if there is one), so that only requests in flight are waited for."""
        for entry in self._sessions.values():
            if entry.peer.standalone is not None:
                entry.peer.standalone.close()
        self._bus.close()

    def session_count(self) -> int:
        return len(self._sessions)

    def admit(self, scope: Scope, frame: Frame) -> int | None:
        """None if there is room for the session this request would open (or it exists); else seconds to wait."""
        method = frame.get("method")
        if "id" not in frame:
            return None
        modern = _modern(scope)
        if not modern and method not in OPENS_NO_SESSION:
            return None  # a handshake-era session is opened by initialize alone
        if modern and self._modern_key(scope) in self._sessions:
            return None
        starting = sum(1 for entry in self._sessions.values() if not entry.ready.is_set())
        if starting >= self._limits.max_starting or len(self._sessions) >= self._limits.max_sessions:
            return RETRY_AFTER_SECONDS
        if self._admit_session is not None:
            try:
                self._admit_session(_principal(scope)[0])
            except GatewayFull as full:
                logger.info("refused a new session: %s", full)
                return full.retry_after
        return None

    # -- ASGI ----------------------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method = scope["method"]
        if not await self._guarded(scope, receive, send, is_post=method == "POST"):
            return
        modern = _modern(scope)
        if method == "POST":
            frame: Frame = scope[FRAME_SCOPE_KEY]
            if modern:
                await self._modern(scope, frame, receive, send)
            else:
                await self._handshake(scope, frame, send)
        elif method == "GET" and not modern:
            await self._get(scope, receive, send)
        elif method == "DELETE" and not modern:
            await self._delete(scope, send)
        else:
            allow = b"POST" if modern else b"GET, POST, DELETE"
            await send({"type": "http.response.start", "status": 405, "headers": [(b"allow", allow)]})
            await send({"type": "http.response.body", "body": b""})

    async def _guarded(self, scope: Scope, receive: Receive, send: Send, *, is_post: bool) -> bool:
        """The SDK's DNS-rebinding check (Host, Origin, and a POST's Content-Type); False once it has
        answered a refusal. Its verdict depends on those headers alone, so a combination it let through
        is not asked again (a client sends the same ones with every request); a refused one always is."""
        headers = header_map(scope)
        seen = (is_post, headers.get(b"content-type"), headers.get(b"host"), headers.get(b"origin"))
        if seen in self._passed:
            return True
        refused = await self._security.validate_request(Request(scope), is_post=is_post)
        if refused is not None:
            await refused(scope, receive, send)
            return False
        if len(self._passed) < PASSED_KEPT:
            self._passed.add(seen)
        return True

    # -- handshake era -------------------------------------------------------------------------------------------

    async def _handshake(self, scope: Scope, frame: Frame, send: Send) -> None:
        kind = kind_of(frame)
        if kind is Kind.REQUEST and frame["method"] == "initialize":
            await self._initialize(scope, frame, send)
            return
        entry = await self._known(scope, send)
        if entry is None:
            return
        headers = [(SESSION_HEADER.encode(), entry.key.encode())]
        if kind is Kind.REQUEST:
            await self._answer(entry, scope, frame, send, headers, modern=False)
            return
        if kind is Kind.RESPONSE:
            if not entry.peer.resolve(frame):
                logger.warning("dropped a response to id %r that Bastion never asked for", frame["id"])
        else:
            await self._notification(entry, frame["method"], frame.get("params"))
        await send({"type": "http.response.start", "status": 202, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    async def _initialize(self, scope: Scope, frame: Frame, send: Send) -> None:
        envelope = parse_initialize(frame.get("params"))
        if isinstance(envelope, RpcError):
            await _error(send, 400, frame["id"], envelope)
            return
        key = secrets.token_hex(16)
        name, grants = _principal(scope)
        client = ClientInfo(name, key, Era.HANDSHAKE, envelope.name, envelope.version, grants)
        entry = await self._open(key, _owner(scope), client, envelope.capabilities)
        if entry.full is not None or entry.failed is not None:
            self.close(key)
            await self._failed(entry, frame["id"], send)
            return
        session = entry.session
        result = initialize_result(
            envelope.protocol_version, session.capabilities(), self._instructions_of(session), self._instance
        )
        body = orjson.dumps(result_frame(frame["id"], result))
        await json_response(send, 200, body, [(SESSION_HEADER.encode(), key.encode())])

    async def _known(self, scope: Scope, send: Send) -> _Entry | None:
        """The handshake-era session a request names; answered 400 or 404 (and None) when there is none."""
        key = _header(scope, SESSION_HEADER)
        if key is None:
            await _error(send, 400, None, RpcError(INVALID_REQUEST, "Bad Request: Missing session ID"))
            return None
        version = _header(scope, VERSION_HEADER)
        if version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS:
            await _error(
                send, 400, None, RpcError(INVALID_REQUEST, f"Bad Request: Unsupported protocol version {version}")
            )
            return None
        entry = self._sessions.get(key)
        if entry is None or entry.owner != _owner(scope) or entry.session.client.era is not Era.HANDSHAKE:
            # Another credential's session answers exactly as a session that does not exist.
            await _error(send, 404, None, RpcError(INVALID_REQUEST, "Session not found"))
            return None
        if not entry.ready.is_set():  # (waiting on a set event would still yield to the loop once)
            await entry.ready.wait()
        return entry

    async def _get(self, scope: Scope, receive: Receive, send: Send) -> None:
        entry = await self._known(scope, send)
        if entry is None:
            return
        if "text/event-stream" not in (_header(scope, "accept") or "") and "*/*" not in (
            _header(scope, "accept") or ""
        ):
            await _error(
                send, 406, None, RpcError(INVALID_REQUEST, "Not Acceptable: the client must accept text/event-stream")
            )
            return
        if entry.peer.standalone is not None and not entry.peer.standalone.closed:
            await _error(send, 409, None, RpcError(INVALID_REQUEST, "Conflict: only one GET stream per session"))
            return
        feed, frames = anyio.create_memory_object_stream[Frame](64)
        stream = entry.peer.standalone = Standalone(feed)
        headers = [*SSE_HEADERS, (SESSION_HEADER.encode(), entry.key.encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(_until_disconnect, receive, tasks.cancel_scope)
                async with frames:
                    while True:
                        frame: Frame | None = None
                        with anyio.move_on_after(KEEPALIVE_SECONDS):
                            try:
                                frame = await frames.receive()
                            except anyio.EndOfStream:
                                break
                        body = sse_event(frame) if frame is not None else b": keepalive\r\n\r\n"
                        await send({"type": "http.response.body", "body": body, "more_body": True})
                tasks.cancel_scope.cancel()
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            logger.debug("a GET stream's client went away")
        finally:
            stream.close()

    async def _delete(self, scope: Scope, send: Send) -> None:
        entry = await self._known(scope, send)
        if entry is None:
            return
        self.close(entry.key)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def _notification(self, entry: _Entry, method: str, params: dict[str, Any] | None) -> None:
        if method == "notifications/cancelled":
            request_id = params.get("requestId") if params else None
            running = entry.running.get(request_id) if isinstance(request_id, int | str) else None
            if running is not None:
                running.cancel()
        elif entry.failed is None:
            await entry.session.notification(method, params)

    # -- 2026-07-28 ---------------------------------------------------------------------------------------------

    async def _modern(self, scope: Scope, frame: Frame, receive: Receive, send: Send) -> None:
        kind = kind_of(frame)
        if kind is not Kind.REQUEST:
            if kind is Kind.NOTIFICATION and _header(scope, VERSION_HEADER) in MODERN_PROTOCOL_VERSIONS:
                # The 2026-07-28 wire has no client notifications (a client cancels by closing its stream).
                await send({"type": "http.response.start", "status": 202, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
            message = "Body must be a single JSON-RPC request or notification object"
            await _error(send, 400, frame.get("id"), RpcError(INVALID_REQUEST, message))
            return
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        verdict = classify_inbound_request(frame, headers=headers)
        if isinstance(verdict, InboundLadderRejection):
            rejection = RpcError(verdict.code, verdict.message, verdict.data)
            await _error(send, ERROR_CODE_HTTP_STATUS.get(verdict.code, 400), frame["id"], rejection)
            return
        envelope = parse_envelope(frame.get("params"))
        if isinstance(envelope, RpcError):
            await _error(send, ERROR_CODE_HTTP_STATUS.get(envelope.code, 400), frame["id"], envelope)
            return
        key = self._modern_key(scope)
        entry = self._sessions.get(key)
        if entry is None:
            name, grants = _principal(scope)
            client = ClientInfo(name, key, Era.MODERN, envelope.name, envelope.version, grants)
            entry = await self._open(key, _owner(scope), client, envelope.capabilities)
        elif not entry.ready.is_set():
            await entry.ready.wait()
        if entry.full is not None or entry.failed is not None:
            await self._failed(entry, frame["id"], send)
            return
        method = frame["method"]
        mismatch = _param_headers(entry, frame, scope) if method == "tools/call" else None
        if mismatch is not None:
            await _error(send, ERROR_CODE_HTTP_STATUS.get(mismatch.code, 400), frame["id"], mismatch)
            return
        if method == "server/discover":
            session = entry.session
            result = discover_result(session.capabilities(), self._instructions_of(session), self._instance)
            await json_response(send, 200, orjson.dumps(result_frame(frame["id"], result)))
        elif method == "subscriptions/listen":
            await self._listen(entry, frame, receive, send)
        else:
            async with anyio.create_task_group() as tasks:
                # On this wire a client cancels a request by closing its stream.
                tasks.start_soon(_until_disconnect, receive, tasks.cancel_scope)
                await self._answer(entry, scope, frame, send, [], modern=True)
                tasks.cancel_scope.cancel()

    async def _listen(self, entry: _Entry, frame: Frame, receive: Receive, send: Send) -> None:
        try:
            params = mt.SubscriptionsListenRequestParams.model_validate(frame.get("params") or {})
        except ValidationError as exc:
            await _error(
                send, 400, frame["id"], RpcError(INVALID_PARAMS, f"Invalid params: {exc.error_count()} errors")
            )
            return
        wanted = params.notifications
        honored = mt.SubscriptionFilter(
            tools_list_changed=True if wanted.tools_list_changed else None,
            prompts_list_changed=True if wanted.prompts_list_changed else None,
            resources_list_changed=True if wanted.resources_list_changed else None,
            resource_subscriptions=list(wanted.resource_subscriptions) if wanted.resource_subscriptions else None,
        )
        uris = frozenset(honored.resource_subscriptions or ())
        meta: dict[str, Any] = {SUBSCRIPTION_ID_META_KEY: frame["id"]}
        feed, events = anyio.create_memory_object_stream[ServerEvent](256)

        def deliver(event: ServerEvent) -> None:
            if event_matches(honored, uris, event):
                try:
                    feed.send_nowait(event)
                except (anyio.WouldBlock, anyio.ClosedResourceError):
                    feed.close()  # a client that stopped reading: end its stream, it re-listens and refetches

        unsubscribe = self._bus.subscribe(entry.key, deliver, feed.close)
        ack = mt.SubscriptionsAcknowledgedNotification(
            params=mt.SubscriptionsAcknowledgedNotificationParams(notifications=honored, _meta=meta)
        )
        try:
            await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
            await send(
                {"type": "http.response.body", "body": sse_event({"jsonrpc": "2.0", **_dump(ack)}), "more_body": True}
            )
            async with anyio.create_task_group() as tasks, events:
                tasks.start_soon(_until_disconnect, receive, tasks.cancel_scope)
                while True:
                    event: ServerEvent | None = None
                    with anyio.move_on_after(KEEPALIVE_SECONDS):
                        try:
                            event = await events.receive()
                        except anyio.EndOfStream:
                            break
                    body = (
                        sse_event({"jsonrpc": "2.0", **_dump(event_to_notification(event, meta))})
                        if event
                        else b": keepalive\r\n\r\n"
                    )
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                tasks.cancel_scope.cancel()
            end = result_frame(frame["id"], _dump(mt.SubscriptionsListenResult(_meta=meta)))
            await send({"type": "http.response.body", "body": sse_event(end), "more_body": False})
        except OSError:
            logger.debug("a listen stream's client went away")
        finally:
            unsubscribe()
            feed.close()

    # -- both eras ----------------------------------------------------------------------------------------------

    async def _answer(
        self, entry: _Entry, scope: Scope, frame: Frame, send: Send, headers: list[tuple[bytes, bytes]], *, modern: bool
    ) -> None:
        """Run one request through the client's session and answer it (JSON, or SSE once something streams)."""
        method, params, request_id = frame["method"], frame.get("params"), frame["id"]
        accept = _header(scope, "accept") or ""
        wildcard = "*/*" in accept
        json_ok, sse_ok = wildcard or "application/json" in accept, wildcard or "text/event-stream" in accept
        if not (json_ok or sse_ok):
            await _error(send, 406, request_id, RpcError(INVALID_REQUEST, "Not Acceptable: accept application/json"))
            return
        if entry.failed is not None:
            await _error(send, 200, request_id, RpcError(SERVER_UNAVAILABLE, entry.failed))
            return
        exchange = Exchange(send, headers, json_ok=json_ok, sse_ok=sse_ok)
        if request_id in entry.running:
            await exchange.finish(
                error_frame(request_id, INVALID_REQUEST, f"Invalid Request: id {request_id!r} is in use")
            )
            return
        entry.peer.exchanges[request_id] = exchange
        reply: Reply | None = None
        try:
            with anyio.CancelScope() as cancel:
                entry.running[request_id] = cancel
                try:
                    reply = await entry.session.handle(method, strip_envelope(params) if modern else params, request_id)
                except Exception as exc:  # this front's one error boundary: this request fails, the session goes on
                    reply = await entry.session.failure(method, params, request_id, exc)
        finally:
            entry.running.pop(request_id, None)
            entry.peer.exchanges.pop(request_id, None)
            entry.last_used = time.monotonic()  # idle from the end of its last request
        if reply is None:
            reply = RpcError(-32800, "Request cancelled")
        if isinstance(reply, RpcError):
            status = ERROR_CODE_HTTP_STATUS.get(reply.code, 200) if modern else 200
            await exchange.finish(error_frame(request_id, reply.code, reply.message, reply.data), status)
            return
        if modern:
            reply = as_modern_result(method, reply)
            if method in LISTINGS:
                # What a client is shown depends on who it is (policy, token grants): never for a shared cache.
                reply["cacheScope"] = "private"
        await exchange.finish(result_frame(request_id, reply))

    async def _failed(self, entry: _Entry, request_id: int | str, send: Send) -> None:
        if entry.full is not None:
            error = error_frame(request_id, SERVER_UNAVAILABLE, str(entry.full))
            retry = [(b"retry-after", str(entry.full.retry_after).encode())]
            await json_response(send, 503, orjson.dumps(error), retry)
        else:
            await _error(send, 200, request_id, RpcError(SERVER_UNAVAILABLE, entry.failed or "session failed"))

    def _modern_key(self, scope: Scope) -> str:
        return f"modern:{_owner(scope)}"

    def _instructions_of(self, session: Session) -> str | None:
        return session.instructions() or self._instructions

    async def _open(self, key: str, owner: str, client: ClientInfo, capabilities: dict[str, Any]) -> _Entry:
        peer = HttpPeer(client.era, self._bus, key)
        entry = _Entry(key, self._make_session(client, peer, capabilities), peer, owner)
        entry.last_used = time.monotonic()
        self._sessions[key] = entry
        if self._tasks is None:
            raise RuntimeError("the HTTP front is not running")
        self._tasks.start_soon(self._host, entry)
        await entry.ready.wait()
        entry.last_used = time.monotonic()  # its servers' start is not idleness
        return entry

    async def _host(self, entry: _Entry) -> None:
        try:
            with anyio.CancelScope() as scope:
                entry.scope = scope
                async with anyio.create_task_group() as tasks:
                    await tasks.start(entry.session.run)
                    entry.ready.set()
        except Exception as exc:  # one client's broken session must not take the gateway down
            full = gateway_full(exc)  # a pool at its limit, raised through the task groups
            if full is not None:
                logger.info("session %s could not start: %s", entry.key, full)
                entry.full = full
                self._sessions.pop(entry.key, None)
            else:
                logger.exception("session %s failed", entry.key)
                entry.failed = f"Bastion could not start this session's servers: {exc}"
        finally:
            entry.ready.set()
            if self._sessions.get(entry.key) is entry and entry.failed is None and entry.full is None:
                self._sessions.pop(entry.key, None)


def _modern(scope: Scope) -> bool:
    """Routed by the version header, as the SDK does: handshake versions (or none) are the handshake era."""
    version = _header(scope, VERSION_HEADER)
    return version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS


def _principal(scope: Scope) -> tuple[str, frozenset[str] | None]:
    """The authenticated client, and the capabilities its token carries, as the bearer check left them."""
    grants = scope.get(GRANTS_SCOPE_KEY)
    return str(scope.get(CLIENT_SCOPE_KEY, "anonymous")), frozenset(grants) if grants is not None else None


def _owner(scope: Scope) -> str:
    """One client and token ceiling; the name is quoted so that no name can pose as another's."""
    return _owner_of(*_principal(scope))


@functools.lru_cache(maxsize=1024)
def _owner_of(name: str, grants: frozenset[str] | None) -> str:
    return quote(name, safe="") + ("" if grants is None else f"[{','.join(sorted(grants))}]")


def _header(scope: Scope, name: str) -> str | None:
    value = header_map(scope).get(name.encode())
    return value.decode("latin-1") if value is not None else None


def _dump(model: Any) -> dict[str, Any]:
    return model.model_dump(by_alias=True, mode="json", exclude_none=True)


async def _error(send: Send, status: int, request_id: int | str | None, error: RpcError) -> None:
    await json_response(send, status, orjson.dumps(error_frame(request_id, error.code, error.message, error.data)))


async def _until_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _param_headers(entry: _Entry, frame: Frame, scope: Scope) -> RpcError | None:
    """A 2026-07-28 `tools/call`'s `Mcp-Param-*` headers against its arguments, by the input schema
    this client was listed (`x-mcp-header` properties): a mismatch is HeaderMismatch (-32020). A
    tool the client was not listed is left to the call's own refusal."""
    params = frame.get("params")
    if not isinstance(params, dict):
        return None
    name, arguments = params.get("name"), params.get("arguments")
    route = entry.session.catalog.tool_routes.get(name) if isinstance(name, str) else None
    if route is None or route.item is None:
        return None
    every = Headers(scope=scope)  # every copy of a header: a duplicated Mcp-Param-* is a mismatch
    # The exposed definition is the listed one renamed: the same input schema.
    rejection = validate_mcp_param_headers(
        route.item.get("inputSchema"), arguments if isinstance(arguments, dict) else {}, every
    )
    return None if rejection is None else RpcError(rejection.code, rejection.message, rejection.data)
