"""The audit period and what covered it: parsing `--period`, merging run intervals, finding gaps.

Pure: moments in, moments out. A period is half-open, `[start, end)`, in UTC; a date as its
end includes that whole day, so `2026-10-01..2026-12-31` is the fourth quarter of 2026.
Entry times are compared in milliseconds, as they are signed (`t` in every entry).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = [
    "GAP_TOLERANCE",
    "Interval",
    "Period",
    "PeriodError",
    "day",
    "gaps",
    "iso",
    "merge",
    "span",
    "stamp",
]

GAP_TOLERANCE = 300.0
"""Seconds without a running gateway that still count as covered (a restart, a deploy)."""

_DASH = "\u2013"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

Interval = tuple[float, float]
"""[start, end) in seconds since the epoch."""


class PeriodError(ValueError):
    """A `--period` that is not `FROM..TO` with dates or ISO 8601 times, or that ends before it starts."""

    def __init__(self, text: str, problem: str) -> None:
        self.text = text
        self.problem = problem
        super().__init__(f"{text!r}: {problem}")


@dataclass(frozen=True, slots=True)
class Period:
    start: float
    end: float
    label: str

    @classmethod
    def parse(cls, text: str) -> Period:
        """`2026-10-01..2026-12-31` (whole days, end included) or ISO 8601 times (end excluded)."""
        first, separator, last = text.partition("..")
        if not separator or not first.strip() or not last.strip():
            raise PeriodError(text, "write FROM..TO, e.g. 2026-10-01..2026-12-31")
        start = _moment(text, first.strip(), end=False)
        end = _moment(text, last.strip(), end=True)
        if end <= start:
            raise PeriodError(text, "the period ends before it starts")
        return cls(start, end, text.strip())

    @property
    def start_ms(self) -> int:
        return round(self.start * 1000)

    @property
    def end_ms(self) -> int:
        return round(self.end * 1000)

    def holds(self, t_ms: int) -> bool:
        """Whether an entry time (milliseconds, as signed) falls in the period."""
        return self.start_ms <= t_ms < self.end_ms

    def describe(self) -> str:
        if _midnight(self.start) and _midnight(self.end):
            return f"{day(self.start)} to {day(self.end - 1)} (UTC, both days included)"
        return f"{iso(self.start)} to {iso(self.end)} (end excluded)"


def _moment(text: str, part: str, *, end: bool) -> float:
    if _DATE.match(part):
        try:
            when = datetime.strptime(part, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            raise PeriodError(text, f"{part!r} is not a date") from None
        return (when + timedelta(days=1) if end else when).timestamp()
    try:
        when = datetime.fromisoformat(part.replace("Z", "+00:00"))
    except ValueError:
        raise PeriodError(text, f"{part!r} is neither a date (YYYY-MM-DD) nor an ISO 8601 time") from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _midnight(moment: float) -> bool:
    return moment % 86400 == 0


def iso(moment: float) -> str:
    """2026-11-02T03:00:00Z"""
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def stamp(moment: float) -> str:
    """2026-11-02 03:00 (UTC), for people."""
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M")


def day(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d")


def span(interval: Interval) -> str:
    """`2026-11-02 03:00` to `05:00` joined by an en dash; both stamps in full when the days differ."""
    start, end = interval
    if day(start) == day(end):
        return f"{stamp(start)}{_DASH}{stamp(end)[11:]}"
    return f"{stamp(start)} {_DASH} {stamp(end)}"


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Overlapping or touching intervals joined, in order."""
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def gaps(covered: Iterable[Interval], period: Period, until: float, tolerance: float = GAP_TOLERANCE) -> list[Interval]:
    """Stretches of the period, up to `until` (now, for a period not over yet), that nothing covered.

    Stretches no longer than `tolerance` are not gaps.
    """
    stop = min(period.end, until)
    found: list[Interval] = []
    cursor = period.start
    for start, end in merge(covered):
        if end <= cursor:
            continue
        if start >= stop:
            break
        if start > cursor:
            found.append((cursor, start))
        cursor = max(cursor, end)
    if cursor < stop:
        found.append((cursor, stop))
    return [(start, end) for start, end in found if end - start > tolerance]
