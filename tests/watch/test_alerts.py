"""The alert lifecycle: dedup, reminders, escalation, snooze, maintenance, dependencies, flapping, triage."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bastion.watch.alerts import AlertChange, Alerts, AlertState, Channel, Notification, NotificationKind
from bastion.watch.events import Severity, Signal

T0 = 1_700_000_000.0
ERRORS = "error_rate:server=fs,tool=write_file"
HEALTH = "health:server=fs"


def signal(
    key: str = ERRORS,
    *,
    at: float = T0,
    severity: Severity = Severity.WARNING,
    server: str = "fs",
    recovery: bool = False,
) -> Signal:
    detector = key.split(":", 1)[0]
    return Signal(detector, key, severity, f"{key} fired", at, {"n": 1}, server, recovery)


def kinds(notifications: list[Notification]) -> list[tuple[NotificationKind, str, Channel]]:
    return [(n.kind, n.alert_key, n.channel) for n in notifications]


def test_a_signal_opens_an_alert_and_it_is_notified_once() -> None:
    alerts = Alerts()
    change = alerts.raise_(signal(), T0)
    assert change == AlertChange(
        ERRORS, None, AlertState.OPEN, T0, "bastion", "", f"{ERRORS} fired", "error_rate", Severity.WARNING
    )
    assert alerts.next_deadline() == T0
    assert kinds(alerts.due(T0)) == [(NotificationKind.ALERT, ERRORS, Channel.PRIMARY)]
    assert alerts.due(T0) == []


def test_an_open_alert_is_deduplicated_by_key() -> None:
    alerts = Alerts()
    alerts.raise_(signal(), T0)
    alerts.due(T0)
    assert alerts.raise_(signal(), T0 + 10) is None
    assert alerts.raise_(signal(), T0 + 20) is None
    alert = alerts.get(ERRORS)
    assert alert is not None
    assert (alert.count, alert.last_seen, alert.opened_at) == (3, T0 + 20, T0)
    assert alerts.due(T0 + 30) == []


def test_a_higher_severity_updates_the_alert_and_reminds_at_once() -> None:
    alerts = Alerts()
    alerts.raise_(signal(), T0)
    alerts.due(T0)
    alerts.raise_(signal(severity=Severity.CRITICAL), T0 + 10)
    assert kinds(alerts.due(T0 + 10)) == [(NotificationKind.REMINDER, ERRORS, Channel.PRIMARY)]
    alert = alerts.get(ERRORS)
    assert alert is not None
    assert alert.severity is Severity.CRITICAL


def test_reminders_repeat_while_the_alert_stays_open() -> None:
    alerts = Alerts(remind_every=3600, escalate_after=None)
    alerts.raise_(signal(), T0)
    alerts.due(T0)
    assert alerts.next_deadline() == T0 + 3600
    assert alerts.due(T0 + 3599) == []
    assert kinds(alerts.due(T0 + 3600)) == [(NotificationKind.REMINDER, ERRORS, Channel.PRIMARY)]
    assert kinds(alerts.due(T0 + 7200)) == [(NotificationKind.REMINDER, ERRORS, Channel.PRIMARY)]


def test_escalation_goes_to_the_second_channel_once() -> None:
    alerts = Alerts(remind_every=None, escalate_after=1800)
    alerts.raise_(signal(), T0)
    alerts.due(T0)
    assert alerts.next_deadline() == T0 + 1800
    assert kinds(alerts.due(T0 + 1800)) == [(NotificationKind.ESCALATION, ERRORS, Channel.SECONDARY)]
    assert alerts.next_deadline() is None
    assert alerts.due(T0 + 100_000) == []


def test_info_alerts_do_not_escalate_by_default() -> None:
    alerts = Alerts(remind_every=None, escalate_after=60)
    alerts.raise_(signal(severity=Severity.INFO), T0)
    alerts.due(T0)
    assert alerts.due(T0 + 3600) == []


def test_an_acknowledged_alert_stops_reminding_and_escalating() -> None:
    alerts = Alerts(remind_every=600, escalate_after=1800)
    alerts.raise_(signal(), T0)
    alerts.due(T0)
    ack = alerts.ack(ERRORS, "alice", "looking into the disk", T0 + 60)
    assert ack is not None
    assert (ack.old, ack.new, ack.by, ack.note, ack.at) == (
        AlertState.OPEN,
        AlertState.ACKNOWLEDGED,
        "alice",
        "looking into the disk",
        T0 + 60,
    )
    assert alerts.next_deadline() is None
    assert alerts.due(T0 + 10_000) == []
    assert alerts.ack(ERRORS, "bob", "", T0 + 70) is None, "already acknowledged"


def test_resolve_records_who_and_why_and_notifies_both_channels_after_escalation() -> None:
    alerts = Alerts(remind_every=None, escalate_after=60)
    alerts.raise_(signal(), T0)
    alerts.due(T0)
    alerts.due(T0 + 60)
    change = alerts.resolve(ERRORS, "alice", "disk replaced", T0 + 120)
    assert change is not None
    assert (change.old, change.new, change.by, change.note) == (
        AlertState.OPEN,
        AlertState.RESOLVED,
        "alice",
        "disk replaced",
    )
    assert kinds(alerts.due(T0 + 120)) == [
        (NotificationKind.RESOLVED, ERRORS, Channel.PRIMARY),
        (NotificationKind.RESOLVED, ERRORS, Channel.SECONDARY),
    ]
    assert alerts.resolve(ERRORS, "bob", "", T0 + 130) is None
    assert alerts.active() == []


def test_a_recovery_signal_auto_resolves_and_a_new_signal_reopens() -> None:
    alerts = Alerts()
    alerts.apply(signal(), T0)
    alerts.due(T0)
    resolved = alerts.apply(signal(recovery=True), T0 + 60)
    assert resolved is not None
    assert (resolved.new, resolved.by) == (AlertState.RESOLVED, "bastion")
    reopened = alerts.apply(signal(), T0 + 120)
    assert reopened is not None
    assert (reopened.old, reopened.new) == (AlertState.RESOLVED, AlertState.OPEN)
    assert [n.kind for n in alerts.due(T0 + 120)] == [NotificationKind.RESOLVED, NotificationKind.ALERT]


def test_a_resolved_alert_that_was_never_notified_sends_nothing() -> None:
    alerts = Alerts()
    alerts.raise_(signal(), T0)
    alerts.auto_resolve(ERRORS, T0 + 1)
    assert alerts.due(T0 + 1) == []


def test_a_snoozed_alert_is_quiet_until_the_snooze_ends() -> None:
    alerts = Alerts(remind_every=600, escalate_after=None)
    alerts.raise_(signal(), T0)
    alerts.due(T0)
    snoozed = alerts.snooze(ERRORS, T0 + 3600, "alice", "known, fix deploying", T0 + 10)
    assert snoozed is not None
    assert (snoozed.new, snoozed.by, snoozed.note) == (AlertState.SNOOZED, "alice", "known, fix deploying")
    assert alerts.due(T0 + 3599) == []
    assert alerts.tick(T0 + 3599) == []
    assert alerts.next_deadline() == T0 + 3600
    [ended] = alerts.tick(T0 + 3600)
    assert (ended.old, ended.new, ended.at, ended.reason) == (
        AlertState.SNOOZED,
        AlertState.OPEN,
        T0 + 3600,
        "snooze ended",
    )
    assert kinds(alerts.due(T0 + 3600)) == [(NotificationKind.REMINDER, ERRORS, Channel.PRIMARY)]


def test_a_snooze_in_the_past_changes_nothing() -> None:
    alerts = Alerts()
    alerts.raise_(signal(), T0)
    assert alerts.snooze(ERRORS, T0 - 1, "alice", "", T0) is None


def test_alerts_in_a_maintenance_window_are_recorded_and_notified_only_if_still_open_after_it() -> None:
    alerts = Alerts(maintenance=[(T0, T0 + 3600)])
    change = alerts.raise_(signal(), T0 + 10)
    assert change is not None
    assert change.held == "maintenance"
    assert alerts.due(T0 + 10) == []
    assert alerts.next_deadline() == T0 + 3600
    assert kinds(alerts.due(T0 + 3600)) == [(NotificationKind.ALERT, ERRORS, Channel.PRIMARY)]


def test_an_alert_resolved_within_maintenance_is_never_notified() -> None:
    alerts = Alerts(maintenance=[(T0, T0 + 3600)])
    alerts.raise_(signal(HEALTH), T0 + 10)
    alerts.auto_resolve(HEALTH, T0 + 100)
    assert alerts.next_deadline() is None
    assert alerts.due(T0 + 3600) == []


def test_a_server_that_is_down_silences_alerts_about_its_tools() -> None:
    alerts = Alerts()
    alerts.raise_(signal(HEALTH, severity=Severity.CRITICAL), T0)
    child = alerts.raise_(signal(ERRORS), T0 + 5)
    other = alerts.raise_(signal("error_rate:server=git,tool=log", server="git"), T0 + 5)
    assert child is not None
    assert child.held == "dependency:health:server=fs"
    assert other is not None
    assert other.held == ""
    assert kinds(alerts.due(T0 + 5)) == [
        (NotificationKind.ALERT, HEALTH, Channel.PRIMARY),
        (NotificationKind.ALERT, "error_rate:server=git,tool=log", Channel.PRIMARY),
    ]
    alerts.auto_resolve(HEALTH, T0 + 60)
    assert alerts.next_deadline() == T0 + 60, "the held alert is due as soon as its server is back"
    assert kinds(alerts.due(T0 + 60)) == [
        (NotificationKind.RESOLVED, HEALTH, Channel.PRIMARY),
        (NotificationKind.ALERT, ERRORS, Channel.PRIMARY),
    ]


def test_a_tool_alert_that_recovers_with_its_server_is_never_notified() -> None:
    alerts = Alerts()
    alerts.raise_(signal(HEALTH), T0)
    alerts.raise_(signal(ERRORS), T0 + 5)
    alerts.due(T0 + 5)
    alerts.auto_resolve(ERRORS, T0 + 50)
    alerts.auto_resolve(HEALTH, T0 + 60)
    assert [n.alert_key for n in alerts.due(T0 + 60)] == [HEALTH]


def test_a_flapping_alert_is_announced_once_then_quiet_until_stable() -> None:
    alerts = Alerts(flap_count=3, flap_window=3600, remind_every=None, escalate_after=None)
    sent: list[Notification] = []
    at = T0
    for _ in range(6):
        alerts.raise_(signal(), at)
        sent += alerts.due(at)
        alerts.auto_resolve(ERRORS, at + 60)
        sent += alerts.due(at + 60)
        at += 300
    assert [n.kind for n in sent] == [NotificationKind.ALERT, NotificationKind.RESOLVED] * 3 + [
        NotificationKind.FLAPPING
    ]
    last_change = at - 300 + 60
    assert alerts.next_deadline() == last_change + 3600
    assert alerts.due(last_change + 3599) == []
    assert kinds(alerts.due(last_change + 3600)) == [(NotificationKind.RESOLVED, ERRORS, Channel.PRIMARY)]
    alerts.raise_(signal(), last_change + 4000)
    assert [n.kind for n in alerts.due(last_change + 4000)] == [NotificationKind.ALERT], "stable: notified again"


def test_resolved_alerts_are_forgotten_once_they_can_no_longer_flap() -> None:
    alerts = Alerts(flap_window=3600)
    alerts.raise_(signal(), T0)
    alerts.auto_resolve(ERRORS, T0 + 1)
    alerts.tick(T0 + 3600)
    assert alerts.get(ERRORS) is not None
    alerts.tick(T0 + 3601)
    assert alerts.get(ERRORS) is None


def test_triage_of_an_unknown_alert_changes_nothing() -> None:
    alerts = Alerts()
    assert alerts.ack("nope", "alice", "", T0) is None
    assert alerts.resolve("nope", "alice", "", T0) is None
    assert alerts.snooze("nope", T0 + 1, "alice", "", T0) is None
    assert alerts.auto_resolve("nope", T0) is None


KEYS = [ERRORS, HEALTH, "volume:client=c"]
OPS = st.tuples(
    st.sampled_from(["raise", "recover", "ack", "resolve", "snooze", "tick"]),
    st.sampled_from(KEYS),
    st.floats(0, 2000),
)


@given(st.lists(OPS, max_size=50), st.booleans())
def test_after_a_tick_and_due_no_deadline_is_in_the_past(ops: list[tuple[str, str, float]], maintenance: bool) -> None:
    alerts = Alerts(remind_every=900, escalate_after=1200, flap_count=2, flap_window=3000)
    if maintenance:
        alerts.add_maintenance(T0 + 1000, T0 + 4000)
    now = T0
    for op, key, step in ops:
        now += step
        changes: list[AlertChange | None] = []
        server = "" if key.startswith("volume") else "fs"
        if op == "raise":
            changes.append(alerts.raise_(signal(key, server=server), now))
        elif op == "recover":
            changes.append(alerts.apply(signal(key, server=server, recovery=True), now))
        elif op == "ack":
            changes.append(alerts.ack(key, "alice", "on it", now))
        elif op == "resolve":
            changes.append(alerts.resolve(key, "alice", "fixed", now))
        elif op == "snooze":
            changes.append(alerts.snooze(key, now + 500, "alice", "later", now))
        else:
            changes += alerts.tick(now)
            for notification in alerts.due(now):
                assert notification.at <= now
            deadline = alerts.next_deadline()
            assert deadline is None or deadline > now
        for change in changes:
            if change is not None:
                assert change.old is not change.new
                assert change.by
                assert change.reason
