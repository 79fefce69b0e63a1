"""The HTTP half of the composition root: `bastion serve`.

Kept apart from `runtime` so that stdio gateways (one `bastion wrap` per server in a client
config) never load the web stack and the SDK's server.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path

import anyio
import uvicorn
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

from bastion.approvals.webhook import LinkKey
from bastion.clock import Clock
from bastion.config.model import BastionConfig
from bastion.errors import ConfigError, ConfigProblem
from bastion.proxy.http_front import HttpFront
from bastion.proxy.pipeline import ClientInfo
from bastion.proxy.session import NoClient
from bastion.runtime import Gateway, gateway, make_session_factory
from bastion.store.sqlite import StateStore
from bastion.transport.http_front_app import BearerAuth, is_loopback, split_listen
from bastion.web.app import dashboard_app
from bastion.web.auth import Sessions

__all__ = ["PathRouter", "build_http_app", "preflight", "run_http"]

logger = logging.getLogger(__name__)


async def preflight(running: Gateway) -> str | None:
    """Start every server once before serving: collisions are a start-up error; returns the instructions."""
    session = make_session_factory(running)(ClientInfo("preflight", "preflight"), NoClient(), {})
    instructions: str | None = None
    async with anyio.create_task_group() as tasks:
        await tasks.start(session.run)
        instructions = session.instructions()
        tasks.cancel_scope.cancel()
    return instructions


def build_http_app(config: BastionConfig, front: HttpFront, store: StateStore | None, clock: Clock) -> ASGIApp:
    host, port = split_listen(config.http.listen)
    hosts = [f"{host}:{port}", "127.0.0.1:*", "localhost:*", "[::1]:*", *config.http.allowed_hosts]
    origins = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*", *config.http.allowed_origins]
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )
    app = front.server.streamable_http_app(streamable_http_path="/mcp", transport_security=security, host=host)

    def lookup(token: str) -> str | None:
        return store.client_for_token(token, clock.now()) if store is not None else None

    return BearerAuth(app, lookup, open_access=config.http.open)


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
    async with gateway(config, environ, home, f"http {host}:{port}", label, clock, lock_path) as running:
        front = HttpFront(
            make_session_factory(running), instance=config.gateway.instance, instructions=await preflight(running)
        )
        app = build_http_app(config, front, running.state, running.clock)
        if running.approvals is not None and "dashboard" in config.approvals.channels:
            dashboard = dashboard_app(running.approvals, Sessions(_holder(running)), LinkKey(home))
            app = PathRouter({"/mcp": app}, dashboard)
        server = uvicorn.Server(
            uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on", access_log=False)
        )
        async with anyio.create_task_group() as tasks:
            await tasks.start(front.run)
            logger.warning("bastion serving MCP at http://%s:%d/mcp (dashboard at /)", host, port)
            await server.serve()
            tasks.cancel_scope.cancel()


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
