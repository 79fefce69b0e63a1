"""The composition root: the one place that wires concrete classes together."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from bastion.approvals.stage import ApprovalStage, Notifier
from bastion.approvals.store import ApprovalStore, open_approvals
from bastion.audit.entry import Kind, Record
from bastion.audit.log import AuditLog
from bastion.audit.service import config_digest, open_audit
from bastion.audit.stage import AuditEvents, AuditStage
from bastion.clock import Clock, SystemClock
from bastion.config.model import BastionConfig
from bastion.identity.secrets import SecretStore
from bastion.identity.servers import ServerIdentities
from bastion.inventory.admit import PinGuard
from bastion.inventory.enforce import PinListings, pins_in_force
from bastion.inventory.pins import Lock
from bastion.policy.compile import compile_policy
from bastion.policy.enforceable import check_enforceable
from bastion.policy.hiding import told_once
from bastion.policy.kills import KillSwitches
from bastion.policy.resolver import make_resolver
from bastion.policy.rollout import candidate_file, load_candidate, monitored, screen_as_monitored
from bastion.policy.stage import Candidate, Limits, PolicyStage
from bastion.proxy.listings import ListingStage, RecordListings, either
from bastion.proxy.pipeline import STAGE_ORDER, ClientInfo, PassThrough, Stage
from bastion.proxy.pools import Pools
from bastion.proxy.session import ClientPeer, NoClient, Session
from bastion.proxy.stdio_front import SessionFactory, StdioFront
from bastion.proxy.supervisor import StateListener
from bastion.sandbox.prepare import Launcher, ServerFacts, secrets_of
from bastion.screen.gate import ListingScreen, ResultScreen, ScreenListings
from bastion.stopping import stop_on_signal
from bastion.store.audit_open import open_store
from bastion.store.home import bastion_home, ensure_home
from bastion.store.sqlite import StateStore
from bastion.transport.connect import make_connector
from bastion.transport.lines import FdStream, FramedStream
from bastion.transport.link import Connector
from bastion.types import Era
from bastion.watch.reports import report_drift, report_sandbox, report_screen, status_listener
from bastion.watch.service import Watcher, beacon
from bastion.watch.sinks import make_sink
from bastion.watch.stage import MetricsHook, WatchStage
from bastion.watch.store import WatchStore, open_watch

if TYPE_CHECKING:
    from bastion.inventory.collect import ServerInventory

__all__ = [
    "Gateway",
    "collect_inventory",
    "default_stages",
    "gateway",
    "make_session_factory",
    "run_stdio",
]


def default_stages(
    audit: AuditLog,
    policy: PolicyStage,
    facts: ServerFacts,
    admit: PinGuard | None = None,
    approval: ApprovalStage | None = None,
    watch: WatchStage | None = None,
    screen: ResultScreen | None = None,
) -> list[Stage]:
    """Every stage in its place; a stage that is not configured passes calls through."""
    built: dict[str, Stage] = {"audit": AuditStage(audit, facts.of), "policy": policy}
    for name, stage in (("admit", admit), ("approval", approval), ("watch", watch), ("screen", screen)):
        if stage is not None:
            built[name] = stage
    return [built.get(name) or PassThrough(name) for name in STAGE_ORDER]


@dataclass(frozen=True, slots=True)
class Gateway:
    """What a running gateway process shares between its sessions."""

    config: BastionConfig
    environ: Mapping[str, str]
    state: StateStore
    audit: AuditLog
    clock: Clock
    policy: PolicyStage
    facts: ServerFacts
    launcher: Launcher
    lock: Lock | None = None
    """The pins in force (None: pinning is off)."""
    approval: ApprovalStage | None = None
    """The approval gate (None: no channel configured, so calls that need approval are refused)."""
    approvals: ApprovalStore | None = None
    watcher: Watcher | None = None
    watch: WatchStage | None = None
    metrics: MetricsHook | None = None


@asynccontextmanager
async def gateway(
    config: BastionConfig,
    environ: Mapping[str, str],
    home: Path,
    mode: str,
    label: str,
    clock: Clock | None = None,
    lock_path: Path | None = None,
) -> AsyncIterator[Gateway]:
    """A gateway's lifetime: refuse what cannot be enforced, open the stores, record start and stop."""
    clock = clock or SystemClock()
    check_enforceable(config)
    policy = compile_policy(config, environ)
    monitor, candidate, rollout = _rollout(config, environ)
    lock = pins_in_force(config, lock_path)
    with ExitStack() as closing:
        state = StateStore.open(home)
        closing.callback(state.close)
        kills = KillSwitches(state)
        kills.refresh()
        audit_store = open_store(home, config.audit.store)
        closing.callback(audit_store.close)  # after the log's last entries: held ones committed, the journal gone
        audit = open_audit(config, home, environ, clock, audit_store)
        secrets = SecretStore.open(home, environ)
        closing.callback(secrets.close)
        identities = ServerIdentities(home)
        facts = ServerFacts({name: identities.identity(name).id for name in config.enabled_servers()})
        hook = MetricsHook()
        events = AuditEvents(audit, facts.of, hook.denied)
        gate = bool(config.approvals.channels)
        resolve = make_resolver(config.dns)
        stage = PolicyStage(
            policy, Limits(config), clock, events, kills.current,
            approval_gate=gate, resolve=resolve, monitor=monitor, candidate=candidate,
        )  # fmt: skip
        approvals = open_approvals(home, config.audit.store) if gate else None
        if approvals is not None:
            closing.callback(approvals.close)
        watch_store = open_watch(home, config.audit.store) if config.watch.enabled else None
        if watch_store is not None:
            closing.callback(watch_store.close)
        pid = os.getpid()
        state.gateway_started(pid, config.gateway.instance, mode, label, clock.now())
        closing.callback(state.gateway_stopped, pid)
        async with anyio.create_task_group() as tasks:
            await tasks.start(audit.run)
            tasks.start_soon(kills.watch)
            start = {"mode": mode, "pid": pid, "label": label, "config_sha256": config_digest(config), **rollout}
            await audit.append(Record(Kind.GATEWAY_START, start))
            launcher = Launcher(environ, facts, secrets_of(secrets))
            tasks.start_soon(launcher.watch, functools.partial(report_sandbox, audit))
            for name, server in config.enabled_servers().items():
                if server.transport == "stdio" and server.sandbox == "off":
                    await report_sandbox(audit, name, {"finding": 'runs unsandboxed (sandbox = "off")'})
            watcher = await _start_watcher(config, environ, audit, clock, watch_store, tasks)
            approval = _approval_stage(config, home, approvals, audit, clock, events)
            try:
                yield Gateway(
                    config, environ, state, audit, clock, stage, facts, launcher,
                    lock, approval, approvals, watcher, WatchStage(watcher, hook), hook,
                )  # fmt: skip
            finally:
                with anyio.CancelScope(shield=True):
                    await audit.append(Record(Kind.GATEWAY_STOP, {"pid": pid}))
                    tasks.cancel_scope.cancel()


async def _start_watcher(
    config: BastionConfig,
    environ: Mapping[str, str],
    audit: AuditLog,
    clock: Clock,
    store: WatchStore | None,
    tasks: anyio.abc.TaskGroup,
) -> Watcher | None:
    if store is None:
        return None
    sinks = [make_sink(sink, environ) for sink in config.watch.sinks]
    watcher = Watcher(config.watch, audit, clock, store, sinks)
    watcher.save_checks()
    await tasks.start(watcher.run)
    if config.watch.heartbeat_url:
        tasks.start_soon(beacon, config.watch.heartbeat_url, config.watch.heartbeat_every)
    return watcher


def _approval_stage(
    config: BastionConfig,
    home: Path,
    store: ApprovalStore | None,
    audit: AuditLog,
    clock: Clock,
    events: AuditEvents,
) -> ApprovalStage | None:
    if store is None:
        return None
    notifiers = _notifiers(config, home)
    return ApprovalStage(store, config.approvals, config.gateway.instance, audit, clock, notifiers, events)


def _notifiers(config: BastionConfig, home: Path) -> list[Notifier]:
    settings = config.approvals
    if "webhook" not in settings.channels or not settings.webhook_url or not settings.public_url:
        return []
    # urllib.request and http.client (~0.8 MB): loaded only by gateways that post webhooks
    from bastion.approvals.webhook import LinkKey, WebhookNotifier

    return [WebhookNotifier(settings.webhook_url, settings.public_url, LinkKey(home), settings.link_ttl)]


def _rollout(
    config: BastionConfig, environ: Mapping[str, str]
) -> tuple[frozenset[str], Candidate | None, dict[str, Any]]:
    """The servers in monitor mode and the candidate policy, and what the start entry says of them.
    An invalid candidate stops start-up (fail closed): it is never silently left unevaluated."""
    monitor = monitored(config)
    said: dict[str, Any] = {"monitor": sorted(monitor)} if monitor else {}
    candidate = None
    path = candidate_file(config)
    if path is not None:
        shadowed = load_candidate(path)
        candidate = Candidate(compile_policy(shadowed, environ), Limits(shadowed))
        said["candidate"] = {"file": str(path), "config_sha256": config_digest(shadowed)}
    _warn_monitor(monitor)
    return monitor, candidate, said


def _warn_monitor(monitor: frozenset[str]) -> None:
    """Loudly, on stderr whatever the log level: these servers' refusals are not applied."""
    for name in sorted(monitor):
        sys.stderr.write(
            f"bastion: WARNING: server {name!r} runs in MONITOR mode: policy refusals, approval waits and "
            'screening blocks are recorded in the audit log but NOT applied (set mode = "enforce" to block)\n'
        )
    if monitor:
        sys.stderr.flush()


def server_links(running: Gateway) -> tuple[Connector, StateListener]:
    """How a running gateway reaches its servers (sandboxed, within the frame limits), and who
    hears when one of them starts, stops or fails (status, facts, the watcher)."""
    settings = running.config.gateway
    connector = make_connector(
        running.environ, max_bytes=settings.max_frame_bytes, max_depth=settings.max_depth, prepare=running.launcher
    )
    return connector, status_listener(running.state, running.clock, running.facts, running.watcher)


def make_session_factory(running: Gateway, pools: Pools | None = None) -> SessionFactory:
    """Sessions over every server; with `pools` (`bastion serve`), pooled servers' processes are shared."""
    config = running.config
    connector, on_state = server_links(running)
    told: set[tuple[str, str]] = set()

    def make(client: ClientInfo, peer: ClientPeer, capabilities: dict[str, Any]) -> Session:
        allowed = running.policy.policy.clients.get(client.client_id)
        token_servers = running.state.token_servers(client.client_id)
        servers = {
            name: server
            for name, server in config.enabled_servers().items()
            if (allowed is None or allowed.servers is None or name in allowed.servers)
            and (token_servers is None or name in token_servers)
        }
        events = AuditEvents(running.audit, running.facts.of, running.metrics.denied if running.metrics else None)
        report = functools.partial(report_screen, running.audit, running.watcher)
        screened = screen_as_monitored(servers, running.policy.monitor)
        listings = ListingScreen(screened, report)
        results = ResultScreen(screened, report, listings.listed)
        policy_hide = told_once(functools.partial(running.policy.hide, client.client_id, ceiling=client.grants), told)
        offered: list[ListingStage] = [ScreenListings(listings), RecordListings(events)]
        guard = None
        if running.lock is not None:
            drift = functools.partial(report_drift, running.audit, running.watcher)
            guard = PinGuard(running.lock, servers, drift, events)
            offered.append(PinListings(guard.observe))
        return Session(
            servers,
            config.gateway,
            client,
            peer,
            connector,
            client_capabilities=capabilities,
            stages=default_stages(
                running.audit, running.policy, running.facts, guard, running.approval, running.watch, results
            ),
            on_state=on_state,
            events=events,
            hide=either(guard.hide, policy_hide) if guard is not None else policy_hide,
            listings=offered,
            pools=pools,
        )

    return make


async def run_stdio(
    config: BastionConfig,
    environ: Mapping[str, str],
    home: Path,
    label: str,
    clock: Clock | None = None,
    lock_path: Path | None = None,
) -> None:
    """Serve one client on Bastion's own stdin/stdout until it disconnects, or until SIGTERM or SIGINT
    (then requests in flight are cancelled, their outcomes saying so, and the gateway stops as when
    the client goes)."""
    async with gateway(config, environ, home, "stdio", label, clock, lock_path) as running:
        channel = FramedStream(
            FdStream(0), FdStream(1), max_bytes=config.gateway.max_frame_bytes, max_depth=config.gateway.max_depth
        )
        front = StdioFront(channel, make_session_factory(running), instance=config.gateway.instance)
        async with anyio.create_task_group() as tasks:
            await tasks.start(stop_on_signal, tasks.cancel_scope.cancel)
            await front.serve()
            tasks.cancel_scope.cancel()
    if front.failed is not None:
        raise front.failed


async def collect_inventory(
    config: BastionConfig, environ: Mapping[str, str], lock: Lock | None = None
) -> list[ServerInventory]:
    """Start every enabled server as the gateway would run it (sandboxed, with its own secrets)
    and take stock of what it offers (`bastion inspect`, `bastion pin`).

    The inventory (with the package registries' urllib.request and http.client) is loaded by these
    commands only, not by every gateway that imports this module."""
    from bastion.inventory.collect import take_inventory

    secrets = SecretStore.open(ensure_home(bastion_home(environ)), environ)
    try:
        launcher = Launcher(environ, ServerFacts(), secrets_of(secrets))
        settings = config.gateway
        connector = make_connector(
            environ, max_bytes=settings.max_frame_bytes, max_depth=settings.max_depth, prepare=launcher
        )
        client = ClientInfo("inventory", "inventory", Era.HANDSHAKE, "bastion-inventory")
        session = Session(config.enabled_servers(), settings, client, NoClient(), connector, client_capabilities={})
        return await take_inventory(session, compile_policy(config, environ), lock)
    finally:
        secrets.close()
