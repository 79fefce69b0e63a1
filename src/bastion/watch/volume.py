"""Volume detectors: calls per window against a seasonal baseline, and schedules run too often.

`VolumeDetector(window=300.0, alpha=0.1, min_calls=20, ratio=3.0, sigmas=4.0, for_windows=2,
min_samples=6, tz="UTC", max_series=100_000, forget_after=35 days, max_catch_up=2016)`
    Counts calls per series key per window. Windows are aligned to the epoch (`[k*window,
    (k+1)*window)`) and shared by every series. `observe(key, at)` only counts; `observe_event`
    counts the three series of a call: `server=S`, `server=S,tool=T` and `client=C`.
    `close_windows(now)`, called on a timer at `next_deadline()`, closes every window that has
    ended, in order, and for every series compares its count with the baseline of the window's
    hour of the week (168 buckets, in the time zone `tz`, so business hours stay put across
    daylight saving time). The baseline is an exponentially weighted mean and variance per
    bucket (`alpha`); a window breaches when the bucket has learned `min_samples` windows and the
    count is at least `min_calls` (the floor: small numbers never alert, however unusual), at
    least `ratio` x the mean and at least the mean plus `sigmas` standard deviations. After
    `for_windows` breaching windows in a row it signals once (WARNING, `volume:<series key>`), and
    after as many normal windows in a row it recovers. A breaching window moves the mean at a
    tenth of `alpha` and leaves the variance alone, so a burst neither silences itself within the
    hour nor becomes next week's normal; a lasting new level is learned over weeks.
    A series with no calls is learned as zero. A gap of more than `max_catch_up` windows (the
    gateway was off) is skipped, not learned as silence. Calls for a window already closed are
    counted in `late` and dropped.
    Memory is bounded: a series holds 168 (mean, variance) float32 pairs and 168 sample counts
    (about 1.7 KB); at most `max_series` series are kept (new ones beyond are counted in
    `dropped_series`), and a series with no calls for `forget_after` seconds is forgotten (with a
    recovery signal if it was alerting).

`TooFrequent()`
    For series with a schedule, `expect(key, period, max_runs=2)`: `observe(key, at)` signals
    (WARNING, `too_frequent:<key>`) when more than `max_runs` runs fall inside one `period`
    (3 runs inside an hour for an hourly agent: two are allowed, for jitter), and recovers at the
    next run that keeps to the schedule.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from datetime import datetime
from zoneinfo import ZoneInfo

from bastion.watch.events import CallEvent, Severity, Signal

__all__ = ["TooFrequent", "VolumeDetector"]

BUCKETS = 168
_DAY = 86_400.0


class _Series:
    __slots__ = ("alerting", "last_window", "run", "samples", "stats")

    def __init__(self, window: int) -> None:
        self.stats = array("f", bytes(4 * 2 * BUCKETS))  # float32: bucket b's mean at 2b, variance at 2b+1
        self.samples = bytearray(BUCKETS)  # windows learned per bucket, saturating at 255
        self.run = 0  # breaching windows in a row (normal windows in a row while alerting)
        self.alerting = False
        self.last_window = window


def _server_of(key: str) -> str:
    if not key.startswith("server="):
        return ""
    return key[7:].split(",", 1)[0]


class VolumeDetector:
    """Calls per window per series, against the series' own hour-of-week baseline."""

    name = "volume"

    def __init__(
        self,
        *,
        window: float = 300.0,
        alpha: float = 0.1,
        min_calls: int = 20,
        ratio: float = 3.0,
        sigmas: float = 4.0,
        for_windows: int = 2,
        min_samples: int = 6,
        tz: str = "UTC",
        max_series: int = 100_000,
        forget_after: float = 35 * _DAY,
        max_catch_up: int = 2016,
    ) -> None:
        if window <= 0 or not 0 < alpha <= 1 or for_windows < 1:
            raise ValueError("window must be positive, alpha in (0, 1], for_windows at least 1")
        self.window = window
        self.alpha = alpha
        self.min_calls = min_calls
        self.ratio = ratio
        self.sigmas = sigmas
        self.for_windows = for_windows
        self.min_samples = min(min_samples, 255)
        self.max_series = max_series
        self.forget_after = forget_after
        self.max_catch_up = max_catch_up
        self.late = 0
        self.dropped_series = 0
        self._zone = ZoneInfo(tz)
        self._series: dict[str, _Series] = {}
        self._pending: dict[int, dict[str, int]] = {}
        self._open: int | None = None  # the first window not yet closed
        self._cur = -1
        self._cur_counts: dict[str, int] = {}
        self._bucket_slot = -1
        self._bucket = 0

    def __len__(self) -> int:
        return len(self._series)

    def _counts(self, at: float) -> dict[str, int] | None:
        index = int(at // self.window)
        if index == self._cur:
            return self._cur_counts
        if self._open is not None and index < self._open:
            self.late += 1
            return None
        counts = self._pending.get(index)
        if counts is None:
            counts = self._pending[index] = {}
        self._cur, self._cur_counts = index, counts
        return counts

    def observe(self, key: str, at: float) -> None:
        counts = self._cur_counts if int(at // self.window) == self._cur else self._counts(at)
        if counts is not None:
            counts[key] = counts.get(key, 0) + 1

    def observe_event(self, event: CallEvent) -> None:
        """Count a call in its three series: `server=S`, `server=S,tool=T`, `client=C`."""
        counts = self._cur_counts if int(event.at // self.window) == self._cur else self._counts(event.at)
        if counts is None:
            return
        server = "server=" + event.server
        tool = server + ",tool=" + event.tool
        client = "client=" + event.client
        counts[server] = counts.get(server, 0) + 1
        counts[tool] = counts.get(tool, 0) + 1
        counts[client] = counts.get(client, 0) + 1

    def next_deadline(self) -> float | None:
        """When the next window ends, or None before anything was observed or closed."""
        first = self._open if self._open is not None else min(self._pending, default=None)
        return None if first is None else (first + 1) * self.window

    def expected(self, key: str, at: float) -> float | None:
        """The baseline mean for `key` in the hour of the week of `at`, once learned."""
        series = self._series.get(key)
        bucket = self._bucket_of(int(at // self.window))
        if series is None or series.samples[bucket] < self.min_samples:
            return None
        return float(series.stats[2 * bucket])

    def close_windows(self, now: float) -> list[Signal]:
        """Close every window that ended by `now`, update baselines, return signals."""
        last = int(now // self.window) - 1
        if self._open is None:
            self._open = min(self._pending, default=last + 1)
        signals: list[Signal] = []
        horizon = last - self.max_catch_up  # older windows are closed only if they saw calls
        for index in sorted(w for w in self._pending if w <= horizon):
            signals += self._close(index)
        for index in range(max(self._open, horizon + 1), last + 1):
            signals += self._close(index)
        self._open = max(self._open, last + 1)
        if self._cur < self._open:
            self._cur, self._cur_counts = -1, {}
        return signals

    def _bucket_of(self, index: int) -> int:
        start = index * self.window
        slot = int(start // 900)  # every UTC offset in use is a multiple of 15 minutes
        if slot != self._bucket_slot:
            local = datetime.fromtimestamp(start, self._zone)
            self._bucket_slot, self._bucket = slot, local.weekday() * 24 + local.hour
        return self._bucket

    def _close(self, index: int) -> list[Signal]:
        counts = self._pending.pop(index, {})
        for key in counts:
            if key not in self._series:
                if len(self._series) >= self.max_series:
                    self.dropped_series += 1
                    continue
                self._series[key] = _Series(index)
        bucket = self._bucket_of(index)
        mean_at, var_at = 2 * bucket, 2 * bucket + 1
        alpha, slow_alpha = self.alpha, self.alpha / 10
        forget = int(self.forget_after // self.window)
        signals: list[Signal] = []
        stale: list[str] = []
        for key, series in self._series.items():
            calls = counts.get(key, 0)
            if calls:
                series.last_window = index
            elif index - series.last_window > forget:
                stale.append(key)
                if series.alerting:  # an alert about a series that went away must not stay open
                    gone = f"{key}: no calls for {self.forget_after:g} s; the series is forgotten"
                    signals.append(self._signal(key, index, 0, 0.0, breach=False, summary=gone))
                continue
            samples = series.samples
            learned = samples[bucket]
            stats = series.stats
            mean, var = stats[mean_at], stats[var_at]
            breach = (
                learned >= self.min_samples
                and calls >= self.min_calls
                and calls >= self.ratio * mean
                and calls >= mean + self.sigmas * math.sqrt(var)
            )
            if learned == 0:
                stats[mean_at], stats[var_at] = calls, max(calls, 1.0)
            else:
                diff = calls - mean
                if breach:  # a burst moves the mean slowly and leaves the spread alone
                    stats[mean_at] = mean + slow_alpha * diff
                else:
                    step = alpha * diff
                    stats[mean_at] = mean + step
                    stats[var_at] = (1 - alpha) * (var + diff * step)
            if learned < 255:
                samples[bucket] = learned + 1
            if breach != series.alerting:
                series.run += 1
                if series.run >= self.for_windows:
                    series.alerting, series.run = breach, 0
                    signals.append(self._signal(key, index, calls, mean, breach))
            else:
                series.run = 0
        for key in stale:
            del self._series[key]
        return signals

    def _signal(self, key: str, index: int, calls: int, mean: float, breach: bool, summary: str = "") -> Signal:
        minutes = self.window / 60
        end = (index + 1) * self.window
        if breach:
            summary = (
                f"{key}: {calls} calls in {minutes:g} min, usually {mean:.1f} ({self.for_windows} windows in a row)"
            )
        elif not summary:
            summary = f"{key}: volume is back to normal ({calls} calls in {minutes:g} min, usually {mean:.1f})"
        details = {"series": key, "calls": calls, "expected": round(mean, 3), "window_start": end - self.window}
        severity = Severity.WARNING if breach else Severity.INFO
        return Signal(self.name, f"{self.name}:{key}", severity, summary, end, details, _server_of(key), not breach)


class TooFrequent:
    """A scheduled series (an agent run every `period` seconds) running more often than planned."""

    name = "too_frequent"

    def __init__(self) -> None:
        self._expect: dict[str, tuple[float, int]] = {}
        self._runs: dict[str, deque[float]] = {}
        self._alerting: set[str] = set()

    def expect(self, key: str, period: float, max_runs: int = 2) -> None:
        if period <= 0 or max_runs < 1:
            raise ValueError("period must be positive and max_runs at least 1")
        self._expect[key] = (period, max_runs)
        self._runs[key] = deque(self._runs.get(key, ()), maxlen=max_runs + 1)

    def forget(self, key: str) -> None:
        self._expect.pop(key, None)
        self._runs.pop(key, None)
        self._alerting.discard(key)

    def observe(self, key: str, at: float) -> Signal | None:
        expectation = self._expect.get(key)
        if expectation is None:
            return None
        period, max_runs = expectation
        runs = self._runs[key]
        runs.append(at)
        too_many = len(runs) > max_runs and at - runs[0] < period
        if too_many == (key in self._alerting):
            return None
        details = {"series": key, "period": period, "max_runs": max_runs, "runs": len(runs)}
        signal_key = f"{self.name}:{key}"
        if too_many:
            self._alerting.add(key)
            span = at - runs[0]
            summary = f"{key} ran {len(runs)} times in {span:.0f} s; it is scheduled every {period:.0f} s"
            return Signal(self.name, signal_key, Severity.WARNING, summary, at, details, _server_of(key))
        self._alerting.discard(key)
        summary = f"{key} keeps to its schedule again"
        return Signal(self.name, signal_key, Severity.INFO, summary, at, details, _server_of(key), recovery=True)
