"""Server processes shared between MCP sessions, where the configuration says it is safe.

A server's `isolation` says who shares its processes under `bastion serve`:

    session   each MCP session starts its own (no pool; the session's own `Supervisor`)
    client    one process per client identity, shared by that client's sessions (the default)
    shared    one bounded pool for every client, for servers that keep no per-user state

A pooled process is a `_Member`: a `Supervisor` (restart with backoff) whose upstream is
used by several sessions at once, each through a `Lease` and its `_View` of the upstream.
A shared connection carries no client identity, so what the server sends is attributed:

- progress: every progress token a session sends is replaced by one unique on the
  connection, and mapped back to the session (and its own token) when the server reports;
- requests to the client (sampling, elicitation, roots) and log messages: to the session
  whose request is in flight on the connection when exactly one is; otherwise to the
  session whose rewritten progress token the request carries; otherwise to the only
  session on a `client` process; otherwise refused (fail closed), never guessed;
- list changes: to every session (each re-lists through its own screening and pins);
  resource updates: to the sessions that subscribed to the resource.

Cancellation needs nothing: each forwarded request has its own id on the connection, and a
cancelled call cancels that id only. A session that ends releases its leases at once; a
process no session uses is stopped after `pool.idle_timeout`. A full pool raises
`GatewayFull`, which the HTTP front answers with 503 and Retry-After.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import anyio
import anyio.abc
import mcp_types as mt

from bastion.codes import METHOD_NOT_FOUND
from bastion.config.model import ServerConfig
from bastion.errors import GatewayFull
from bastion.proxy.supervisor import ServerState, StateListener, Supervisor
from bastion.proxy.upstream import Connection, Upstream
from bastion.transport.link import Connector
from bastion.types import Era, Reply, RpcError

__all__ = ["RETRY_AFTER", "Adopt", "Lease", "Pools", "ServerPool", "Slot", "Tenant", "gateway_full"]

logger = logging.getLogger(__name__)

RETRY_AFTER = 5
"""Seconds a client refused for a full pool is told to wait (the `Retry-After` header)."""
NEEDS = {"sampling/createMessage": "sampling", "elicitation/create": "elicitation", "roots/list": "roots"}
"""The client capability each server-to-client request needs."""

Adopt = Callable[[Connection], Awaitable[None]]
"""A session learning what a server (re)started for it offers."""


class Tenant(Protocol):
    """A session, as a pooled process hands it what the server sends."""

    async def server_request(self, upstream: Connection, method: str, params: dict[str, Any] | None) -> Reply: ...
    async def server_notification(self, upstream: Connection, method: str, params: dict[str, Any] | None) -> None: ...


class Slot(Protocol):
    """One server of a session: its own `Supervisor`, or a `Lease` on a pooled process."""

    @property
    def upstream(self) -> Connection | None: ...
    @property
    def state(self) -> ServerState: ...
    @property
    def detail(self) -> str: ...
    @property
    def first_attempt(self) -> anyio.Event: ...
    async def run(self) -> None: ...
    def unavailable_reason(self) -> str: ...


class Pools:
    """Every pooled server's processes, for the life of the gateway (`run` hosts them)."""

    def __init__(
        self,
        servers: Mapping[str, ServerConfig],
        connector: Connector,
        *,
        on_state: StateListener,
        backoff_max: float,
    ) -> None:
        self._pools = {
            name: ServerPool(name, config, connector, on_state=on_state, backoff_max=backoff_max)
            for name, config in servers.items()
            if config.isolation != "session"
        }

    def get(self, server: str) -> ServerPool | None:
        """The pool of a server, or None if each session starts its own (`isolation = "session"`)."""
        return self._pools.get(server)

    def admit(self, client_id: str, servers: Mapping[str, ServerConfig] | None = None) -> None:
        """Raise `GatewayFull` if a new session of this client would find a pool full now."""
        for name, pool in self._pools.items():
            if servers is None or name in servers:
                pool.admit(client_id)

    def processes(self) -> dict[str, int]:
        """How many processes each pooled server has (running or restarting)."""
        return {name: len(pool.members) for name, pool in self._pools.items()}

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with anyio.create_task_group() as tasks:
            for pool in self._pools.values():
                pool.tasks = tasks
            task_status.started()
            await anyio.sleep_forever()


class ServerPool:
    """The processes of one server: one per client identity (`client`), or a bounded pool (`shared`)."""

    def __init__(
        self,
        name: str,
        config: ServerConfig,
        connector: Connector,
        *,
        on_state: StateListener,
        backoff_max: float,
    ) -> None:
        self.name = name
        self.config = config
        self._connector = connector
        self._on_state = on_state
        self._backoff_max = backoff_max
        self._numbers = itertools.count(1)
        self.members: list[_Member] = []
        self.tasks: anyio.abc.TaskGroup | None = None

    @property
    def per_client(self) -> bool:
        return self.config.isolation == "client"

    def lease(self, tenant: Tenant, client_id: str, era: Era, capabilities: dict[str, Any], on_up: Adopt) -> Lease:
        return Lease(self, tenant, client_id, era, capabilities, on_up)

    def admit(self, client_id: str) -> None:
        """Raise `GatewayFull` if a session of this client could not join a process now."""
        self._choose(client_id, start=False)

    def acquire(self, lease: Lease) -> _Member:
        member = self._choose(lease.client_id, start=True, lease=lease)
        assert member is not None
        member.join(lease)
        return member

    def release(self, lease: Lease, member: _Member) -> None:
        member.leave(lease)
        if member.tenants:
            return
        if self.config.pool.idle_timeout == 0 or self.tasks is None:
            self._stop(member)
        else:
            member.idle_since = anyio.current_time()
            self.tasks.start_soon(self._linger, member, member.idle_since)

    async def _linger(self, member: _Member, since: float) -> None:
        """Stop a process nobody used again within the idle timeout."""
        await anyio.sleep(self.config.pool.idle_timeout)
        if not member.tenants and member.idle_since == since:
            self._stop(member)

    def _choose(self, client_id: str, *, start: bool, lease: Lease | None = None) -> _Member | None:
        limits = self.config.pool
        if self.per_client:
            member = next((m for m in self.members if m.key == client_id), None)
            if member is not None:
                if len(member.tenants) >= limits.sessions_per_process:
                    raise GatewayFull(self.name, f"{limits.sessions_per_process} sessions of one client", RETRY_AFTER)
                return member
        else:
            open_ = [m for m in self.members if len(m.tenants) < limits.sessions_per_process]
            if open_:
                return min(open_, key=lambda m: len(m.tenants))
        if len(self.members) >= limits.max_processes and not any(not m.tenants for m in self.members):
            raise GatewayFull(self.name, f"{limits.max_processes} processes, all in use", RETRY_AFTER)
        if not start or lease is None:
            return None
        return self._start(client_id if self.per_client else f"shared-{next(self._numbers)}", lease)

    def _start(self, key: str, lease: Lease) -> _Member:
        if len(self.members) >= self.config.pool.max_processes:
            self._stop(next(m for m in self.members if not m.tenants))  # the oldest idle one makes room
        if self.tasks is None:
            raise GatewayFull(self.name, "the pool is not running", RETRY_AFTER)
        member = _Member(self, key, lease)
        self.members.append(member)
        self.tasks.start_soon(member.run)
        return member

    def _stop(self, member: _Member) -> None:
        self.forget(member)
        member.scope.cancel()

    def forget(self, member: _Member) -> None:
        """No new session joins this process (it is stopping, or it failed)."""
        if member in self.members:
            self.members.remove(member)

    def supervisor(self, handler: _Member, capabilities: dict[str, Any], era: Era) -> Supervisor:
        return Supervisor(
            self.name,
            self.config,
            self._connector,
            handler,
            client_capabilities=capabilities,
            on_up=handler.up,
            on_state=self._on_state,
            backoff_max=self._backoff_max,
            prefer=era,
        )


class _Member:
    """One pooled process of a server, used by several sessions through their leases."""

    def __init__(self, pool: ServerPool, key: str, first: Lease) -> None:
        self.pool = pool
        self.key = key
        self.tenants: dict[Lease, None] = {}
        self.idle_since: float | None = None
        self.scope = anyio.CancelScope()
        self.current: Upstream | None = None
        self.supervisor = pool.supervisor(self, first.capabilities, first.era)
        self._calls = itertools.count(1)
        self._tokens = itertools.count(1)
        self.inflight: dict[int, Lease] = {}
        self.progress: dict[str, tuple[Lease, int | str]] = {}
        self.subscriptions: dict[str, dict[Lease, None]] = {}

    async def run(self) -> None:
        with self.scope:
            try:
                await self.supervisor.run()
            except Exception:  # the pool's top-level loop: one process's failure must not stop the others
                logger.exception("server %s: a pooled process failed; its sessions see it unavailable", self.pool.name)
                self.pool.forget(self)

    def join(self, lease: Lease) -> None:
        self.tenants[lease] = None
        self.idle_since = None

    def leave(self, lease: Lease) -> None:
        self.tenants.pop(lease, None)
        for subscribers in self.subscriptions.values():
            subscribers.pop(lease, None)
        for token in [t for t, (owner, _) in self.progress.items() if owner is lease]:
            del self.progress[token]

    async def up(self, upstream: Upstream) -> None:
        """The process (re)started: every session using it learns what it offers now."""
        self.current = upstream
        self.subscriptions.clear()
        for lease in list(self.tenants):
            try:
                await lease.adopt(upstream)
            except Exception:  # one session's failure to re-list must not stop the process for the others
                logger.exception("server %s: a session could not adopt the restarted process", self.pool.name)

    # -- calls from the sessions -------------------------------------------------------------------------------

    def begin(self, lease: Lease, params: dict[str, Any] | None) -> tuple[int, dict[str, Any] | None, str | None]:
        """Register a call in flight; its progress token replaced by one unique on this connection."""
        call = next(self._calls)
        self.inflight[call] = lease
        meta = params.get("_meta") if params else None
        token = meta.get("progressToken") if isinstance(meta, dict) else None  # pyright: ignore[reportUnknownMemberType,reportUnknownVariableType]
        if params is None or not isinstance(meta, dict) or not isinstance(token, int | str):
            return call, params, None
        ours = f"bastion-{next(self._tokens)}"
        self.progress[ours] = (lease, token)
        rewritten: dict[str, Any] = {**meta, "progressToken": ours}  # pyright: ignore[reportUnknownArgumentType]
        return call, {**params, "_meta": rewritten}, ours

    def end(self, call: int, token: str | None) -> None:
        self.inflight.pop(call, None)
        if token is not None:
            self.progress.pop(token, None)

    # -- what the server sends ---------------------------------------------------------------------------------

    def attribute(self, params: dict[str, Any] | None) -> Lease | None:
        """The session a server's request or log message belongs to, or None if it cannot be told."""
        callers = set(self.inflight.values())
        if len(callers) == 1:
            return next(iter(callers))
        meta = params.get("_meta") if params else None
        token = meta.get("progressToken") if isinstance(meta, dict) else None  # pyright: ignore[reportUnknownMemberType,reportUnknownVariableType]
        if isinstance(token, str) and token in self.progress:
            return self.progress[token][0]
        if not callers and self.pool.per_client and len(self.tenants) == 1:
            return next(iter(self.tenants))
        return None

    async def server_request(self, upstream: Upstream, method: str, params: dict[str, Any] | None) -> Reply:
        lease = self.attribute(params)
        if lease is None:
            logger.warning(
                "server %s: refused its %s: no one session's call can be told to cause it", upstream.name, method
            )
            return RpcError(
                METHOD_NOT_FOUND,
                f"{method} refused: this server is shared and the request cannot be attributed to one client's call",
            )
        needed = NEEDS.get(method)
        if needed is not None and needed not in lease.capabilities:
            return RpcError(
                METHOD_NOT_FOUND, f"{method} refused: the client whose call caused it does not offer {needed}"
            )
        return await lease.tenant.server_request(lease.view_of(upstream), method, self._restored(params))

    def _restored(self, params: dict[str, Any] | None) -> dict[str, Any] | None:
        """The client's own progress token back in place of the one this connection used."""
        meta = params.get("_meta") if params else None
        token = meta.get("progressToken") if isinstance(meta, dict) else None  # pyright: ignore[reportUnknownMemberType,reportUnknownVariableType]
        if params is None or not isinstance(meta, dict) or not isinstance(token, str) or token not in self.progress:
            return params
        restored: dict[str, Any] = {**meta, "progressToken": self.progress[token][1]}  # pyright: ignore[reportUnknownArgumentType]
        return {**params, "_meta": restored}

    async def server_notification(self, upstream: Upstream, method: str, params: dict[str, Any] | None) -> None:
        if method == "notifications/progress":
            token = params.get("progressToken") if params else None
            owner = self.progress.get(token) if isinstance(token, str) else None
            if owner is None:
                logger.debug("server %s: dropped progress for no call in flight", upstream.name)
                return
            lease, original = owner
            await lease.tenant.server_notification(
                lease.view_of(upstream), method, {**(params or {}), "progressToken": original}
            )
        elif method.endswith("/list_changed"):
            for lease in list(self.tenants):
                await lease.tenant.server_notification(lease.view_of(upstream), method, params)
        elif method == "notifications/resources/updated":
            uri = params.get("uri") if params else None
            for lease in list(self.subscriptions.get(uri, {})) if isinstance(uri, str) else []:
                await lease.tenant.server_notification(lease.view_of(upstream), method, params)
        elif method == "notifications/cancelled":
            logger.debug("server %s cancelled one of its own requests", upstream.name)
        else:
            lease = self.attribute(params)
            if lease is None:
                logger.debug("server %s: dropped %s, not attributable to one session", upstream.name, method)
                return
            await lease.tenant.server_notification(lease.view_of(upstream), method, self._restored(params))


class Lease:
    """One session's use of a pooled server: a `Slot` that joins a process for the session's life."""

    def __init__(
        self, pool: ServerPool, tenant: Tenant, client_id: str, era: Era, capabilities: dict[str, Any], on_up: Adopt
    ) -> None:
        self.pool = pool
        self.tenant = tenant
        self.client_id = client_id
        self.era = era
        self.capabilities = capabilities
        self._on_up = on_up
        self._first_attempt = anyio.Event()
        self._view: _View | None = None
        self.member: _Member | None = None

    def acquire(self) -> None:
        """Join a process (raises `GatewayFull`); done before the session starts, so refusal is immediate."""
        if self.member is None:
            self.member = self.pool.acquire(self)

    def release(self) -> None:
        member, self.member = self.member, None
        if member is not None:
            self.pool.release(self, member)

    async def run(self) -> None:
        self.acquire()
        assert self.member is not None
        member = self.member
        try:
            await member.supervisor.first_attempt.wait()
            up = member.supervisor.upstream  # while it restarts, `up` will adopt it for every session on it
            if up is not None and (self._view is None or self._view.upstream is not up):
                await self.adopt(up)
            self._first_attempt.set()
            await anyio.sleep_forever()
        finally:
            self._first_attempt.set()
            self.release()

    async def adopt(self, upstream: Upstream) -> None:
        view = self.view_of(upstream)
        await self._on_up(view)

    def view_of(self, upstream: Upstream) -> _View:
        if self._view is None or self._view.upstream is not upstream:
            level = self._view.log_level if self._view is not None else None
            self._view = _View(self, upstream)
            self._view.log_level = level
        return self._view

    @property
    def upstream(self) -> Connection | None:
        member = self.member
        if member is None or member.supervisor.upstream is None or self._view is None:
            return None
        return self._view if self._view.upstream is member.supervisor.upstream else None

    @property
    def state(self) -> ServerState:
        return self.member.supervisor.state if self.member is not None else ServerState.STARTING

    @property
    def detail(self) -> str:
        return self.member.supervisor.detail if self.member is not None else ""

    @property
    def first_attempt(self) -> anyio.Event:
        return self._first_attempt

    def unavailable_reason(self) -> str:
        if self.member is None:
            return "is still starting"
        return self.member.supervisor.unavailable_reason()


class _View:
    """A session's view of a pooled upstream: its calls registered for attribution, its log level its own."""

    def __init__(self, lease: Lease, upstream: Upstream) -> None:
        self._lease = lease
        self.upstream = upstream
        self.log_level: str | None = None

    @property
    def name(self) -> str:
        return self.upstream.name

    @property
    def era(self) -> Era:
        return self.upstream.era

    @property
    def protocol_version(self) -> str:
        return self.upstream.protocol_version

    @property
    def server_info(self) -> dict[str, Any]:
        return self.upstream.server_info

    @property
    def capabilities(self) -> dict[str, Any]:
        return self.upstream.capabilities

    @property
    def instructions(self) -> str | None:
        return self.upstream.instructions

    async def request(self, method: str, params: dict[str, Any] | None, timeout: float | None = None) -> Reply:
        member = self._lease.member
        if member is None:
            return await self.upstream.request(method, params, timeout)
        shared = not member.pool.per_client
        if method == "logging/setLevel" and shared:
            return {}  # one client's level is its own: kept in this view, not set for everyone on the process
        uri = params.get("uri") if params else None
        if method == "resources/unsubscribe" and isinstance(uri, str):
            subscribers = member.subscriptions.get(uri, {})
            subscribers.pop(self._lease, None)
            if subscribers:
                return {}  # another session still follows this resource
        if self.upstream.era is Era.MODERN and self.log_level is not None:
            params = dict(params or {})
            params["_meta"] = {**(params.get("_meta") or {}), mt.LOG_LEVEL_META_KEY: self.log_level}
        call, params, token = member.begin(self._lease, params)
        try:
            reply = await self.upstream.request(method, params, timeout)
        finally:
            member.end(call, token)
        if method == "resources/subscribe" and isinstance(uri, str) and not isinstance(reply, RpcError):
            member.subscriptions.setdefault(uri, {})[self._lease] = None
        return reply

    async def notify(self, method: str, params: dict[str, Any] | None) -> None:
        member = self._lease.member
        if method == "notifications/roots/list_changed" and member is not None and not member.pool.per_client:
            return  # a shared server never learns one client's roots outside that client's call
        await self.upstream.notify(method, params)


def gateway_full(error: BaseException) -> GatewayFull | None:
    """The `GatewayFull` a session's start failed with, also when task groups wrapped it; else None."""
    if isinstance(error, GatewayFull):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:  # pyright: ignore[reportUnknownMemberType,reportUnknownVariableType]
            found = gateway_full(inner)  # pyright: ignore[reportUnknownArgumentType]
            if found is not None:
                return found
    return None
