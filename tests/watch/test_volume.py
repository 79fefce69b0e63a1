"""Volume: a seasonal baseline per series that stays quiet on normal traffic and at night, and
alerts on a burst within two windows; schedules that run too often."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from bastion.watch.events import CallEvent, Severity, Signal
from bastion.watch.volume import TooFrequent, VolumeDetector

BERLIN = ZoneInfo("Europe/Berlin")
WINDOW = 300.0
HOUR = 3600.0
DAY = 86_400.0
WEEK = 7 * DAY
# A Monday, midnight in Berlin; the four weeks from here cross the switch to summer time (2025-03-30).
START = datetime(2025, 3, 10, tzinfo=BERLIN).timestamp()

Rate = Callable[[float], float]


def business_hours(at: float) -> float:
    """Calls per hour: 200 from 9 to 17 on weekdays (Berlin time), 5 at night and at weekends."""
    local = datetime.fromtimestamp(at, BERLIN)
    return 200.0 if local.weekday() < 5 and 9 <= local.hour < 17 else 5.0


def poisson(rng: random.Random, lam: float) -> int:
    """Knuth's method: fine for the small means of one window."""
    limit, count, product = math.exp(-lam), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def drive(
    detector: VolumeDetector, start: float, end: float, rate: Rate, rng: random.Random, key: str = "server=fs"
) -> list[Signal]:
    """Traffic at `rate` from `start` to `end`, closing each window as the timer would."""
    signals: list[Signal] = []
    at = start
    while at < end:
        for _ in range(poisson(rng, rate(at) * WINDOW / HOUR)):
            detector.observe(key, at + rng.random() * WINDOW)
        at += WINDOW
        signals += detector.close_windows(at)
    return signals


def learned(weeks: int = 2, seed: int = 7) -> tuple[VolumeDetector, random.Random]:
    detector = VolumeDetector(window=WINDOW, tz="Europe/Berlin")
    rng = random.Random(seed)
    drive(detector, START, START + weeks * WEEK, business_hours, rng)
    return detector, rng


def test_four_weeks_of_normal_seasonal_traffic_raise_no_alert_after_the_first_week() -> None:
    detector = VolumeDetector(window=WINDOW, tz="Europe/Berlin")
    rng = random.Random(1)
    drive(detector, START, START + WEEK, business_hours, rng)
    assert drive(detector, START + WEEK, START + 4 * WEEK, business_hours, rng) == []


def test_the_baseline_follows_business_hours_in_local_time_across_daylight_saving() -> None:
    detector, _ = learned(weeks=4)
    # 2025-04-02 is after the switch: 10:00 Berlin is 08:00 UTC, and still a busy hour.
    busy = datetime(2025, 4, 2, 10, tzinfo=BERLIN).timestamp()
    quiet = datetime(2025, 4, 2, 3, tzinfo=BERLIN).timestamp()
    assert (detector.expected("server=fs", busy) or 0) > 10
    assert (detector.expected("server=fs", quiet) or 99) < 2


def test_a_ten_times_burst_alerts_within_two_windows() -> None:
    detector, rng = learned()
    burst = datetime(2025, 3, 26, 11, tzinfo=BERLIN).timestamp()  # a Wednesday, 11:00
    assert drive(detector, START + 2 * WEEK, burst, business_hours, rng) == []

    signals = drive(detector, burst, burst + HOUR, lambda at: 10 * business_hours(at), rng)

    assert signals
    first = signals[0]
    assert first.at <= burst + 2 * WINDOW
    assert first.key == "volume:server=fs"
    assert first.server == "fs"
    assert first.severity is Severity.WARNING
    assert not first.recovery
    assert first.details["calls"] >= 100
    assert len(signals) == 1, "one signal for the whole burst"


def test_the_end_of_a_burst_is_a_recovery_after_two_normal_windows() -> None:
    detector, rng = learned()
    burst = datetime(2025, 3, 26, 11, tzinfo=BERLIN).timestamp()
    drive(detector, START + 2 * WEEK, burst, business_hours, rng)
    drive(detector, burst, burst + HOUR, lambda at: 10 * business_hours(at), rng)

    signals = drive(detector, burst + HOUR, burst + 2 * HOUR, business_hours, rng)

    assert [s.recovery for s in signals] == [True]
    assert signals[0].at == burst + HOUR + 2 * WINDOW
    assert signals[0].key == "volume:server=fs"


def test_a_night_with_twice_its_tiny_volume_never_alerts() -> None:
    detector, rng = learned()
    night = datetime(2025, 3, 25, 0, tzinfo=BERLIN).timestamp()
    drive(detector, START + 2 * WEEK, night, business_hours, rng)
    assert drive(detector, night, night + 8 * HOUR, lambda at: 2 * business_hours(at), rng) == []


def test_a_spike_at_night_above_the_floor_alerts() -> None:
    detector, rng = learned()
    night = datetime(2025, 3, 25, 3, tzinfo=BERLIN).timestamp()
    drive(detector, START + 2 * WEEK, night, business_hours, rng)
    signals = drive(detector, night, night + HOUR, lambda _: 1200.0, rng)
    assert signals
    assert signals[0].at <= night + 2 * WINDOW


def test_a_single_window_spike_does_not_alert() -> None:
    detector, rng = learned()
    spike = datetime(2025, 3, 26, 14, tzinfo=BERLIN).timestamp()
    drive(detector, START + 2 * WEEK, spike, business_hours, rng)
    for _ in range(300):
        detector.observe("server=fs", spike + 1)
    assert detector.close_windows(spike + WINDOW) == []
    assert drive(detector, spike + WINDOW, spike + HOUR, business_hours, rng) == []


def test_nothing_alerts_before_a_bucket_has_learned() -> None:
    detector = VolumeDetector(window=WINDOW)
    at = 1_700_000_100.0 - 1_700_000_100.0 % WINDOW
    for window in range(5):
        for _ in range(500 if window >= 2 else 1):
            detector.observe("server=fs", at + window * WINDOW)
    assert detector.close_windows(at + 5 * WINDOW) == []


def test_observe_event_counts_server_tool_and_client_series() -> None:
    detector = VolumeDetector(window=WINDOW)
    at = 1_700_000_000.0
    detector.observe_event(CallEvent(at, "cursor", "fs", "read_file", "read", "ok", 1.0))
    detector.close_windows(at + WINDOW)
    assert len(detector) == 3


def test_next_deadline_is_the_end_of_the_first_open_window() -> None:
    detector = VolumeDetector(window=WINDOW)
    assert detector.next_deadline() is None
    detector.observe("client=c", 1_000_010.0)
    deadline = detector.next_deadline()
    assert deadline is not None
    assert deadline == 1_000_200.0  # 1_000_010 falls in [999_900, 1_000_200)
    assert detector.close_windows(deadline - 1) == []
    assert len(detector) == 0, "the window is still open"
    detector.close_windows(deadline)
    assert len(detector) == 1
    assert detector.next_deadline() == deadline + WINDOW


def test_calls_for_a_closed_window_are_counted_late_and_dropped() -> None:
    detector = VolumeDetector(window=WINDOW)
    detector.close_windows(1_000_200.0)
    detector.observe("client=c", 1_000_000.0)
    assert detector.late == 1


def test_series_beyond_max_series_are_dropped_and_idle_series_forgotten() -> None:
    detector = VolumeDetector(window=WINDOW, max_series=2, forget_after=3 * WINDOW)
    at = 999_900.0
    for key in ("a", "b", "c"):
        detector.observe(key, at)
    detector.close_windows(at + WINDOW)
    assert len(detector) == 2
    assert detector.dropped_series == 1
    detector.close_windows(at + 6 * WINDOW)
    assert len(detector) == 0


def test_an_alerting_series_that_goes_away_is_recovered_when_forgotten() -> None:
    detector, rng = learned()
    burst = datetime(2025, 3, 26, 11, tzinfo=BERLIN).timestamp()
    drive(detector, START + 2 * WEEK, burst, business_hours, rng)
    drive(detector, burst, burst + 2 * WINDOW, lambda at: 10 * business_hours(at), rng)
    detector.forget_after = WINDOW  # forgotten before two calm windows could recover it
    signals = detector.close_windows(burst + 2 * WINDOW + 2 * HOUR)
    assert [(s.key, s.recovery) for s in signals] == [("volume:server=fs", True)]
    assert len(detector) == 0


def test_a_long_gap_is_not_learned_as_silence() -> None:
    detector = VolumeDetector(window=WINDOW, max_catch_up=12, min_samples=1)
    at = 999_900.0
    detector.observe("a", at)
    detector.close_windows(at + WINDOW)
    now = at + 30 * DAY
    detector.close_windows(now)
    # Only the last 12 windows (one hour) of the month were learned, each as zero.
    assert detector.expected("a", now - WINDOW) == 0.0
    assert detector.expected("a", now - 3 * HOUR) is None
    assert detector.next_deadline() == now + WINDOW


@given(st.lists(st.floats(min_value=0, max_value=10 * DAY), max_size=60), st.floats(min_value=0, max_value=12 * DAY))
def test_next_deadline_is_never_in_the_past_after_closing(times: list[float], now: float) -> None:
    detector = VolumeDetector(window=WINDOW)
    for at in times:
        detector.observe("k", 1_000_000_000.0 + at)
    detector.close_windows(1_000_000_000.0 + now)
    deadline = detector.next_deadline()
    assert deadline is not None
    assert deadline > 1_000_000_000.0 + now


def test_a_scheduled_agent_running_three_times_in_one_period_is_too_frequent() -> None:
    frequent = TooFrequent()
    frequent.expect("client=nightly", period=HOUR)
    at = 1_700_000_000.0
    assert frequent.observe("client=nightly", at) is None
    assert frequent.observe("client=nightly", at + HOUR - 5) is None, "two runs in a period are jitter"
    signal = frequent.observe("client=nightly", at + HOUR + 10)
    assert signal is None, "three runs spread over more than a period are on schedule"
    signal = frequent.observe("client=nightly", at + HOUR + 20)
    assert signal is not None
    assert signal.key == "too_frequent:client=nightly"
    assert signal.at == at + HOUR + 20
    assert frequent.observe("client=nightly", at + HOUR + 30) is None, "signalled once"
    recovery = frequent.observe("client=nightly", at + 3 * HOUR)
    assert recovery is not None
    assert recovery.recovery


def test_series_without_a_schedule_are_not_judged_for_frequency() -> None:
    frequent = TooFrequent()
    assert all(frequent.observe("x", float(at)) is None for at in range(10))
