"""Watch: pure detectors over calls, server events and time, and the alert lifecycle.

    events     CallEvent, Signal, Severity: what detectors read and write
    detectors  FirstUse, definition drift, ErrorRate (k of n), Health (down, restart loop, latency)
    volume     VolumeDetector (seasonal calls per window), TooFrequent (schedules run too often)
    checks     Check, Checks: silence on a period, cron or learned cadence (healthchecks.io's model)
    alerts     Alerts: dedup, reminders, escalation, snooze, maintenance, dependencies, flapping

Nothing here reads a clock or does I/O: time comes in as float seconds since the epoch, and a
scheduler at the edge wakes at the `next_deadline()` each part reports.
"""

from __future__ import annotations

from bastion.watch.alerts import Alert, AlertChange, Alerts, AlertState, Channel, Notification, NotificationKind
from bastion.watch.checks import Check, Checks, CheckStatus, Flip, PingKind, silence_signal
from bastion.watch.detectors import ErrorRate, FirstUse, Health, definition_drift, new_server, version_changed
from bastion.watch.events import CallEvent, Severity, Signal, severity_for_risk, signal_key
from bastion.watch.volume import TooFrequent, VolumeDetector

__all__ = [
    "Alert",
    "AlertChange",
    "AlertState",
    "Alerts",
    "CallEvent",
    "Channel",
    "Check",
    "CheckStatus",
    "Checks",
    "ErrorRate",
    "FirstUse",
    "Flip",
    "Health",
    "Notification",
    "NotificationKind",
    "PingKind",
    "Severity",
    "Signal",
    "TooFrequent",
    "VolumeDetector",
    "definition_drift",
    "new_server",
    "severity_for_risk",
    "signal_key",
    "silence_signal",
    "version_changed",
]
