"""The watcher: the detectors, checks and alerts of one gateway, with time and I/O around them.

Calls are observed as they finish (`observe_call`, synchronous and cheap); a first use wakes
the loop at once, so its alert goes out in well under a second. The loop otherwise sleeps
until the next deadline (a closing volume window, a check going late, a reminder due). Each
turn it turns signals into alert changes, writes every change (alert and check) to the
audit log and the shared watch store, applies triage from the CLI, and hands the notifications
that are due to the outbox, which sends them from tasks of their own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import anyio

from bastion.audit.entry import Kind, Record
from bastion.audit.log import AuditLog
from bastion.clock import Clock
from bastion.config.model import WatchConfig
from bastion.errors import StoreError
from bastion.watch.alerts import Alert, AlertChange, Alerts, Notification
from bastion.watch.checks import Check, Checks, CheckStatus, Flip, PingKind, silence_signal
from bastion.watch.detectors import ErrorRate, FirstUse, Health, definition_drift
from bastion.watch.events import CallEvent, Signal
from bastion.watch.sinks import Delivery, Outbox, Sink
from bastion.watch.store import AlertRow, CheckRow, WatchStore
from bastion.watch.volume import TooFrequent, VolumeDetector

__all__ = ["Watcher"]

logger = logging.getLogger(__name__)


class Watcher:
    def __init__(
        self, config: WatchConfig, audit: AuditLog, clock: Clock, store: WatchStore, sinks: Sequence[Sink] = ()
    ) -> None:
        self._config = config
        self._audit = audit
        self._clock = clock
        self._store = store
        learn = datetime.fromisoformat(config.learn_until).timestamp() if config.learn_until else None
        self.first_use = FirstUse(learn_until=learn, expected={k: set(v) for k, v in config.expected.items()})
        self.errors = ErrorRate(window=config.error_window, threshold=config.error_threshold)
        self.volume = VolumeDetector(window=config.volume_window, min_calls=config.volume_min_calls)
        self.health = Health()
        self.alerts = Alerts(
            remind_every=config.remind_every,
            escalate_after=config.escalate_after,
            maintenance=[
                (datetime.fromisoformat(start).timestamp(), datetime.fromisoformat(end).timestamp())
                for start, end in config.maintenance
            ],
        )
        self.too_frequent = TooFrequent()
        for name, check in config.checks.items():
            if check.period is not None:
                self.too_frequent.expect(name, check.period)
        self.checks = Checks(
            Check(name, period=c.period, cron=c.cron, tz=c.tz, grace=c.grace) for name, c in config.checks.items()
        )
        self._server_checks = {c.server: name for name, c in config.checks.items() if c.server}
        self._outbox = Outbox(sinks, self._delivered)
        self._signals: list[Signal] = []
        self._flips: list[Flip] = []
        self._wake = anyio.Event()
        self._pings: dict[str, float] = {}

    @property
    def store(self) -> WatchStore:
        return self._store

    # -- what the gateway reports ------------------------------------------------------------------------------

    def observe_call(self, event: CallEvent) -> None:
        """A finished call (from the watch stage): cheap, synchronous, wakes the loop only if something happened."""
        for detector in (self.first_use.observe, self.errors.observe, self.health.observe):
            found = detector(event)
            if found is not None:
                self._signals.append(found)
        self.volume.observe_event(event)
        check = self._server_checks.get(event.server)
        if check is not None:
            flip = self.checks.ping(check, PingKind.SUCCESS, event.at)
            self._pings[check] = event.at
            if flip is not None:
                self._flips.append(flip)
        if self._signals or self._flips:
            self._wake.set()

    def signal(self, found: Signal | None) -> None:
        if found is not None:
            self._signals.append(found)
            self._wake.set()

    def drift(self, server: str, findings: Sequence[str], blocked: bool) -> None:
        for found in definition_drift(server, findings, self._clock.now(), blocked=blocked):
            self.signal(found)

    def server_state(self, server: str, state: str, detail: str) -> None:
        now = self._clock.now()
        if state == "up":
            self.signal(self.health.restarted(server, now) if self.health.problem(server) else None)
        elif state == "restarting":
            self.signal(self.health.down(server, now, detail))

    async def heartbeat(self, check: str, kind: PingKind, run_id: str | None) -> dict[str, Any]:
        """An agent's ping (`POST /hb/CHECK[/start|/fail]`): a hash-chained audit entry, then the check."""
        if check not in self.checks:
            raise KeyError(check)
        now = self._clock.now()
        flip = self.checks.ping(check, kind, now, run_id)
        if kind is PingKind.SUCCESS:
            self.signal(self.too_frequent.observe(check, now))
        duration = self.checks[check].last_duration if kind is not PingKind.START else None
        fields = {"check": check, "ping": kind.value, "run": run_id or "", "duration_s": duration}
        await self._audit.append(Record(Kind.HEARTBEAT, fields))
        self._pings[check] = now
        if flip is not None:
            self._flips.append(flip)
        self._wake.set()
        return {"check": check, "status": self.checks[check].status.value, "duration_s": duration}

    # -- the loop ----------------------------------------------------------------------------------------------

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with anyio.create_task_group() as senders:
            task_status.started()
            while True:
                now = self._clock.now()
                due = (self.alerts.next_deadline(), self.volume.next_deadline(), self.checks.next_deadline())
                deadlines = [d for d in due if d is not None]
                wait = min([*(d - now for d in deadlines), 1.0])
                with anyio.move_on_after(max(0.0, wait)):
                    await self._wake.wait()
                self._wake = anyio.Event()
                try:
                    for note, alert in await self._turn(self._clock.now()):
                        senders.start_soon(self._outbox.send, note, _fields(alert))
                except StoreError:
                    logger.exception("the watcher could not record its state; trying again")

    async def _turn(self, now: float) -> list[tuple[Notification, Alert | None]]:
        flips, self._flips = [*self._flips, *self.checks.tick(now)], []
        signals, self._signals = [*self._signals, *self.volume.close_windows(now)], []
        for flip in flips:
            await self._record_flip(flip)
            silence = silence_signal(flip)
            if silence is not None:
                signals.append(silence)
        changes: list[AlertChange] = []
        for found in signals:
            change = self.alerts.apply(found, now)
            if change is not None:
                changes.append(change)
        changes += self._triage(now)
        changes += self.alerts.tick(now)
        for change in changes:
            await self._record_change(change)
        return [(note, self.alerts.get(note.alert_key)) for note in self.alerts.due(now)]

    def _triage(self, now: float) -> list[AlertChange]:
        changes: list[AlertChange] = []
        for triage in self._store.pending_triage():
            if triage.action.startswith("snooze:"):
                until = now + float(triage.action.removeprefix("snooze:"))
                change = self.alerts.snooze(triage.key, until, triage.by, triage.note, now)
            else:
                action = self.alerts.ack if triage.action == "ack" else self.alerts.resolve
                change = action(triage.key, triage.by, triage.note, now)
            if change is not None:
                changes.append(change)
            self._store.triage_applied(triage.id, now)
        return changes

    async def _record_change(self, change: AlertChange) -> None:
        fields = {
            "alert": change.key,
            "from": change.old.value if change.old else None,
            "to": change.new.value,
            "by": change.by,
            "note": change.note,
            "reason": change.reason,
            "detector": change.detector,
            "severity": change.severity.value,
        }
        if change.held:
            fields["held"] = change.held
        await self._audit.append(Record(Kind.ALERT_CHANGE, fields))
        alert = self.alerts.get(change.key)
        if alert is not None:
            self._store.save_alert(_row(alert))

    async def _record_flip(self, flip: Flip) -> None:
        fields = {"check": flip.check, "from": flip.old.value, "to": flip.new.value, "reason": flip.reason}
        await self._audit.append(Record(Kind.CHECK_FLIP, fields))
        check = self.checks[flip.check]
        self._store.save_check(
            CheckRow(flip.check, check.status.value, self._pings.get(flip.check), check.due_at, flip.at)
        )

    async def _delivered(self, sink: str, note: Notification, delivery: Delivery) -> None:
        fields = {"alert": note.alert_key, "notification": note.kind.value, "sink": sink, "delivered": delivery.ok}
        if not delivery.ok:
            fields |= {"error": delivery.detail, "permanent": delivery.permanent}
        try:
            await self._audit.append(Record(Kind.ALERT_SENT, fields))
        except StoreError:
            logger.exception("the delivery of %s could not be recorded", note.alert_key)

    def save_checks(self) -> None:
        """Every check's state now, for `bastion status` (at start-up)."""
        now = time.time()
        for check in self.checks:
            status = check.status.value if check.status is not CheckStatus.NEW else "new"
            self._store.save_check(CheckRow(check.name, status, self._pings.get(check.name), check.due_at, now))


def _row(alert: Alert) -> AlertRow:
    return AlertRow(
        alert.key,
        alert.state.value,
        alert.severity.value,
        alert.detector,
        alert.server,
        alert.summary,
        alert.opened_at,
        alert.last_seen,
        alert.count,
        dict(alert.details),
    )


def _fields(alert: Alert | None) -> dict[str, str]:
    if alert is None:
        return {"state": "resolved", "server": ""}
    return {"state": alert.state.value, "server": alert.server, "detector": alert.detector}


async def beacon(url: str, every: float) -> None:
    """Bastion's own heartbeat to an external dead-man's switch: if the gateway stops, it is noticed."""

    def ping() -> None:
        import urllib.request  # with http.client ~0.8 MB: only in gateways that beat, off the loop

        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (a configured http(s) URL)
            response.read()

    while True:
        try:
            await anyio.to_thread.run_sync(ping)
        except OSError as exc:
            logger.warning("the outbound heartbeat to %s failed: %s", url, exc)
        await anyio.sleep(every)
