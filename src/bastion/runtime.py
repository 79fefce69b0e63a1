"""The composition root: the one place that wires concrete classes together."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from bastion.audit.entry import Kind, Record
from bastion.audit.log import AuditLog
from bastion.audit.service import config_digest, open_audit
from bastion.audit.stage import AuditEvents, AuditStage
from bastion.clock import Clock, SystemClock
from bastion.config.model import BastionConfig, ServerConfig
from bastion.errors import ConfigError, ConfigProblem
from bastion.proxy.pipeline import STAGE_ORDER, ClientInfo, PassThrough, Stage
from bastion.proxy.session import ClientPeer, Session
from bastion.proxy.stdio_front import SessionFactory, StdioFront
from bastion.proxy.supervisor import StateChange, StateListener
from bastion.store.sqlite import StateStore
from bastion.transport.connect import make_connector
from bastion.transport.lines import FdStream, FramedStream

__all__ = [
    "Gateway",
    "check_enforceable",
    "default_stages",
    "gateway",
    "make_session_factory",
    "run_stdio",
    "status_listener",
]

logger = logging.getLogger(__name__)


def default_stages(audit: AuditLog) -> list[Stage]:
    """Every stage in its place; those that later releases fill in pass calls through for now."""
    return [AuditStage(audit) if name == "audit" else PassThrough(name) for name in STAGE_ORDER]


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


@dataclass(frozen=True, slots=True)
class Gateway:
    """What a running gateway process shares between its sessions."""

    config: BastionConfig
    environ: Mapping[str, str]
    state: StateStore
    audit: AuditLog
    clock: Clock


@asynccontextmanager
async def gateway(
    config: BastionConfig, environ: Mapping[str, str], home: Path, mode: str, label: str, clock: Clock | None = None
) -> AsyncIterator[Gateway]:
    """A gateway's lifetime: refuse what cannot be enforced, open the stores, record start and stop."""
    clock = clock or SystemClock()
    check_enforceable(config)
    state = StateStore.open(home)
    audit = open_audit(config, home, environ, clock)
    pid = os.getpid()
    state.gateway_started(pid, config.gateway.instance, mode, label, clock.now())
    try:
        async with anyio.create_task_group() as tasks:
            await tasks.start(audit.run)
            await audit.append(
                Record(
                    Kind.GATEWAY_START,
                    {"mode": mode, "pid": pid, "label": label, "config_sha256": config_digest(config)},
                )
            )
            try:
                yield Gateway(config, environ, state, audit, clock)
            finally:
                with anyio.CancelScope(shield=True):
                    await audit.append(Record(Kind.GATEWAY_STOP, {"pid": pid}))
                    tasks.cancel_scope.cancel()
    finally:
        state.gateway_stopped(pid)
        state.close()


def make_session_factory(running: Gateway) -> SessionFactory:
    config = running.config
    connector = make_connector(
        running.environ, max_bytes=config.gateway.max_frame_bytes, max_depth=config.gateway.max_depth
    )
    on_state = status_listener(running.state, running.clock)

    def make(client: ClientInfo, peer: ClientPeer, capabilities: dict[str, Any]) -> Session:
        return Session(
            config.enabled_servers(),
            config.gateway,
            client,
            peer,
            connector,
            client_capabilities=capabilities,
            stages=default_stages(running.audit),
            on_state=on_state,
            events=AuditEvents(running.audit),
        )

    return make


async def run_stdio(
    config: BastionConfig, environ: Mapping[str, str], home: Path, label: str, clock: Clock | None = None
) -> None:
    """Serve one client on Bastion's own stdin/stdout until it disconnects."""
    async with gateway(config, environ, home, "stdio", label, clock) as running:
        channel = FramedStream(
            FdStream(0), FdStream(1), max_bytes=config.gateway.max_frame_bytes, max_depth=config.gateway.max_depth
        )
        front = StdioFront(channel, make_session_factory(running), instance=config.gateway.instance)
        await front.serve()
