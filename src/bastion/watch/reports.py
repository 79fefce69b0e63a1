"""What a running gateway's checks report, told to the audit log and the watcher.

Screening findings, pin drift and sandbox findings each become one audit entry (rules and
places, never raw text) and, where they warrant it, a signal for the watcher; a server's state
changes go to the state store (for `bastion status`) and the watcher. The composition root
binds these to the gateway's log, store and watcher and hands them to the parts that find
things, which know none of them.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from typing import Any

from bastion.audit.entry import Kind, Record
from bastion.audit.log import AuditLog
from bastion.clock import Clock
from bastion.errors import StoreError
from bastion.inventory.pins import Drift
from bastion.proxy.supervisor import StateChange, StateListener
from bastion.sandbox.prepare import ServerFacts
from bastion.screen.findings import Finding
from bastion.screen.gate import finding_fields
from bastion.store.sqlite import StateStore
from bastion.watch.events import Severity, Signal, signal_key
from bastion.watch.service import Watcher

__all__ = ["report_drift", "report_sandbox", "report_screen", "status_listener"]

logger = logging.getLogger(__name__)
findings_log = logging.getLogger("bastion.findings")


async def report_screen(
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
    severity = {"high": Severity.CRITICAL, "medium": Severity.WARNING}.get(fields["severity"])
    if watcher is not None and severity is not None:
        rules = ", ".join(sorted({f.rule for f in findings}))
        summary = f"screening: {what} {name!r} of server {server!r}: {rules}"
        key = signal_key("screen", server=server, what=what, name=name)
        watcher.signal(Signal("screen", key, severity, summary, time.time(), {"rules": rules}, server=server))


async def report_drift(audit: AuditLog, watcher: Watcher | None, drift: Drift) -> None:
    """A server's offer drifted from its pin: an alert, and an entry `bastion review` starts from."""
    if watcher is not None:
        watcher.drift(drift.server, drift.describe(), drift.blocks_server)
    fields = {
        "server": {"name": drift.server},
        "findings": drift.describe(),
        "blocked_tools": sorted(drift.blocked_tools()),
        "server_blocked": drift.blocks_server,
    }
    await _record(audit, Record(Kind.PIN_DRIFT, fields))


async def report_sandbox(audit: AuditLog, server: str, fields: dict[str, Any]) -> None:
    """What the sandbox found about a server (confinement missing or weakened): an entry."""
    await _record(audit, Record(Kind.SANDBOX_FINDING, {"server": {"name": server}, **fields}))


async def _record(audit: AuditLog, record: Record) -> None:
    """A finding's entry: a store that fails is logged, and the finding's other effects still happen."""
    try:
        await audit.append(record)
    except StoreError:
        logger.exception("a %s entry could not be recorded", record.kind.value)


def status_listener(
    store: StateStore | None, clock: Clock, facts: ServerFacts | None = None, watcher: Watcher | None = None
) -> StateListener:
    """Each server state change, told to the watcher and recorded for `bastion status` (with its sandbox)."""
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
