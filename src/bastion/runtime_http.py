"""The HTTP half of the composition root: `bastion serve`, and `bastion dashboard` on its own.

Kept apart from `runtime` so that stdio gateways (one `bastion wrap` per server in a client
config) never load the web stack and the SDK's server.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Callable, Generator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import anyio
import httpx2
import uvicorn
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from bastion.approvals.model import Status
from bastion.approvals.store import open_approvals
from bastion.approvals.webhook import LinkKey
from bastion.audit.entry import Kind, Record
from bastion.audit.service import append_once
from bastion.clock import Clock
from bastion.config.model import AuthConfig, BastionConfig
from bastion.errors import ConfigError, ConfigProblem, StoreError
from bastion.identity.oauth import (
    WELL_KNOWN,
    Denial,
    DenialBudget,
    Rules,
    protected_resource_metadata,
    resource_metadata_url,
)
from bastion.identity.oauth_io import Introspector, IssuerKeys, TokenGate
from bastion.inventory.pins import LOCK_NAME
from bastion.proxy.http_front import HttpFront
from bastion.proxy.pipeline import ClientInfo
from bastion.proxy.pools import Pools
from bastion.proxy.session import NoClient
from bastion.runtime import Gateway, gateway, make_session_factory, server_links
from bastion.stopping import stop_on_signal
from bastion.store.audit_open import open_store
from bastion.store.sqlite import StateStore
from bastion.transport.http_front_app import (
    Authenticate,
    BearerAuth,
    OnDenied,
    describe,
    is_loopback,
    listening_socket,
    lookup_only,
    split_listen,
)
from bastion.watch.checks import PingKind
from bastion.watch.metrics import Metrics
from bastion.watch.store import open_watch
from bastion.web.app import dashboard_app
from bastion.web.auth import Sessions
from bastion.web.data import AuditView
from bastion.web.pages import Sources
from bastion.web.serve import dashboard_banner

__all__ = [
    "PathRouter",
    "build_http_app",
    "make_pools",
    "preflight",
    "resource_uri",
    "run_http",
    "serve_dashboard",
]

logger = logging.getLogger(__name__)
announce = logging.getLogger("bastion.announce")
"""Where the gateway listens: shown at every log level (cli/_logging.py)."""
STOP_GRACE_SECONDS: Final = 10
"""After SIGTERM or SIGINT, how long requests in flight may take to be answered before they are cancelled."""


async def preflight(running: Gateway) -> str | None:
    """Start every server once before serving: collisions are a start-up error; returns the instructions."""
    session = make_session_factory(running)(ClientInfo("preflight", "preflight"), NoClient(), {})
    instructions: str | None = None
    async with anyio.create_task_group() as tasks:
        await tasks.start(session.run)
        instructions = session.instructions()
        tasks.cancel_scope.cancel()
    return instructions


def make_pools(running: Gateway) -> Pools:
    """The processes of servers shared between sessions (`isolation = "client"` or `"shared"`)."""
    config = running.config
    connector, on_state = server_links(running)
    return Pools(config.enabled_servers(), connector, on_state=on_state, backoff_max=config.gateway.restart_backoff_max)


def build_http_app(
    config: BastionConfig,
    front: HttpFront,
    store: StateStore | None,
    clock: Clock,
    authenticate: Authenticate | None = None,
    on_denied: OnDenied | None = None,
) -> ASGIApp:
    """The MCP endpoint behind bearer authentication: Bastion's own tokens, or `authenticate`."""
    host, port = split_listen(config.http.listen)
    hosts = [f"{host}:{port}", "127.0.0.1:*", "localhost:*", "[::1]:*", *config.http.allowed_hosts]
    origins = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*", *config.http.allowed_origins]
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )
    app = front.app(security, host)  # a DELETE the front accepts ends the client's session there

    def lookup(token: str) -> str | None:
        return store.client_for_token(token, clock.now()) if store is not None else None

    auth = config.auth
    return BearerAuth(
        app,
        authenticate or lookup_only(lookup),
        open_access=config.http.open,
        metadata_url=resource_metadata_url(resource_uri(config)) if auth is not None else None,
        scope_hint=" ".join(auth.required_scopes) if auth is not None and auth.required_scopes else None,
        on_denied=on_denied,
    )


def resource_uri(config: BastionConfig) -> str:
    """This gateway's MCP endpoint as clients name it: `[auth] resource`, else http://LISTEN/mcp."""
    if config.auth is not None and config.auth.resource is not None:
        return config.auth.resource
    host, port = split_listen(config.http.listen)
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 (compared with, not bound to)
        raise ConfigError(
            None,
            [
                ConfigProblem(
                    "auth.resource",
                    f"the gateway listens on every address ({host}), so its public URL is unknown",
                    'set resource = "https://bastion.example.com/mcp" (the URL clients use) under [auth]',
                )
            ],
        )
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/mcp"


def _token_gate(config: BastionConfig, running: Gateway, http: httpx2.AsyncClient) -> TokenGate:
    """Bastion's own tokens, and with `[auth]` the issuer's JWTs and (if configured) introspection."""

    def lookup(token: str) -> str | None:
        return running.state.client_for_token(token, running.clock.now())

    auth = config.auth
    if auth is None:
        return TokenGate(lookup, running.clock)
    rules = Rules.of(auth, resource_uri(config))
    url = auth.introspection_url
    introspect = Introspector(http, url, auth, running.environ, running.clock) if url is not None else None
    return TokenGate(lookup, running.clock, rules, IssuerKeys(http, auth, running.clock), introspect)


def _denials(running: Gateway) -> OnDenied:
    """Every refused token is a log line and an `auth.denied` entry (the reason, never the token)."""
    budget = DenialBudget()

    async def record(denial: Denial, scope: Scope) -> None:
        where = describe(scope)
        logger.info("refused a bearer token from %s: %s (%s)", where["remote"], denial.reason, denial.description)
        suppressed = budget.take(running.clock.monotonic())
        if suppressed is None:
            return
        fields: dict[str, Any] = {
            "reason": denial.reason,
            "detail": denial.description,
            "status": denial.status,
            **denial.facts,
            **where,
        }
        if denial.error is not None:
            fields["error"] = denial.error
        if suppressed:
            fields["suppressed"] = suppressed
        try:
            await running.audit.append(Record(Kind.AUTH_DENIED, fields))
        except StoreError:
            logger.exception("a refused bearer token could not be recorded")

    return record


def _metadata_app(config: BastionConfig, auth: AuthConfig) -> ASGIApp:
    """RFC 9728 protected resource metadata, at the well-known path and its `/mcp`-suffixed form."""
    resource = resource_uri(config)
    document = protected_resource_metadata(auth, resource, config.gateway.instance)
    headers = {"Cache-Control": "public, max-age=3600", "Access-Control-Allow-Origin": "*"}

    async def metadata(_request: Request) -> Response:
        return JSONResponse(document, headers=headers)

    paths = {WELL_KNOWN, f"{WELL_KNOWN}/mcp", urlsplit(resource_metadata_url(resource)).path}
    return Starlette(routes=[Route(path, metadata, methods=["GET"]) for path in sorted(paths)])


async def run_http(
    config: BastionConfig,
    environ: Mapping[str, str],
    home: Path,
    label: str,
    clock: Clock | None = None,
    lock_path: Path | None = None,
) -> None:
    """Serve many clients over Streamable HTTP until interrupted."""
    host, port = _listen(config)
    with listening_socket(host, port) as sock:  # before any server starts: a taken port is one clear error
        await _serve_http(config, environ, home, label, clock, lock_path, sock, host, port)


async def _serve_http(
    config: BastionConfig,
    environ: Mapping[str, str],
    home: Path,
    label: str,
    clock: Clock | None,
    lock_path: Path | None,
    sock: socket.socket,
    host: str,
    port: int,
) -> None:
    async with gateway(config, environ, home, f"http {host}:{port}", label, clock, lock_path) as running:
        pools = make_pools(running)
        front = HttpFront(
            make_session_factory(running, pools),
            instance=config.gateway.instance,
            instructions=await preflight(running),
            admit_session=pools.admit,
            limits=config.http,
        )
        timeout = config.auth.timeout if config.auth is not None else 5.0
        async with httpx2.AsyncClient(timeout=timeout) as http:  # the issuer's metadata, keys, introspection
            app = _routes(config, front, running, home, lock_path, http)
            server = _Server.of(app, host, port, lifespan="on")

            def stop() -> None:
                front.drain()
                server.stop()

            async with anyio.create_task_group() as tasks:
                await tasks.start(stop_on_signal, stop)
                await tasks.start(pools.run)
                await tasks.start(front.run)
                where = f"http://{host}:{port}/mcp (dashboard at /)"
                announce.info("bastion: serving MCP at %s", where, extra={"url": f"http://{host}:{port}/mcp"})
                await server.serve(sockets=[sock])
                tasks.cancel_scope.cancel()


class _Server(uvicorn.Server):
    """uvicorn's server without its own signal handling: on SIGTERM it would stop serving and then raise
    the signal again, which ends the process before the gateway has flushed and signed its audit log.
    The gateway's `stop_on_signal` calls `stop` instead, which does what uvicorn's handler does."""

    @classmethod
    def of(cls, app: ASGIApp, host: str, port: int, *, lifespan: Literal["auto", "on", "off"] = "auto") -> _Server:
        """One of Bastion's apps, quiet (no access log, warnings and up), with STOP_GRACE_SECONDS to stop."""
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            log_config=None,
            lifespan=lifespan,
            access_log=False,
            timeout_graceful_shutdown=STOP_GRACE_SECONDS,
        )
        return cls(config)

    @contextmanager
    def capture_signals(self) -> Generator[None]:
        yield

    def stop(self) -> None:
        """Stop taking connections, answer the requests in flight (at most the configured grace), return from `serve`."""
        self.should_exit = True


def _routes(
    config: BastionConfig,
    front: HttpFront,
    running: Gateway,
    home: Path,
    lock_path: Path | None,
    http: httpx2.AsyncClient,
) -> ASGIApp:
    """/mcp (MCP, bearer tokens), /hb (heartbeats, bearer tokens), /metrics, the protected resource
    metadata (with `[auth]`), and the dashboard at /."""
    denied = _denials(running)
    mcp = build_http_app(config, front, running.state, running.clock, _token_gate(config, running, http), denied)

    def lookup(token: str) -> str | None:
        return running.state.client_for_token(token, running.clock.now())

    metrics = Metrics(
        lambda: len(running.approvals.list(Status.PENDING)) if running.approvals is not None else 0,
        lambda: Counter(a.state.value for a in running.watcher.alerts.active()) if running.watcher else {},
        lambda: running.audit.size,
        lambda: running.clock.now() - (running.audit.last_checkpoint_at or running.clock.now()),
    )
    if running.metrics is not None:
        running.metrics.metrics = metrics
    extra = Starlette(
        routes=[
            Route("/metrics", metrics.endpoint),
            Route("/hb/{check}", functools.partial(_heartbeat, running), methods=["POST", "GET"]),
            Route("/hb/{check}/{kind}", functools.partial(_heartbeat, running), methods=["POST", "GET"]),
        ]
    )
    guarded = BearerAuth(extra, lookup_only(lookup), open_access=config.http.open, path="/", on_denied=denied)
    routes: dict[str, ASGIApp] = {"/mcp": mcp, "/hb": guarded, "/metrics": guarded}
    if config.auth is not None:
        routes[WELL_KNOWN] = _metadata_app(config, config.auth)

    async def record(kind: str, fields: dict[str, Any]) -> None:
        await running.audit.append(Record(Kind(kind), fields))

    sources = Sources(
        AuditView(open_store(home, config.audit.store), home),  # its own connection: readers in worker threads
        running.state,
        running.watcher.store if running.watcher is not None else None,
        running.approvals,
        config,
        lock_path,
        record,
        config.dashboard.payload_roles,
    )
    approvals = running.approvals if "dashboard" in config.approvals.channels else None
    dashboard = dashboard_app(approvals, Sessions(_holder(running)), LinkKey(home), sources=sources)
    return PathRouter(routes, dashboard)


async def serve_dashboard(
    home: Path, store_url: str | None, listen: str, config: BastionConfig | None, config_path: Path | None
) -> None:
    """`bastion dashboard`: the dashboard alone, for gateways that have no HTTP front of their own."""
    try:
        host, port = split_listen(listen)
    except ValueError as exc:
        raise ConfigError(None, [ConfigProblem("--listen", str(exc), "write e.g. 127.0.0.1:8766")]) from None
    settings = config or BastionConfig()
    store_url = store_url or settings.audit.store
    with ExitStack() as closing:
        state = StateStore.open(home)
        closing.callback(state.close)
        approvals = open_approvals(home, store_url)
        closing.callback(approvals.close)
        watch = open_watch(home, store_url)
        closing.callback(watch.close)
        audit_store = open_store(home, store_url)
        closing.callback(audit_store.close)

        def holder(token: str) -> tuple[str, str] | None:
            return state.holder_of_token(token, time.time())

        async def record(kind: str, fields: dict[str, Any]) -> None:
            await append_once(settings, home, os.environ, store_url, Record(Kind(kind), fields))

        lock = config_path.parent / LOCK_NAME if config_path is not None else None
        sources = Sources(
            AuditView(audit_store, home),
            state,
            watch,
            approvals,
            config,
            lock,
            record,
            settings.dashboard.payload_roles,
        )
        app = dashboard_app(
            approvals, Sessions(holder), LinkKey(home), secure_cookies=not is_loopback(host), sources=sources
        )
        server = _Server.of(app, host, port)
        # Where to go is what the person who ran the command needs, not a warning: a plain line on
        # stderr (stdout stays free, as for every command that serves).
        with listening_socket(host, port) as sock:
            announce.info(dashboard_banner(host, port))
            async with anyio.create_task_group() as tasks:
                await tasks.start(stop_on_signal, server.stop)
                await server.serve(sockets=[sock])
                tasks.cancel_scope.cancel()


async def _heartbeat(running: Gateway, request: Request) -> Response:
    """`POST /hb/CHECK`, `/hb/CHECK/start`, `/hb/CHECK/fail` (`?rid=RUN`): an agent's run, recorded."""
    kinds = {"start": PingKind.START, "fail": PingKind.FAIL, None: PingKind.SUCCESS}
    kind = kinds.get(request.path_params.get("kind"))
    if running.watcher is None or kind is None:
        return JSONResponse({"error": "unknown check or ping kind"}, status_code=404)
    try:
        answer = await running.watcher.heartbeat(request.path_params["check"], kind, request.query_params.get("rid"))
    except KeyError:
        return JSONResponse({"error": "unknown check; configure it under [watch.checks]"}, status_code=404)
    return JSONResponse(answer)


def _holder(running: Gateway) -> Callable[[str], tuple[str, str] | None]:
    def lookup(token: str) -> tuple[str, str] | None:
        return running.state.holder_of_token(token, running.clock.now())

    return lookup


class PathRouter:
    """/mcp to the MCP endpoint, everything else to the dashboard."""

    def __init__(self, prefixes: dict[str, ASGIApp], default: ASGIApp) -> None:
        self._prefixes = prefixes
        self._default = default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        for prefix, app in self._prefixes.items():
            if path == prefix or path.startswith(prefix + "/") or scope["type"] == "lifespan":
                await app(scope, receive, send)
                return
        await self._default(scope, receive, send)


def _listen(config: BastionConfig) -> tuple[str, int]:
    try:
        host, port = split_listen(config.http.listen)
    except ValueError as exc:
        raise ConfigError(None, [ConfigProblem("http.listen", str(exc), "write e.g. 127.0.0.1:8765")]) from None
    if config.http.open and config.auth is not None:
        raise ConfigError(
            None,
            [
                ConfigProblem(
                    "http.open",
                    "open access takes no tokens, so [auth] would never be asked",
                    "set open = false to require tokens, or remove [auth]",
                )
            ],
        )
    if config.auth is not None:
        resource_uri(config)  # its public URL must be known before serving
    if config.http.open and not is_loopback(host):
        raise ConfigError(
            None,
            [
                ConfigProblem(
                    "http.open",
                    f"open access (no tokens) is only allowed on loopback, not {host}",
                    "listen on 127.0.0.1, or set open = false and create tokens with `bastion tokens create`",
                )
            ],
        )
    return host, port
