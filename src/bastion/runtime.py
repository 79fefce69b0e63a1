"""The composition root: the one place that wires concrete classes together."""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from bastion.approvals.stage import ApprovalStage, Notifier
from bastion.approvals.store import ApprovalStore, open_approvals
from bastion.approvals.webhook import LinkKey, WebhookNotifier
from bastion.audit.entry import Kind, Record
from bastion.audit.log import AuditLog
from bastion.audit.service import config_digest, open_audit
from bastion.audit.stage import AuditEvents, AuditStage
from bastion.clock import Clock, SystemClock
from bastion.config.model import BastionConfig, ServerConfig
from bastion.errors import ConfigError, ConfigProblem, StoreError
from bastion.identity.secrets import SecretStore
from bastion.identity.servers import ServerIdentities
from bastion.inventory.admit import PinGuard
from bastion.inventory.pins import Drift, Lock, load_lock
from bastion.policy.compile import compile_policy
from bastion.policy.lint import lint
from bastion.policy.resolver import make_resolver
from bastion.policy.rollout import candidate_file, load_candidate, monitored, screen_as_monitored
from bastion.policy.stage import Candidate, Limits, PolicyStage
from bastion.proxy.catalog import Hide
from bastion.proxy.pipeline import STAGE_ORDER, ClientInfo, PassThrough, Stage
from bastion.proxy.pools import Pools
from bastion.proxy.session import ClientPeer, Session
from bastion.proxy.stdio_front import SessionFactory, StdioFront
from bastion.proxy.supervisor import StateChange, StateListener
from bastion.sandbox.prepare import Launcher, ServerFacts, secrets_of
from bastion.screen.gate import ListingScreen, ResultScreen, finding_fields
from bastion.screen.text import Finding
from bastion.store.sqlite import StateStore
from bastion.transport.connect import make_connector
from bastion.transport.lines import FdStream, FramedStream
from bastion.watch.events import Severity as WatchSeverity
from bastion.watch.events import Signal, signal_key
from bastion.watch.service import Watcher, beacon
from bastion.watch.sinks import make_sink
from bastion.watch.stage import MetricsHook, WatchStage
from bastion.watch.store import WatchStore, open_watch

__all__ = [
    "Gateway",
    "KillSwitches",
    "check_enforceable",
    "default_stages",
    "gateway",
    "make_session_factory",
    "run_stdio",
    "status_listener",
]

logger = logging.getLogger(__name__)
findings_log = logging.getLogger("bastion.findings")


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


def check_enforceable(config: BastionConfig) -> None:
    """Refuse settings this release cannot enforce yet, rather than silently ignoring them."""
    problems = [
        ConfigProblem(finding.where, finding.message, finding.fix)
        for finding in lint(config)
        if finding.severity == "error"
    ]
    for name, server in config.enabled_servers().items():
        problems += _unenforceable(name, server)
    if problems:
        raise ConfigError(None, problems)


def _unenforceable(name: str, server: ServerConfig) -> list[ConfigProblem]:
    found: list[ConfigProblem] = []
    if server.transport == "http" and server.protocol == "2026-07-28":
        found.append(
            ConfigProblem(
                f"servers.{name}.protocol", "2026-07-28 to a remote server is not supported yet", 'use "auto"'
            )
        )
    return found


class KillSwitches:
    """The live kill switches (`bastion policy kill`), re-read from the state store every second."""

    def __init__(self, state: StateStore, period: float = 1.0) -> None:
        self._state = state
        self._period = period
        self._current: frozenset[tuple[str, str]] = frozenset()

    def current(self) -> frozenset[tuple[str, str]]:
        return self._current

    def refresh(self) -> None:
        self._current = frozenset((row.server, row.tool) for row in self._state.kills())

    async def watch(self) -> None:
        while True:
            await anyio.sleep(self._period)
            try:
                self.refresh()
            except StoreError:
                logger.exception("kill switches could not be re-read; keeping the last ones known")


def status_listener(
    store: StateStore | None, clock: Clock, facts: ServerFacts | None = None, watcher: Watcher | None = None
) -> StateListener:
    pid = os.getpid()

    def record(change: StateChange) -> None:
        if watcher is not None:
            watcher.server_state(change.server, change.state.value, change.detail)
        detail = change.detail
        sandbox = facts.of(change.server).get("sandbox") if facts is not None else None
        if sandbox is not None and change.state.value == "up":
            detail = f"{detail}; sandbox: {sandbox}"
        if store is not None:
            store.server_state(pid, change.server, change.state.value, detail, change.restarts, clock.now())

    return record


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
        audit = open_audit(config, home, environ, clock)
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
            tasks.start_soon(launcher.watch, functools.partial(_sandbox_finding, audit))
            for name, server in config.enabled_servers().items():
                if server.transport == "stdio" and server.sandbox == "off":
                    await _sandbox_finding(audit, name, {"finding": 'runs unsandboxed (sandbox = "off")'})
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
    return [WebhookNotifier(settings.webhook_url, settings.public_url, LinkKey(home), settings.link_ttl)]


def pins_in_force(config: BastionConfig, lock_path: Path | None) -> Lock | None:
    """The lock to enforce: with `auto`, only once `bastion pin` has written one; `enforce` without
    a lock blocks every server (nothing is pinned); a lock that does not load stops start-up."""
    mode = config.gateway.pinning
    if mode == "off" or lock_path is None:
        return None
    if mode == "auto" and not lock_path.exists():
        return None
    return load_lock(lock_path)


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


def _either(first: Hide, second: Hide) -> Hide:
    def hide(server: str, item: Mapping[str, Any]) -> Mapping[str, str] | None:
        return first(server, item) or second(server, item)

    return hide


def _told(hide: Hide, told: set[tuple[str, str]]) -> Hide:
    """`hide`, and the person running the gateway is told once on stderr of each tool a missing
    grant hides, with the grant that would show it (the client is told nothing: invariant 5)."""

    def tell(server: str, item: Mapping[str, Any]) -> Mapping[str, str] | None:
        why = hide(server, item)
        rule = why.get("rule", "") if why is not None else ""
        name = str(item.get("name"))
        if why is not None and rule.startswith("capability.") and (server, name) not in told:
            told.add((server, name))
            capability = rule.removeprefix("capability.")
            logger.warning(
                "server %s: tool %r is hidden: %s (with `bastion wrap`: --grant %s, or --grant-tool %s)",
                server, name, why.get("reason", ""), capability, name,
            )  # fmt: skip
        return why

    return tell


async def _drift(audit: AuditLog, watcher: Watcher | None, drift: Drift) -> None:
    if watcher is not None:
        watcher.drift(drift.server, drift.describe(), drift.blocks_server)
    fields = {
        "server": {"name": drift.server},
        "findings": drift.describe(),
        "blocked_tools": sorted(drift.blocked_tools()),
        "server_blocked": drift.blocks_server,
    }
    await _record(audit, Record(Kind.PIN_DRIFT, fields))


async def _screen_finding(
    audit: AuditLog, watcher: Watcher | None, server: str, what: str, name: str, findings: Sequence[Finding]
) -> None:
    """Screening findings: an audit entry (rules and places, never raw text) and, above low, an alert."""
    fields = finding_fields(server, what, name, findings)
    key = "tool" if what in ("tool", "result") else what
    for rule in sorted({f.rule for f in findings}):
        # One structured line per rule on stderr: a client's own logs show what Bastion saw, even with `flag`.
        severity = fields["severity"]
        findings_log.warning(
            "finding %s server=%s %s=%s in=%s severity=%s", rule, server, key, name, what, severity,
            extra={"server": server, "tool" if key == "tool" else "item": name, "rule": rule, "in": what,
                   "severity": severity},
        )  # fmt: skip
    await _record(audit, Record(Kind.SCREEN_FINDING, fields))
    severity = {"high": WatchSeverity.CRITICAL, "medium": WatchSeverity.WARNING}.get(fields["severity"])
    if watcher is not None and severity is not None:
        rules = ", ".join(sorted({f.rule for f in findings}))
        summary = f"screening: {what} {name!r} of server {server!r}: {rules}"
        key = signal_key("screen", server=server, what=what, name=name)
        watcher.signal(Signal("screen", key, severity, summary, time.time(), {"rules": rules}, server=server))


async def _sandbox_finding(audit: AuditLog, server: str, fields: dict[str, Any]) -> None:
    await _record(audit, Record(Kind.SANDBOX_FINDING, {"server": {"name": server}, **fields}))


async def _record(audit: AuditLog, record: Record) -> None:
    """A finding's entry: a store that fails is logged, and the finding's other effects still happen."""
    try:
        await audit.append(record)
    except StoreError:
        logger.exception("a %s entry could not be recorded", record.kind.value)


def make_session_factory(running: Gateway, pools: Pools | None = None) -> SessionFactory:
    """Sessions over every server; with `pools` (`bastion serve`), pooled servers' processes are shared."""
    config = running.config
    connector = make_connector(
        running.environ,
        max_bytes=config.gateway.max_frame_bytes,
        max_depth=config.gateway.max_depth,
        prepare=running.launcher,
    )
    on_state = status_listener(running.state, running.clock, running.facts, running.watcher)
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
        report = functools.partial(_screen_finding, running.audit, running.watcher)
        screened = screen_as_monitored(servers, running.policy.monitor)
        listings = ListingScreen(screened, report)
        results = ResultScreen(screened, report, listings.listed)
        policy_hide = _told(functools.partial(running.policy.hide, client.client_id, ceiling=client.grants), told)
        guard = None
        if running.lock is not None:
            guard = PinGuard(running.lock, servers, functools.partial(_drift, running.audit, running.watcher), events)
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
            hide=_either(guard.hide, policy_hide) if guard is not None else policy_hide,
            observe=guard.observe if guard is not None else None,
            screen=listings,
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
    """Serve one client on Bastion's own stdin/stdout until it disconnects."""
    async with gateway(config, environ, home, "stdio", label, clock, lock_path) as running:
        channel = FramedStream(
            FdStream(0), FdStream(1), max_bytes=config.gateway.max_frame_bytes, max_depth=config.gateway.max_depth
        )
        front = StdioFront(channel, make_session_factory(running), instance=config.gateway.instance)
        await front.serve()
    if front.failed is not None:
        raise front.failed
