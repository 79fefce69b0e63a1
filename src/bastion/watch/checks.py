"""Silence: checks that expect pings on a cadence, modelled on healthchecks.io.

`Check(name, period=None, cron=None, tz="UTC", grace=60.0, max_runtime=None, min_pings=5,
history=20)` has one expectation:

* `period` seconds between runs, or
* a `cron` expression (5 or 6 fields, cronsim's dialect) read in the time zone `tz`, or
* neither: the cadence is learned, the median interval between the last pings once `min_pings`
  runs have ended (of at most `history`); until then the check is UP without a deadline.

and observations, `ping(kind, now, run_id=None)` with `PingKind.SUCCESS`, `START` or `FAIL`. A
success or fail ends a run; after a start with the same run id (or any start, for an end
without a run id) the run's duration is `last_duration`.

Status (`CheckStatus`): NEW until the first ping; UP after a success; STARTED while a run is
open; GRACE from the moment the next run was due (`due_at`: last ping + period, or the first cron
time after the last ping); DOWN from `alert_after = due_at + grace`, after a fail ping, or when a
run started `max_runtime` (default: `grace`) seconds ago has not ended; PAUSED after
`pause(now, until=None)` until a ping, `resume(now)` or `until` (the cadence then restarts from
that moment). A DOWN check stays DOWN until a success ping. A start does not end DOWN either.

The moments are stored, never scanned for: `next_deadline()` is the next moment the status can
change by time alone (None if it cannot), and `tick(now)` applies what is due. Both return a
`Flip(check, old, new, at, reason)` when the status changed, with `at` the moment it changed
(the deadline, also when `tick` runs late). A loop that wakes at `next_deadline()` sees a missed
run go DOWN exactly `grace` seconds after it was due.

`Checks` holds many checks behind one deadline heap: `next_deadline()` is O(1) and
`tick(now)` touches only the checks that are due. Change checks through `Checks` (`ping`,
`pause`, `resume`) or call `reschedule(name)` after changing one directly.

`silence_signal(flip)` turns a flip into a `Signal` for the alert store: DOWN is CRITICAL
(`silence:check=NAME`), leaving DOWN is its recovery, other flips are not signals.
"""

from __future__ import annotations

import heapq
import itertools
import statistics
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum, StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bastion.errors import ConfigError, ConfigProblem
from bastion.watch.events import Severity, Signal, signal_key

__all__ = ["Check", "CheckStatus", "Checks", "Flip", "PingKind", "silence_signal"]

_MAX_OPEN_RUNS = 16


class CheckStatus(Enum):
    NEW = "new"
    UP = "up"
    GRACE = "grace"
    DOWN = "down"
    PAUSED = "paused"
    STARTED = "started"


class PingKind(StrEnum):
    SUCCESS = "success"
    START = "start"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Flip:
    """A change of a check's status: store it as an event row; a separate task alerts."""

    check: str
    old: CheckStatus
    new: CheckStatus
    at: float
    reason: str


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")


class Check:
    """One expectation (period, cron or learned cadence, plus grace) and its observations."""

    def __init__(
        self,
        name: str,
        *,
        period: float | None = None,
        cron: str | None = None,
        tz: str = "UTC",
        grace: float = 60.0,
        max_runtime: float | None = None,
        min_pings: int = 5,
        history: int = 20,
    ) -> None:
        problems: list[ConfigProblem] = []
        where = f"checks.{name}"
        if period is not None and cron is not None:
            problems.append(ConfigProblem(where, "both period and cron are set", "keep one of them"))
        if period is not None and period <= 0:
            problems.append(ConfigProblem(f"{where}.period", "must be positive", "e.g. period = 3600"))
        if grace < 0:
            problems.append(ConfigProblem(f"{where}.grace", "must not be negative", "e.g. grace = 60"))
        try:
            self._zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(ConfigProblem(f"{where}.tz", f"unknown time zone {tz!r}", 'e.g. tz = "Europe/Berlin"'))
            self._zone = ZoneInfo("UTC")
        if cron is not None:
            from cronsim import CronSim, CronSimError  # only for checks on a cron schedule (issue 13 §5)

            try:
                next(CronSim(cron, datetime(2024, 1, 1, tzinfo=self._zone)))
            except (CronSimError, StopIteration) as error:
                problems.append(ConfigProblem(f"{where}.cron", f"invalid cron expression {cron!r}: {error}"))
        if problems:
            raise ConfigError(None, problems)
        self.name = name
        self.period = period
        self.cron = cron
        self.tz = tz
        self.grace = grace
        self.max_runtime = grace if max_runtime is None else max_runtime
        self.min_pings = max(min_pings, 2)
        self.status = CheckStatus.NEW
        self.last_ping: float | None = None
        self.last_duration: float | None = None
        self.due_at: float | None = None
        self.alert_after: float | None = None
        self.paused_until: float | None = None
        self._runs: dict[str | None, float] = {}
        self._history: deque[float] = deque(maxlen=max(history, self.min_pings))

    def cadence(self) -> float | None:
        """The learned interval between runs (median), once `min_pings` runs have ended."""
        if len(self._history) < self.min_pings:
            return None
        return statistics.median(b - a for a, b in itertools.pairwise(self._history))

    def _due_after(self, at: float) -> float | None:
        if self.period is not None:
            return at + self.period
        if self.cron is not None:
            from cronsim import CronSim

            return next(CronSim(self.cron, datetime.fromtimestamp(at, self._zone))).timestamp()
        cadence = self.cadence()
        return None if cadence is None else at + cadence

    def _expect_from(self, at: float) -> None:
        self.due_at = self._due_after(at)
        self.alert_after = None if self.due_at is None else self.due_at + self.grace

    def next_deadline(self) -> float | None:
        """The next moment the status changes unless a ping comes first."""
        if self.status is CheckStatus.PAUSED:
            return self.paused_until
        if self.status is CheckStatus.UP:
            return self.due_at
        if self.status is CheckStatus.GRACE:
            return self.alert_after
        if self.status is CheckStatus.STARTED:
            return min(self._runs.values()) + self.max_runtime
        return None

    def _step(self, now: float) -> tuple[CheckStatus, float, str] | None:
        """The first change due by `now`: the new status, the moment and why."""
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return None
        if self.status is CheckStatus.PAUSED:
            if self.last_ping is None:
                return CheckStatus.NEW, deadline, "pause ended"
            self._expect_from(deadline)
            return CheckStatus.UP, deadline, "pause ended"
        if self.status is CheckStatus.STARTED:
            started = min(self._runs.values())
            return (
                CheckStatus.DOWN,
                deadline,
                f"run started at {_iso(started)} did not end within {self.max_runtime:g} s",
            )
        if self.status is CheckStatus.UP and self.alert_after is not None and now < self.alert_after:
            return CheckStatus.GRACE, deadline, f"late: a ping was expected by {_iso(deadline)}"
        since = "no ping" if self.last_ping is None else f"no ping since {_iso(self.last_ping)}"
        due = _iso(self.due_at if self.due_at is not None else deadline)
        at = deadline if self.alert_after is None else self.alert_after
        return CheckStatus.DOWN, at, f"{since}: due at {due}, grace {self.grace:g} s"

    def tick(self, now: float) -> Flip | None:
        """Apply every change due by `now`; one Flip from the old to the final status."""
        old, at, reason = self.status, now, ""
        while (step := self._step(now)) is not None:
            self.status, at, reason = step
            if self.status is not CheckStatus.PAUSED:
                self.paused_until = None
        return None if self.status is old else Flip(self.name, old, self.status, at, reason)

    def ping(self, kind: PingKind | str, now: float, run_id: str | None = None) -> Flip | None:
        kind = PingKind(kind)
        old = self.status
        self.paused_until = None
        if kind is PingKind.START:
            if len(self._runs) >= _MAX_OPEN_RUNS and run_id not in self._runs:
                del self._runs[next(iter(self._runs))]
            self._runs[run_id] = now
            if old is not CheckStatus.DOWN:
                self.status = CheckStatus.STARTED
            return self._flip(old, now, f"start ping{_rid(run_id)}")
        started = self._runs.pop(run_id, None)
        if run_id is None and self._runs:
            started = max(self._runs.values()) if started is None else started
            self._runs.clear()
        self.last_duration = None if started is None else now - started
        run = "" if self.last_duration is None else f" after a {self.last_duration:.3g} s run"
        self.last_ping = now
        self._history.append(now)
        self._expect_from(now)
        if kind is PingKind.FAIL:
            self.status = CheckStatus.DOWN
            return self._flip(old, now, f"fail ping{_rid(run_id)}{run}")
        self.status = CheckStatus.STARTED if self._runs else CheckStatus.UP
        return self._flip(old, now, f"success ping{_rid(run_id)}{run}")

    def pause(self, now: float, until: float | None = None, reason: str = "") -> Flip | None:
        """Silence the check until a ping, `resume`, or `until`."""
        old = self.status
        if until is not None and until <= now:
            return None
        self.status, self.paused_until = CheckStatus.PAUSED, until
        self._runs.clear()
        return self._flip(old, now, "paused" + (f": {reason}" if reason else ""))

    def resume(self, now: float) -> Flip | None:
        if self.status is not CheckStatus.PAUSED:
            return None
        self.paused_until = now
        return self.tick(now)

    def _flip(self, old: CheckStatus, at: float, reason: str) -> Flip | None:
        return None if self.status is old else Flip(self.name, old, self.status, at, reason)


def _rid(run_id: str | None) -> str:
    return "" if run_id is None else f" (run {run_id})"


class Checks:
    """Many checks behind one deadline heap."""

    def __init__(self, checks: Iterable[Check] = ()) -> None:
        self._checks: dict[str, Check] = {}
        self._heap: list[tuple[float, str]] = []
        self._scheduled: dict[str, float] = {}
        for check in checks:
            self.add(check)

    def __len__(self) -> int:
        return len(self._checks)

    def __iter__(self) -> Iterator[Check]:
        return iter(self._checks.values())

    def __contains__(self, name: object) -> bool:
        return name in self._checks

    def __getitem__(self, name: str) -> Check:
        return self._checks[name]

    def add(self, check: Check) -> None:
        self._checks[check.name] = check
        self.reschedule(check.name)

    def remove(self, name: str) -> None:
        self._checks.pop(name, None)
        self._scheduled.pop(name, None)

    def reschedule(self, name: str) -> None:
        """Index a check's current deadline (after changing it other than through `Checks`)."""
        check = self._checks.get(name)
        deadline = None if check is None else check.next_deadline()
        if deadline is None:
            self._scheduled.pop(name, None)
            return
        if self._scheduled.get(name) != deadline:
            self._scheduled[name] = deadline
            heapq.heappush(self._heap, (deadline, name))
        if len(self._heap) > 2 * len(self._scheduled) + 64:
            self._heap = [(deadline, name) for name, deadline in self._scheduled.items()]
            heapq.heapify(self._heap)

    def ping(self, name: str, kind: PingKind | str, now: float, run_id: str | None = None) -> Flip | None:
        flip = self._checks[name].ping(kind, now, run_id)
        self.reschedule(name)
        return flip

    def pause(self, name: str, now: float, until: float | None = None, reason: str = "") -> Flip | None:
        flip = self._checks[name].pause(now, until, reason)
        self.reschedule(name)
        return flip

    def resume(self, name: str, now: float) -> Flip | None:
        flip = self._checks[name].resume(now)
        self.reschedule(name)
        return flip

    def _live(self, entry: tuple[float, str]) -> bool:
        return self._scheduled.get(entry[1]) == entry[0]

    def next_deadline(self) -> float | None:
        while self._heap and not self._live(self._heap[0]):
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def tick(self, now: float) -> list[Flip]:
        """Apply what is due by `now` to the checks that are due, in deadline order."""
        flips: list[Flip] = []
        while (deadline := self.next_deadline()) is not None and deadline <= now:
            _, name = heapq.heappop(self._heap)
            del self._scheduled[name]
            flip = self._checks[name].tick(now)
            if flip is not None:
                flips.append(flip)
            self.reschedule(name)
        return flips


def silence_signal(flip: Flip) -> Signal | None:
    """DOWN as a CRITICAL signal, leaving DOWN as its recovery; other flips are not signals."""
    key = signal_key("silence", check=flip.check)
    details = {"old": flip.old.value, "new": flip.new.value, "reason": flip.reason}
    if flip.new is CheckStatus.DOWN:
        summary = f"check {flip.check!r} is down: {flip.reason}"
        return Signal("silence", key, Severity.CRITICAL, summary, flip.at, details)
    if flip.old is CheckStatus.DOWN and flip.new is not CheckStatus.PAUSED:
        summary = f"check {flip.check!r} is {flip.new.value} again: {flip.reason}"
        return Signal("silence", key, Severity.INFO, summary, flip.at, details, recovery=True)
    return None
