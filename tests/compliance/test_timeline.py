"""Periods, spans and gaps: dates include their whole day, gaps shorter than the tolerance are not gaps."""

from __future__ import annotations

import pytest

from bastion.compliance.timeline import Period, PeriodError, gaps, merge, span
from tests.compliance.scenario import at


def test_a_period_of_dates_includes_both_whole_days() -> None:
    period = Period.parse("2026-10-01..2026-12-31")
    assert period.start == at("2026-10-01T00:00:00")
    assert period.end == at("2027-01-01T00:00:00")
    assert period.holds(period.start_ms)
    assert period.holds(round(at("2026-12-31T23:59:59.999") * 1000))
    assert not period.holds(period.end_ms)
    assert period.describe() == "2026-10-01 to 2026-12-31 (UTC, both days included)"


def test_a_period_of_times_excludes_its_end_and_reads_offsets() -> None:
    period = Period.parse("2026-11-02T03:00Z..2026-11-02T07:00+02:00")
    assert period.start == at("2026-11-02T03:00:00")
    assert period.end == at("2026-11-02T05:00:00")


@pytest.mark.parametrize(
    "text", ["2026-10-01", "2026-10-01..", "..2026-10-01", "2026-13-01..2026-12-31", "2026-12-31..2026-10-01", "q4"]
)
def test_a_malformed_or_backwards_period_is_refused(text: str) -> None:
    with pytest.raises(PeriodError):
        Period.parse(text)


def test_a_gap_is_what_no_run_covered_beyond_the_tolerance() -> None:
    period = Period.parse("2026-11-02..2026-11-02")
    runs = [
        (at("2026-11-01T00:00:00"), at("2026-11-02T03:00:00")),
        (at("2026-11-02T02:00:00"), at("2026-11-02T03:00:10")),  # overlaps the first: merged
        (at("2026-11-02T05:00:00"), at("2026-11-02T12:00:00")),
        (at("2026-11-02T12:04:00"), at("2026-11-03T00:00:00")),  # four minutes later: a restart, not a gap
    ]
    found = gaps(runs, period, until=at("2026-12-01T00:00:00"), tolerance=300)
    assert found == [(at("2026-11-02T03:00:10"), at("2026-11-02T05:00:00"))]
    assert span((at("2026-11-02T03:00:00"), at("2026-11-02T05:00:00"))) == "2026-11-02 03:00\u201305:00"
    assert span((at("2026-11-02T23:00:00"), at("2026-11-03T01:00:00"))) == "2026-11-02 23:00 \u2013 2026-11-03 01:00"


def test_a_period_not_over_yet_is_judged_only_up_to_now() -> None:
    period = Period.parse("2026-11-01..2026-11-30")
    now = at("2026-11-10T00:00:00")
    assert gaps([(at("2026-10-31T00:00:00"), now)], period, until=now) == []
    assert gaps([], period, until=now) == [(period.start, now)]


def test_merge_joins_overlapping_and_touching_runs() -> None:
    assert merge([(5, 7), (1, 3), (3, 4), (6, 9)]) == [(1, 4), (5, 9)]
