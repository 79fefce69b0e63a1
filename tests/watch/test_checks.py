"""Silence checks: period, cron in a time zone, learned cadence; runs; pauses; the deadline heap."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.errors import ConfigError
from bastion.watch.checks import Check, Checks, CheckStatus, Flip, PingKind, silence_signal
from bastion.watch.events import Severity

BERLIN = ZoneInfo("Europe/Berlin")
T0 = 1_700_000_000.0


def berlin(*parts: int) -> float:
    return datetime(*parts, tzinfo=BERLIN).timestamp()  # pyright: ignore[reportArgumentType]


def run_until_quiet(check: Check, limit: float) -> list[Flip]:
    """A scheduler loop: wake at the next deadline, tick, repeat."""
    flips: list[Flip] = []
    while (deadline := check.next_deadline()) is not None and deadline <= limit:
        flip = check.tick(deadline)
        if flip is not None:
            flips.append(flip)
    return flips


def test_a_new_check_waits_for_its_first_ping() -> None:
    check = Check("backup", period=3600)
    assert check.status is CheckStatus.NEW
    assert check.next_deadline() is None
    assert check.tick(T0 + 10**6) is None


def test_a_missed_cron_run_flips_down_within_grace_plus_five_seconds() -> None:
    check = Check("sync", cron="*/5 * * * *", tz="Europe/Berlin", grace=60)
    ping_at = berlin(2025, 6, 2, 12, 5, 2)
    flip = check.ping(PingKind.SUCCESS, ping_at)
    assert flip == Flip("sync", CheckStatus.NEW, CheckStatus.UP, ping_at, "success ping")
    due = berlin(2025, 6, 2, 12, 10)
    assert check.due_at == due
    assert check.next_deadline() == due

    flips = run_until_quiet(check, due + 3600)

    assert [(f.old, f.new) for f in flips] == [
        (CheckStatus.UP, CheckStatus.GRACE),
        (CheckStatus.GRACE, CheckStatus.DOWN),
    ]
    assert flips[0].at == due
    assert flips[1].at - due <= 60 + 5
    assert check.alert_after == due + 60
    assert "10:05:02" in flips[1].reason, "the last ping, in UTC"


def test_a_ping_recovers_a_down_check() -> None:
    check = Check("sync", cron="*/5 * * * *", tz="Europe/Berlin", grace=60)
    check.ping(PingKind.SUCCESS, berlin(2025, 6, 2, 12, 5, 2))
    run_until_quiet(check, berlin(2025, 6, 2, 13))
    assert check.status is CheckStatus.DOWN
    assert check.next_deadline() is None, "down stays down until a ping"

    late = berlin(2025, 6, 2, 13, 0, 30)
    flip = check.ping(PingKind.SUCCESS, late)

    assert flip is not None
    assert (flip.old, flip.new, flip.at) == (CheckStatus.DOWN, CheckStatus.UP, late)
    assert check.next_deadline() == berlin(2025, 6, 2, 13, 5)


def test_a_late_tick_flips_straight_to_down_at_the_moment_it_went_down() -> None:
    check = Check("backup", period=3600, grace=300)
    check.ping("success", T0)
    flip = check.tick(T0 + 10 * 3600)
    assert flip is not None
    assert (flip.old, flip.new, flip.at) == (CheckStatus.UP, CheckStatus.DOWN, T0 + 3600 + 300)


def test_cron_is_read_in_its_time_zone_across_daylight_saving() -> None:
    check = Check("report", cron="0 9 * * *", tz="Europe/Berlin", grace=600)
    check.ping(PingKind.SUCCESS, berlin(2025, 3, 29, 9, 0, 3))  # CET, UTC+1
    assert check.due_at == datetime(2025, 3, 30, 7, 0, tzinfo=UTC).timestamp()  # CEST, UTC+2
    assert check.due_at == berlin(2025, 3, 30, 9)


def test_start_then_fail_flips_down_and_measures_the_run() -> None:
    check = Check("etl", period=3600)
    check.ping(PingKind.SUCCESS, T0)
    started = check.ping(PingKind.START, T0 + 3590, run_id="r1")
    assert started is not None
    assert started.new is CheckStatus.STARTED
    failed = check.ping(PingKind.FAIL, T0 + 3620, run_id="r1")
    assert failed is not None
    assert (failed.old, failed.new) == (CheckStatus.STARTED, CheckStatus.DOWN)
    assert "fail ping" in failed.reason
    assert check.last_duration == 30


def test_start_then_success_gives_the_duration_and_stays_up() -> None:
    check = Check("etl", period=3600)
    check.ping(PingKind.START, T0)
    flip = check.ping(PingKind.SUCCESS, T0 + 42.5)
    assert flip is not None
    assert (flip.old, flip.new) == (CheckStatus.STARTED, CheckStatus.UP)
    assert check.last_duration == 42.5
    assert check.next_deadline() == T0 + 42.5 + 3600


def test_a_run_that_never_ends_goes_down_after_max_runtime() -> None:
    check = Check("etl", period=3600, grace=60, max_runtime=900)
    check.ping(PingKind.START, T0, run_id="a")
    assert check.next_deadline() == T0 + 900
    flip = check.tick(T0 + 900)
    assert flip is not None
    assert flip.new is CheckStatus.DOWN
    assert "did not end within 900 s" in flip.reason
    assert check.ping(PingKind.SUCCESS, T0 + 1000, run_id="a") is not None
    assert check.last_duration == 1000, "a late end still measures its run"


def test_a_learned_cadence_needs_five_pings_then_catches_a_missed_run() -> None:
    check = Check("agent", grace=120)
    at = T0
    for run, jitter in enumerate((0, 3, -2, 5, 1)):
        at = T0 + run * 600 + jitter
        assert check.next_deadline() is None
        check.ping(PingKind.SUCCESS, at)
    assert check.cadence() == pytest.approx(600, abs=5)
    due = check.next_deadline()
    assert due == pytest.approx(at + 600, abs=5)
    flips = run_until_quiet(check, at + 10_000)
    assert flips[-1].new is CheckStatus.DOWN
    assert flips[-1].at == pytest.approx(at + 600 + 120, abs=5)


def test_a_paused_check_does_not_go_down_and_a_ping_resumes_it() -> None:
    check = Check("backup", period=3600)
    check.ping(PingKind.SUCCESS, T0)
    paused = check.pause(T0 + 10, reason="migrating the backup host")
    assert paused is not None
    assert paused.new is CheckStatus.PAUSED
    assert "migrating" in paused.reason
    assert check.next_deadline() is None
    assert check.tick(T0 + 10**6) is None
    resumed = check.ping(PingKind.SUCCESS, T0 + 10**6)
    assert resumed is not None
    assert (resumed.old, resumed.new) == (CheckStatus.PAUSED, CheckStatus.UP)


def test_a_snooze_ends_at_its_time_and_the_cadence_restarts_from_then() -> None:
    check = Check("backup", period=3600, grace=60)
    check.ping(PingKind.SUCCESS, T0)
    check.pause(T0 + 10, until=T0 + 7200)
    assert check.next_deadline() == T0 + 7200
    flip = check.tick(T0 + 7200)
    assert flip is not None
    assert (flip.old, flip.new, flip.reason) == (CheckStatus.PAUSED, CheckStatus.UP, "pause ended")
    assert check.next_deadline() == T0 + 7200 + 3600


def test_resume_ends_a_pause_now() -> None:
    check = Check("backup", period=3600)
    check.pause(T0)
    flip = check.resume(T0 + 5)
    assert flip is not None
    assert flip.new is CheckStatus.NEW, "never pinged"


@pytest.mark.parametrize(
    ("kwargs", "where"),
    [
        ({"period": 60, "cron": "* * * * *"}, "checks.x"),
        ({"period": 0}, "checks.x.period"),
        ({"cron": "not a cron"}, "checks.x.cron"),
        ({"cron": "0 0 30 2 *"}, "checks.x.cron"),
        ({"cron": "* * * * *", "tz": "Mars/Olympus"}, "checks.x.tz"),
        ({"period": 60, "grace": -1}, "checks.x.grace"),
    ],
)
def test_an_invalid_expectation_is_a_config_error_naming_the_field(kwargs: dict[str, object], where: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Check("x", **kwargs)  # pyright: ignore[reportArgumentType]
    assert [p.location for p in raised.value.problems] == [where]


def test_checks_wake_only_for_what_is_due_in_deadline_order() -> None:
    checks = Checks([Check("hourly", period=3600, grace=60), Check("minutely", period=60, grace=10)])
    assert checks.next_deadline() is None
    checks.ping("hourly", PingKind.SUCCESS, T0)
    checks.ping("minutely", PingKind.SUCCESS, T0)
    assert checks.next_deadline() == T0 + 60
    flips = checks.tick(T0 + 3600 + 60)
    assert [(f.check, f.new) for f in flips] == [("minutely", CheckStatus.DOWN), ("hourly", CheckStatus.DOWN)]
    assert checks.next_deadline() is None


def test_the_heap_stays_small_under_many_pings() -> None:
    checks = Checks([Check("busy", period=86_400)])
    for i in range(10_000):
        checks.ping("busy", PingKind.SUCCESS, T0 + i)
    assert len(checks._heap) <= 2 * len(checks) + 65  # pyright: ignore[reportPrivateUsage]
    assert checks.next_deadline() == T0 + 9_999 + 86_400


def test_a_removed_check_is_not_ticked() -> None:
    checks = Checks([Check("gone", period=60)])
    checks.ping("gone", PingKind.SUCCESS, T0)
    checks.remove("gone")
    assert checks.next_deadline() is None
    assert checks.tick(T0 + 1000) == []


def test_flips_become_silence_signals_down_and_its_recovery() -> None:
    down = silence_signal(Flip("nightly", CheckStatus.GRACE, CheckStatus.DOWN, T0, "no ping"))
    up = silence_signal(Flip("nightly", CheckStatus.DOWN, CheckStatus.UP, T0 + 1, "success ping"))
    assert down is not None
    assert down.severity is Severity.CRITICAL
    assert down.key == "silence:check=nightly"
    assert up is not None
    assert up.recovery
    assert silence_signal(Flip("nightly", CheckStatus.UP, CheckStatus.GRACE, T0, "late")) is None
    assert silence_signal(Flip("nightly", CheckStatus.DOWN, CheckStatus.PAUSED, T0, "paused")) is None


Op = tuple[str, float]
OPS = st.tuples(
    st.sampled_from(["success", "start", "fail", "tick", "pause", "pause_until", "resume"]), st.floats(0, 500)
)


@given(st.lists(OPS, max_size=40), st.sampled_from([{"period": 300.0}, {"cron": "*/5 * * * *"}, {}]))
def test_no_deadline_is_in_the_past_after_a_tick_and_no_flip_lacks_a_reason(
    ops: list[Op], expectation: dict[str, object]
) -> None:
    check = Check("c", grace=30, **expectation)  # pyright: ignore[reportArgumentType]
    checks = Checks([Check("c2", grace=30, **expectation)])  # pyright: ignore[reportArgumentType]
    now = T0
    for op, step in ops:
        now += step
        for flip in _apply(check, op, now) + _apply_all(checks, op, now):
            assert flip.old is not flip.new
            assert flip.reason
            assert flip.at <= now
        if op == "tick":
            for deadline in (check.next_deadline(), checks.next_deadline()):
                assert deadline is None or deadline > now


def _apply(check: Check, op: str, now: float) -> list[Flip]:
    if op == "tick":
        flip = check.tick(now)
    elif op == "pause":
        flip = check.pause(now)
    elif op == "pause_until":
        flip = check.pause(now, until=now + 100)
    elif op == "resume":
        flip = check.resume(now)
    else:
        check.tick(now)
        flip = check.ping(op, now)
    return [] if flip is None else [flip]


def _apply_all(checks: Checks, op: str, now: float) -> list[Flip]:
    if op == "tick":
        return checks.tick(now)
    flips = checks.tick(now)
    if op == "pause":
        flip = checks.pause("c2", now)
    elif op == "pause_until":
        flip = checks.pause("c2", now, until=now + 100)
    elif op == "resume":
        flip = checks.resume("c2", now)
    else:
        flip = checks.ping("c2", op, now)
    return flips + ([] if flip is None else [flip])
