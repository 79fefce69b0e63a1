"""Reading the period's evidence out of the audit store.

Entry times never decrease within a log, so the entries of a period are one run of indices
per log, found by binary search; only that run is read (plus each log's first and last entry,
which say when its gateway started and stopped). Payload retention is read the same way: a
day at a time, jumping over days whose data key was shredded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

import orjson

from bastion.audit.columns import Problem, read_entry
from bastion.compliance.controls import text
from bastion.compliance.timeline import Period, day
from bastion.store.audit import AuditStore, EntryRow, LogRow

__all__ = ["LogSpan", "Run", "locate", "oldest_entry_day", "oldest_payload_day", "period_rows", "runs"]

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class LogSpan:
    """One log and the run of its indices that falls in the period: `[lo, hi)`."""

    log: LogRow
    size: int
    lo: int
    hi: int
    first: Mapping[str, Any]
    last: Mapping[str, Any]

    @property
    def log_id(self) -> str:
        return self.log.log_id


@dataclass(frozen=True, slots=True)
class Run:
    """A gateway process: from its `gateway.start` entry to its stop (or its last sign of life)."""

    log_id: str
    origin: str
    instance: str
    start: float
    end: float
    ended: Literal["stopped", "running", "no stop entry"]

    def describe(self) -> dict[str, Any]:
        return {
            "log": self.log_id,
            "origin": self.origin,
            "instance": self.instance,
            "start_ms": round(self.start * 1000),
            "end_ms": round(self.end * 1000),
            "ended": self.ended,
        }


def _entry(row: EntryRow | None) -> Mapping[str, Any]:
    if row is None:
        return {}
    try:
        parsed = orjson.loads(row.entry)
    except orjson.JSONDecodeError:
        return {}
    return cast(Mapping[str, Any], parsed) if isinstance(parsed, dict) else {}


def _at(store: AuditStore, log_id: str, index: int) -> EntryRow | None:
    """The row at `index`; None where the store lost it (the verifier reports the gap)."""
    return next(store.entries(log_id, index, index + 1), None)


def _time_ms(store: AuditStore, log_id: str, index: int) -> int:
    row = _at(store, log_id, index)
    if row is None:
        return -1
    moment = _entry(row).get("t")
    return moment if isinstance(moment, int) else round(row.time * 1000)


def _first_at(store: AuditStore, log_id: str, lo: int, hi: int, t_ms: int) -> int:
    """The first index in [lo, hi) whose entry time is at or after `t_ms` (hi if none)."""
    while lo < hi:
        middle = (lo + hi) // 2
        if _time_ms(store, log_id, middle) < t_ms:
            lo = middle + 1
        else:
            hi = middle
    return lo


def locate(store: AuditStore, period: Period) -> list[LogSpan]:
    """Every log that holds entries, with the run of indices the period covers (possibly empty)."""
    spans: list[LogSpan] = []
    for log in store.logs():
        size = store.size(log.log_id)
        if size == 0:
            continue
        lo = _first_at(store, log.log_id, 0, size, period.start_ms)
        hi = _first_at(store, log.log_id, lo, size, period.end_ms)
        first, last = _entry(_at(store, log.log_id, 0)), _entry(_at(store, log.log_id, size - 1))
        spans.append(LogSpan(log, size, lo, hi, first, last))
    return spans


def period_rows(
    store: AuditStore, spans: list[LogSpan]
) -> Iterator[tuple[str, EntryRow, Mapping[str, Any], Problem | None]]:
    """(log id, row, entry, what is wrong with the row) for every entry of the period, log by log, in
    index order. The entry is what counts; a row whose index columns disagree with it is a problem."""
    for span in spans:
        if span.lo < span.hi:
            for row in store.entries(span.log_id, span.lo, span.hi):
                entry, problem = read_entry(span.log_id, row)
                yield span.log_id, row, entry, problem


def runs(spans: list[LogSpan], period: Period, now: float, alive: Callable[[int], bool]) -> list[Run]:
    """The gateway processes that ran during the period (a log that begins with `gateway.start`)."""
    found: list[Run] = []
    for span in spans:
        if text(span.first, "kind") != "gateway.start":
            continue
        start = int(span.first.get("t", 0)) / 1000
        end = int(span.last.get("t", 0)) / 1000
        ended: Literal["stopped", "running", "no stop entry"] = "no stop entry"
        if text(span.last, "kind") == "gateway.stop":
            ended = "stopped"
        elif alive(span.log.pid):
            end, ended = now, "running"
        if start < period.end and end > period.start:
            log = span.log
            found.append(Run(log.log_id, log.origin, log.instance, start, end, ended))
    return found


def oldest_entry_day(spans: list[LogSpan]) -> str | None:
    times = [int(span.first.get("t", 0)) for span in spans]
    return day(min(times) / 1000) if times else None


def oldest_payload_day(store: AuditStore, spans: list[LogSpan]) -> str | None:
    """The earliest day whose payloads can still be read (its data key not shredded, not redacted)."""
    keys: dict[str, bool] = {}

    def present(epoch: str) -> bool:
        if epoch not in keys:
            keys[epoch] = store.data_key(epoch) is not None
        return keys[epoch]

    days = [found for span in spans if (found := _oldest_in_log(store, span, present)) is not None]
    return min(days) if days else None


def _oldest_in_log(store: AuditStore, span: LogSpan, present: Callable[[str], bool]) -> str | None:
    index = 0
    while index < span.size:
        t_ms = _time_ms(store, span.log_id, index)
        midnight = t_ms - t_ms % DAY_MS + DAY_MS
        end = _first_at(store, span.log_id, index, span.size, midnight)
        for row in store.entries(span.log_id, index, end):
            if b'"commitments"' not in row.entry:
                continue
            found = store.payload(span.log_id, row.idx)
            if found is None:
                continue
            epoch, sealed = found
            if not present(epoch):
                break  # the day's key is gone: every payload of that day is unreadable
            if sealed is not None:
                return epoch
        index = end
    return None
