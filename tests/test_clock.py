"""The clock seam: the system clock reads real time, the fake one moves only when told."""

from __future__ import annotations

import time

from bastion.clock import Clock, FakeClock, SystemClock


def test_a_fake_clock_stands_still_until_advanced() -> None:
    clock = FakeClock(start=1000.0)
    assert (clock.now(), clock.monotonic()) == (1000.0, 0.0)
    assert (clock.now(), clock.monotonic()) == (1000.0, 0.0)


def test_advancing_a_fake_clock_moves_wall_and_monotonic_time_together() -> None:
    clock = FakeClock(start=50.0)
    clock.advance(2.5)
    clock.advance(0.5)
    assert clock.now() == 53.0
    assert clock.monotonic() == 3.0


def test_a_fake_clock_starts_at_a_fixed_recent_moment_by_default() -> None:
    assert FakeClock().now() == 1_700_000_000.0


def test_a_negative_advance_turns_wall_time_back_as_a_clock_change_would() -> None:
    clock = FakeClock(start=100.0)
    clock.advance(-10.0)
    assert clock.now() == 90.0
    assert clock.monotonic() == -10.0


def test_the_system_clock_reads_wall_time_and_a_monotonic_clock() -> None:
    clock: Clock = SystemClock()
    before = time.time()
    now = clock.now()
    assert before <= now <= time.time()
    first = clock.monotonic()
    assert clock.monotonic() >= first
