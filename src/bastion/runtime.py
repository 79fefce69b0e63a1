"""The composition root: the one place that wires concrete classes together."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import anyio
import uvicorn
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp

from bastion.clock import Clock, SystemClock
from bastion.config.model import BastionConfig, ServerConfig
from bastion.errors import ConfigError, ConfigProblem
from bastion.proxy.http_front import HttpFront
from bastion.proxy.pipeline import STAGE_ORDER, ClientInfo, PassThrough, Stage
from bastion.proxy.session import ClientPeer, NoClient, Session
from bastion.proxy.stdio_front import SessionFactory, StdioFront
from bastion.proxy.supervisor import StateChange, StateListener
from bastion.store.sqlite import StateStore
from bastion.transport.connect import make_connector
from bastion.transport.http_front_app import BearerAuth, is_loopback, split_listen
from bastion.transport.lines import FdStream, FramedStream

__all__ = [
    "build_http_app",
    "check_enforceable",
    "default_stages",
    "make_session_factory",
    "preflight",
    "run_http",
    "run_stdio",
    "status_listener",
]

logger = logging.getLogger(__name__)


def default_stages() -> list[Stage]:
    """Every stage in its place; those that later releases fill in pass calls through for now."""
    return [PassThrough(name) for name in STAGE_ORDER]


def check_enforceable(config: BastionConfig) -> None:
    """Refuse settings this release cannot enforce yet, rather than silently ignoring them."""
    problems: list[ConfigProblem] = []
    for name, server in config.enabled_servers().items():
        problems += _unenforceable(name, server)
    if problems:
        raise ConfigError(None, problems)


def _unenforceable(name: str, server: ServerConfig) -> list[ConfigProblem]:
    later = "this release cannot enforce it yet; remove it, or wait for the release that does"
    found: list[ConfigProblem] = []
    if server.tools.approve:
        found.append(ConfigProblem(f"servers.{name}.tools.approve", "the approval gate is not available", later))
    if server.read_only:
        found.append(ConfigProblem(f"servers.{name}.read_only", "read-only enforcement is not available", later))
    if server.fs_read or server.fs_write:
        found.append(ConfigProblem(f"servers.{name}.fs_read/fs_write", "filesystem grants need the sandbox", later))
    if server.network is not None:
        found.append(ConfigProblem(f"servers.{name}.network", "network grants need the sandbox", later))
    if server.transport == "http" and server.protocol == "2026-07-28":
        found.append(
            ConfigProblem(
                f"servers.{name}.protocol", "2026-07-28 to a remote server is not supported yet", 'use "auto"'
            )
        )
    return found


def status_listener(store: StateStore | None, clock: Clock) -> StateListener:
    pid = os.getpid()

    def record(change: StateChange) -> None:
        if store is not None:
            store.server_state(pid, change.server, change.state.value, change.detail, change.restarts, clock.now())

    return record


def make_session_factory(config: BastionConfig, environ: Mapping[str, str], on_state: StateListener) -> SessionFactory:
    connector = make_connector(environ, max_bytes=config.gateway.max_frame_bytes, max_depth=config.gateway.max_depth)

    def make(client: ClientInfo, peer: ClientPeer, capabilities: dict[str, Any]) -> Session:
        return Session(
            config.enabled_servers(),
            config.gateway,
            client,
            peer,
            connector,
            client_capabilities=capabilities,
            stages=default_stages(),
            on_state=on_state,
        )

    return make


async def run_stdio(
    config: BastionConfig, environ: Mapping[str, str], store: StateStore | None, label: str, clock: Clock | None = None
) -> None:
    """Serve one client on Bastion's own stdin/stdout until it disconnects."""
    clock = clock or SystemClock()
    check_enforceable(config)
    pid = os.getpid()
    if store is not None:
        store.gateway_started(pid, config.gateway.instance, "stdio", label, clock.now())
    channel = FramedStream(
        FdStream(0), FdStream(1), max_bytes=config.gateway.max_frame_bytes, max_depth=config.gateway.max_depth
    )
    front = StdioFront(
        channel,
        make_session_factory(config, environ, status_listener(store, clock)),
        instance=config.gateway.instance,
    )
    try:
        await front.serve()
    finally:
        with anyio.CancelScope(shield=True):
            if store is not None:
                store.gateway_stopped(pid)


async def preflight(config: BastionConfig, environ: Mapping[str, str]) -> str | None:
    """Start every server once before serving: collisions are a start-up error; returns the instructions."""
    factory = make_session_factory(config, environ, lambda _change: None)
    session = factory(ClientInfo("preflight", "preflight"), NoClient(), {})
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
    config: BastionConfig, environ: Mapping[str, str], store: StateStore | None, label: str, clock: Clock | None = None
) -> None:
    """Serve many clients over Streamable HTTP until interrupted."""
    clock = clock or SystemClock()
    check_enforceable(config)
    host, port = _listen(config)
    instructions = await preflight(config, environ)
    front = HttpFront(
        make_session_factory(config, environ, status_listener(store, clock)),
        instance=config.gateway.instance,
        instructions=instructions,
    )
    pid = os.getpid()
    if store is not None:
        store.gateway_started(pid, config.gateway.instance, f"http {host}:{port}", label, clock.now())
    server = uvicorn.Server(
        uvicorn.Config(
            build_http_app(config, front, store, clock),
            host=host,
            port=port,
            log_level="warning",
            lifespan="on",
            access_log=False,
        )
    )
    try:
        async with anyio.create_task_group() as tasks:
            await tasks.start(front.run)
            logger.warning("bastion serving MCP at http://%s:%d/mcp", host, port)
            await server.serve()
            tasks.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            if store is not None:
                store.gateway_stopped(pid)


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
