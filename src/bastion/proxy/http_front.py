"""The Streamable HTTP front: one endpoint (/mcp) for many clients, each with its own token.

The SDK's server owns the HTTP transport and both protocol eras (sessions, SSE streams,
the handshake, `server/discover`, DNS-rebinding protection). Bastion sits in it as a
context-tier middleware that sees every request's raw method and params before any
validation, and hands them to the client's own Bastion session, the same core the stdio
front uses. Each MCP session gets its own session of servers, so one client's server
state (roots, subscriptions, sampling) never reaches another client.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import anyio
import anyio.abc
import mcp_types as mt
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata
from pydantic import BaseModel, ConfigDict, ValidationError

from bastion import __version__
from bastion.proxy.handshake import as_modern_result, is_modern, strip_envelope
from bastion.proxy.pipeline import ClientInfo
from bastion.proxy.session import Session
from bastion.proxy.stdio_front import SessionFactory
from bastion.transport.http_front_app import CLIENT_SCOPE_KEY, GRANTS_SCOPE_KEY
from bastion.transport.jsonrpc import INTERNAL_ERROR, SERVER_UNAVAILABLE
from bastion.types import Era, Reply, RpcError

__all__ = ["HttpFront"]

logger = logging.getLogger(__name__)

SESSION_HEADER = "mcp-session-id"
IDLE_SESSION_SECONDS = 1800.0

_REQUESTS: dict[str, type[BaseModel]] = {
    "sampling/createMessage": mt.CreateMessageRequest,
    "elicitation/create": mt.ElicitRequest,
    "roots/list": mt.ListRootsRequest,
}


class _AnyResult(BaseModel):
    """A client's result kept whole: Bastion relays it, the server that asked validates it."""

    model_config = ConfigDict(extra="allow")


@dataclass
class _Entry:
    key: str
    session: Session
    peer: _HttpPeer
    ready: anyio.Event = field(default_factory=anyio.Event)
    scope: anyio.CancelScope | None = None
    failed: str | None = None
    last_used: float = 0.0


class _HttpPeer:
    """Relays server-to-client traffic onto the SSE stream of the request that caused it."""

    def __init__(self, era: Era) -> None:
        self._era = era
        self.contexts: dict[int | str, ServerRequestContext[Any, Any]] = {}
        self.latest: ServerRequestContext[Any, Any] | None = None

    @property
    def can_request(self) -> bool:
        return self._era is Era.HANDSHAKE

    def _context(self, related: int | str | None) -> ServerRequestContext[Any, Any] | None:
        return self.contexts.get(related, self.latest) if related is not None else self.latest

    async def request(self, method: str, params: dict[str, Any] | None, related: int | str | None) -> Reply:
        ctx = self._context(related)
        model = _REQUESTS.get(method)
        if ctx is None or model is None:
            return RpcError(SERVER_UNAVAILABLE, f"no open request of this client can carry {method}")
        try:
            request = model.model_validate({"method": method, "params": params or {}})
            result = await ctx.session.send_request(
                request,  # pyright: ignore[reportArgumentType,reportCallIssue]
                _AnyResult,
                metadata=ServerMessageMetadata(related_request_id=ctx.request_id),
            )
        except MCPError as exc:
            return RpcError(exc.error.code, exc.error.message, exc.error.data)
        except ValidationError as exc:
            return RpcError(INTERNAL_ERROR, f"could not relay {method}: {exc.error_count()} validation errors")
        return result.model_dump(by_alias=True, mode="json")

    async def notify(self, method: str, params: dict[str, Any] | None, related: int | str | None) -> None:
        ctx = self._context(related)
        if ctx is None:
            logger.debug("dropped %s: no open request of this client", method)
            return
        session, p = ctx.session, params or {}
        rid = ctx.request_id if related is not None and related in self.contexts else None
        try:
            if method == "notifications/progress":
                await session.send_progress_notification(
                    p["progressToken"],
                    p["progress"],
                    p.get("total"),
                    p.get("message"),
                    related_request_id=None if rid is None else str(rid),
                )
            elif method == "notifications/message":
                await session.send_log_message(p["level"], p.get("data"), p.get("logger"), related_request_id=rid)
            elif method == "notifications/tools/list_changed":
                await session.send_tool_list_changed()
            elif method == "notifications/prompts/list_changed":
                await session.send_prompt_list_changed()
            elif method == "notifications/resources/list_changed":
                await session.send_resource_list_changed()
            elif method == "notifications/resources/updated":
                await session.send_resource_updated(p["uri"])
            else:
                logger.debug("dropped %s: not relayed over HTTP", method)
        except (KeyError, ValidationError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
            logger.info("dropped %s for the client: %s", method, exc)


class _BastionServer(Server[Any]):
    """The SDK server, advertising list-change notifications (Bastion sends them on restarts)."""

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        return super().create_initialization_options(
            NotificationOptions(prompts_changed=True, resources_changed=True, tools_changed=True),
            experimental_capabilities,
            extensions,
        )


async def _unreachable(_ctx: ServerRequestContext[Any], _params: Any) -> Any:
    raise MCPError(INTERNAL_ERROR, "handled by Bastion's middleware")


class HttpFront:
    def __init__(self, make_session: SessionFactory, *, instance: str, instructions: str | None) -> None:
        self._make_session = make_session
        self._sessions: dict[str, _Entry] = {}
        self._tasks: anyio.abc.TaskGroup | None = None
        placeholders: dict[str, Callable[..., Awaitable[Any]]] = dict.fromkeys(
            (
                "on_list_tools",
                "on_call_tool",
                "on_list_resources",
                "on_list_resource_templates",
                "on_read_resource",
                "on_subscribe_resource",
                "on_unsubscribe_resource",
                "on_list_prompts",
                "on_get_prompt",
                "on_completion",
            ),
            _unreachable,
        )
        self.server = _BastionServer(instance, version=__version__, instructions=instructions, **placeholders)  # pyright: ignore[reportArgumentType,reportCallIssue]
        self.server.middleware.append(self._middleware)

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Host the per-client sessions and close idle ones."""
        async with anyio.create_task_group() as tasks:
            self._tasks = tasks
            task_status.started()
            while True:
                await anyio.sleep(60)
                now = anyio.current_time()
                for entry in list(self._sessions.values()):
                    if now - entry.last_used > IDLE_SESSION_SECONDS:
                        self.close(entry.key)

    def close(self, key: str) -> None:
        entry = self._sessions.pop(key, None)
        if entry is not None and entry.scope is not None:
            entry.scope.cancel()

    def session_count(self) -> int:
        return len(self._sessions)

    async def _middleware(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method in ("initialize", "server/discover", "notifications/initialized", "notifications/cancelled"):
            return await call_next(ctx)
        params: dict[str, Any] | None = dict(ctx.params) if ctx.params is not None else None
        modern = is_modern(params)
        if ctx.request_id is None:
            entry = self._sessions.get(self._key(ctx, modern))
            if entry is not None and entry.ready.is_set() and entry.failed is None:
                await entry.session.notification(ctx.method, params)
            return None
        entry = await self._entry(ctx, modern)
        if entry.failed is not None:
            raise MCPError(SERVER_UNAVAILABLE, entry.failed)
        entry.last_used = anyio.current_time()
        request_id = ctx.request_id
        entry.peer.contexts[request_id] = ctx
        entry.peer.latest = ctx
        try:
            reply = await entry.session.handle(ctx.method, strip_envelope(params) if modern else params, request_id)
        except Exception as exc:  # this front's one error boundary: this request fails, the session goes on
            reply = await entry.session.failure(ctx.method, params, request_id, exc)
        finally:
            entry.peer.contexts.pop(request_id, None)
        if isinstance(reply, RpcError):
            raise MCPError(reply.code, reply.message, reply.data)
        return as_modern_result(ctx.method, reply) if modern else reply

    @staticmethod
    def _principal(ctx: ServerRequestContext[Any, Any]) -> tuple[str, frozenset[str] | None]:
        """The authenticated client, and the capabilities its token carries, as the bearer check left them."""
        scope: dict[str, Any] = ctx.request.scope if ctx.request is not None else {}  # pyright: ignore[reportUnknownMemberType,reportUnknownVariableType]
        grants = scope.get(GRANTS_SCOPE_KEY)
        return str(scope.get(CLIENT_SCOPE_KEY, "anonymous")), frozenset(grants) if grants is not None else None

    def _key(self, ctx: ServerRequestContext[Any, Any], modern: bool) -> str:
        name, grants = self._principal(ctx)
        # One session per client and token ceiling; the name is quoted so that no name can pose as another's key.
        client = quote(name, safe="") + ("" if grants is None else f"[{','.join(sorted(grants))}]")
        if modern:
            return f"modern:{client}"
        headers = ctx.request.headers if ctx.request is not None else {}  # pyright: ignore[reportUnknownMemberType,reportUnknownVariableType]
        return f"session:{client}:{headers.get(SESSION_HEADER, '')}"  # pyright: ignore[reportUnknownMemberType]

    async def _entry(self, ctx: ServerRequestContext[Any, Any], modern: bool) -> _Entry:
        key = self._key(ctx, modern)
        entry = self._sessions.get(key)
        if entry is None:
            era = Era.MODERN if modern else Era.HANDSHAKE
            caps = ctx.session.client_capabilities
            capabilities = caps.model_dump(by_alias=True, mode="json", exclude_none=True) if caps else {}
            info = ctx.session.client_params.client_info if ctx.session.client_params else None
            name, grants = self._principal(ctx)
            client = ClientInfo(name, key, era, info.name if info else "", info.version if info else "", grants)
            peer = _HttpPeer(era)
            entry = _Entry(key, self._make_session(client, peer, capabilities), peer)
            self._sessions[key] = entry
            assert self._tasks is not None
            self._tasks.start_soon(self._host, entry)
        await entry.ready.wait()
        return entry

    async def _host(self, entry: _Entry) -> None:
        try:
            with anyio.CancelScope() as scope:
                entry.scope = scope
                async with anyio.create_task_group() as tasks:
                    await tasks.start(entry.session.run)
                    entry.ready.set()
        except Exception as exc:  # one client's broken session must not take the gateway down
            logger.exception("session %s failed", entry.key)
            entry.failed = f"Bastion could not start this session's servers: {exc}"
        finally:
            entry.ready.set()
            if self._sessions.get(entry.key) is entry and entry.failed is None:
                self._sessions.pop(entry.key, None)
