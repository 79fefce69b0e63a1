"""The alert lifecycle: signals become alerts, alerts change state, and notifications fall due.

`Alerts(remind_every=3600.0, escalate_after=1800.0, escalate_min=Severity.WARNING,
maintenance=(), flap_count=3, flap_window=3600.0, parents=("health",), system="bastion")` is pure
logic: it records, decides and schedules; a separate task stores the changes and sends.

* `raise_(signal, now)` opens an alert for `signal.key` and returns the `AlertChange`. While an
  alert with that key is not resolved, a signal only updates it (count, last_seen, summary, and
  severity if higher, which also brings a reminder forward): None is returned.
  `apply(signal, now)` does the same, or resolves for a recovery signal (`signal.recovery`).
* `ack(key, by, note, now)`, `resolve(key, by, note, now)` and `snooze(key, until, by, note, now)`
  are triage by a person, with who and why (SOC 2 CC7.3 evidence); `auto_resolve(key, now,
  reason)` is a recovery seen by a detector. Each returns the `AlertChange`, or None if nothing
  changed (unknown key, already in that state).
* `tick(now)` ends snoozes that are over (SNOOZED -> OPEN) and forgets resolved alerts that can no
  longer flap; `due(now)` returns the `Notification`s due; `next_deadline()` is when to call
  them again (None: only a new event can make anything due). A sender loop wakes at
  `next_deadline()`, calls `tick` then `due`, stores the changes and sends the notifications.

Notifications: "alert" when an alert is first notified; "reminder" every `remind_every` seconds
while it stays OPEN (None: no reminders); one "escalation" to the secondary channel
`escalate_after` seconds after the first notification if nobody acknowledged it and its severity
is at least `escalate_min` (None: never); "resolved" when a notified alert resolves (also to the
secondary channel when it was escalated); "flapping" once when an alert opens more than
`flap_count` times within `flap_window` seconds, after which that alert is recorded but not
notified until it has not changed for `flap_window` seconds (if it is then resolved, a final
"resolved" closes the notice; if open, it is notified as a new alert). An acknowledged alert
gets no reminders or escalation; a snoozed one none until the snooze ends.

Holds, recorded in `AlertChange.held`: during a maintenance window (`maintenance` pairs of
(start, end) seconds, or `add_maintenance`) alerts are recorded but not notified; what is still
open when the window ends is notified then. While a server has an open alert from a `parents`
detector (its health alert), alerts about that server from other detectors are recorded but not
notified: a server that is down silences alerts about its tools.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any

from bastion.watch.events import Severity, Signal

__all__ = ["Alert", "AlertChange", "AlertState", "Alerts", "Channel", "Notification", "NotificationKind"]


class AlertState(Enum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    SNOOZED = "snoozed"


class NotificationKind(StrEnum):
    ALERT = "alert"
    REMINDER = "reminder"
    ESCALATION = "escalation"
    FLAPPING = "flapping"
    RESOLVED = "resolved"


class Channel(StrEnum):
    PRIMARY = "primary"
    SECONDARY = "secondary"


@dataclass(frozen=True, slots=True)
class AlertChange:
    """One change of an alert's state: stored by the caller and written to the audit log."""

    key: str
    old: AlertState | None
    new: AlertState
    at: float
    by: str
    note: str
    reason: str
    detector: str
    severity: Severity
    held: str = ""


@dataclass(frozen=True, slots=True)
class Notification:
    """Something to send; a separate task sends it."""

    kind: NotificationKind
    alert_key: str
    channel: Channel
    summary: str
    at: float
    severity: Severity


@dataclass(slots=True)
class Alert:
    """An alert's current record. Read it; change it only through `Alerts`."""

    key: str
    detector: str
    server: str
    severity: Severity
    summary: str
    details: Mapping[str, Any]
    state: AlertState = AlertState.OPEN
    opened_at: float = 0.0
    last_seen: float = 0.0
    count: int = 1
    notified_at: float | None = None
    next_reminder: float | None = None
    escalated: bool = False
    snoozed_until: float | None = None
    flapping: bool = False
    flap_noticed: bool = False
    last_change: float = 0.0
    opens: deque[float] = field(default_factory=deque[float])


class Alerts:
    """Alert state per key, with dedup, reminders, escalation, snooze, holds and flapping."""

    def __init__(
        self,
        *,
        remind_every: float | None = 3600.0,
        escalate_after: float | None = 1800.0,
        escalate_min: Severity = Severity.WARNING,
        maintenance: Iterable[tuple[float, float]] = (),
        flap_count: int = 3,
        flap_window: float = 3600.0,
        parents: Iterable[str] = ("health",),
        system: str = "bastion",
    ) -> None:
        self.remind_every = remind_every
        self.escalate_after = escalate_after
        self.escalate_min = escalate_min
        self.flap_count = flap_count
        self.flap_window = flap_window
        self.parents = frozenset(parents)
        self.system = system
        self._maintenance: list[tuple[float, float]] = []
        for start, end in maintenance:
            self.add_maintenance(start, end)
        self._alerts: dict[str, Alert] = {}
        self._open_parents: dict[str, set[str]] = {}
        self._outbox: list[Notification] = []
        self._latest = float("-inf")  # the latest moment any call was given

    def add_maintenance(self, start: float, end: float) -> None:
        if end <= start:
            raise ValueError("a maintenance window ends after it starts")
        self._maintenance.append((start, end))
        self._maintenance.sort()

    def get(self, key: str) -> Alert | None:
        return self._alerts.get(key)

    def active(self) -> list[Alert]:
        """Alerts that are not resolved."""
        return [alert for alert in self._alerts.values() if alert.state is not AlertState.RESOLVED]

    def _in_maintenance(self, at: float) -> bool:
        return any(start <= at < end for start, end in self._maintenance)

    def _after_maintenance(self, at: float) -> float:
        """The first moment at or after `at` outside every maintenance window."""
        for start, end in self._maintenance:
            if start <= at < end:
                at = end
        return at

    def _dependency(self, alert: Alert) -> str:
        """The open parent (health) alert that holds this alert, or ""."""
        if alert.detector in self.parents or not alert.server:
            return ""
        parents = self._open_parents.get(alert.server)
        return min(parents) if parents else ""

    def _held(self, alert: Alert, now: float) -> str:
        if alert.flapping:
            return "flapping"
        if self._in_maintenance(now):
            return "maintenance"
        parent = self._dependency(alert)
        return f"dependency:{parent}" if parent else ""

    def _change(
        self, alert: Alert, old: AlertState | None, at: float, by: str, note: str, reason: str, held: str = ""
    ) -> AlertChange:
        return AlertChange(alert.key, old, alert.state, at, by, note, reason, alert.detector, alert.severity, held)

    def apply(self, signal: Signal, now: float) -> AlertChange | None:
        """Raise the signal, or resolve its alert if it is a recovery."""
        if signal.recovery:
            return self.auto_resolve(signal.key, now, signal.summary)
        return self.raise_(signal, now)

    def raise_(self, signal: Signal, now: float) -> AlertChange | None:
        self._latest = max(self._latest, now)
        alert = self._alerts.get(signal.key)
        if alert is not None and alert.state is not AlertState.RESOLVED:
            alert.count += 1
            alert.last_seen = now
            alert.summary, alert.details = signal.summary, signal.details
            if signal.severity.rank > alert.severity.rank:
                alert.severity = signal.severity
                if alert.notified_at is not None and alert.state is AlertState.OPEN:
                    alert.next_reminder = now
            return None
        old = None if alert is None else alert.state
        fresh = Alert(signal.key, signal.detector, signal.server, signal.severity, signal.summary, signal.details)
        fresh.opened_at = fresh.last_seen = now
        fresh.opens = deque([] if alert is None else alert.opens, maxlen=self.flap_count + 1)
        fresh.flapping, fresh.flap_noticed = (False, False) if alert is None else (alert.flapping, alert.flap_noticed)
        alert = self._alerts[signal.key] = fresh
        alert.last_change = now
        alert.opens.append(now)
        while alert.opens[0] <= now - self.flap_window:
            alert.opens.popleft()
        if alert.detector in self.parents and alert.server:
            self._open_parents.setdefault(alert.server, set()).add(alert.key)
        if not alert.flapping and len(alert.opens) > self.flap_count:
            held, alert.flapping = self._held(alert, now), True
            if not held:
                alert.flap_noticed = True
                summary = f"{alert.key} is flapping: opened {len(alert.opens)} times in {self.flap_window:g} s"
                self._send(NotificationKind.FLAPPING, alert, Channel.PRIMARY, summary, now)
        return self._change(alert, old, now, self.system, "", signal.summary, self._held(alert, now))

    def ack(self, key: str, by: str, note: str, now: float) -> AlertChange | None:
        self._latest = max(self._latest, now)
        alert = self._alerts.get(key)
        if alert is None or alert.state not in (AlertState.OPEN, AlertState.SNOOZED):
            return None
        old, alert.state, alert.snoozed_until = alert.state, AlertState.ACKNOWLEDGED, None
        return self._change(alert, old, now, by, note, f"acknowledged by {by}")

    def snooze(self, key: str, until: float, by: str, note: str, now: float) -> AlertChange | None:
        self._latest = max(self._latest, now)
        alert = self._alerts.get(key)
        if alert is None or until <= now or alert.state not in (AlertState.OPEN, AlertState.ACKNOWLEDGED):
            return None
        old, alert.state, alert.snoozed_until = alert.state, AlertState.SNOOZED, until
        if alert.notified_at is not None:
            alert.next_reminder = until
        return self._change(alert, old, now, by, note, f"snoozed by {by} until {until:.0f}")

    def resolve(self, key: str, by: str, note: str, now: float) -> AlertChange | None:
        return self._resolve(key, now, by, note, f"resolved by {by}")

    def auto_resolve(self, key: str, now: float, reason: str = "recovered") -> AlertChange | None:
        return self._resolve(key, now, self.system, "", reason)

    def _resolve(self, key: str, now: float, by: str, note: str, reason: str) -> AlertChange | None:
        self._latest = max(self._latest, now)
        alert = self._alerts.get(key)
        if alert is None or alert.state is AlertState.RESOLVED:
            return None
        old, alert.state, alert.last_change = alert.state, AlertState.RESOLVED, now
        alert.snoozed_until = alert.next_reminder = None
        if alert.server in self._open_parents:
            parents = self._open_parents[alert.server]
            parents.discard(key)
            if not parents:
                del self._open_parents[alert.server]
        if alert.notified_at is not None and not alert.flapping:
            self._send(NotificationKind.RESOLVED, alert, Channel.PRIMARY, f"resolved: {reason}", now)
            if alert.escalated:
                self._send(NotificationKind.RESOLVED, alert, Channel.SECONDARY, f"resolved: {reason}", now)
        return self._change(alert, old, now, by, note, reason)

    def tick(self, now: float) -> list[AlertChange]:
        """End snoozes that are over; forget resolved alerts that can no longer flap."""
        self._latest = max(self._latest, now)
        changes: list[AlertChange] = []
        for key, alert in list(self._alerts.items()):
            if alert.state is AlertState.SNOOZED and alert.snoozed_until is not None and alert.snoozed_until <= now:
                at, alert.state, alert.snoozed_until = alert.snoozed_until, AlertState.OPEN, None
                changes.append(self._change(alert, AlertState.SNOOZED, at, self.system, "", "snooze ended"))
            elif (
                alert.state is AlertState.RESOLVED
                and not alert.flapping
                and alert.last_change + self.flap_window <= now
            ):
                del self._alerts[key]
        return changes

    def _send(self, kind: NotificationKind, alert: Alert, channel: Channel, summary: str, at: float) -> None:
        self._outbox.append(Notification(kind, alert.key, channel, summary, at, alert.severity))

    def due(self, now: float) -> list[Notification]:
        """Notifications due by `now`, each returned once."""
        self._latest = max(self._latest, now)
        for alert in self._alerts.values():
            if alert.flapping and alert.last_change + self.flap_window <= now:
                if alert.state is AlertState.RESOLVED and alert.flap_noticed:
                    self._send(NotificationKind.RESOLVED, alert, Channel.PRIMARY, "stable again: resolved", now)
                alert.flapping = alert.flap_noticed = False
                alert.opens.clear()
            if alert.state in (AlertState.RESOLVED, AlertState.ACKNOWLEDGED) or self._held(alert, now):
                continue
            if alert.snoozed_until is not None and now < alert.snoozed_until:
                continue
            if alert.notified_at is None:
                alert.notified_at = now
                alert.next_reminder = None if self.remind_every is None else now + self.remind_every
                self._send(NotificationKind.ALERT, alert, Channel.PRIMARY, alert.summary, now)
            elif alert.next_reminder is not None and alert.next_reminder <= now:
                alert.next_reminder = None if self.remind_every is None else now + self.remind_every
                self._send(NotificationKind.REMINDER, alert, Channel.PRIMARY, f"still open: {alert.summary}", now)
            escalate_at = self._escalate_at(alert)
            if escalate_at is not None and escalate_at <= now:
                alert.escalated = True
                self._send(NotificationKind.ESCALATION, alert, Channel.SECONDARY, alert.summary, now)
        due = [n for n in self._outbox if n.at <= now]
        self._outbox = [n for n in self._outbox if n.at > now]
        return due

    def _escalate_at(self, alert: Alert) -> float | None:
        if (
            self.escalate_after is None
            or alert.escalated
            or alert.notified_at is None
            or alert.severity.rank < self.escalate_min.rank
        ):
            return None
        return alert.notified_at + self.escalate_after

    def next_deadline(self) -> float | None:
        """When `tick`/`due` next have something to do; None if only a new event can cause it."""
        deadlines = [n.at for n in self._outbox]
        for alert in self._alerts.values():
            if alert.flapping:
                deadlines.append(alert.last_change + self.flap_window)
                continue
            if alert.state in (AlertState.RESOLVED, AlertState.ACKNOWLEDGED):
                continue
            if alert.snoozed_until is not None:
                deadlines.append(alert.snoozed_until)
            if self._dependency(alert):
                continue
            if alert.notified_at is None:
                at: float | None = alert.opened_at
            else:
                candidates = [t for t in (alert.next_reminder, self._escalate_at(alert)) if t is not None]
                at = min(candidates, default=None)
            if at is not None:
                if alert.snoozed_until is not None:
                    at = max(at, alert.snoozed_until)
                deadlines.append(self._after_maintenance(max(at, self._latest)))
        return min(deadlines, default=None)
