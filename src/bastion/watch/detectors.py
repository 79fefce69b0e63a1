"""Detectors over single calls and server events: first use, definition drift, errors, health.

Every detector is pure: it takes values (a `CallEvent`, a server name, a moment as float seconds
since the epoch) and returns `Signal`s; none reads a clock. A signal is returned at once, with the
`at` of the event that caused it.

`FirstUse(learn_until=None, expected=None)`
    Signals the first call of a tool on a server (`first_use:server=S,tool=T`), else a client's
    first call to a server (`first_use:client=C,server=S`), else a client's first call of a tool
    (`first_use:client=C,server=S,tool=T`): one signal per event, the broadest novelty wins, and
    every level is learned. Severity by the tool's risk: CRITICAL for network, destructive, exec;
    WARNING for write; INFO for read. Before `learn_until` every first use is learned silently;
    a (server, tool) listed in `expected` ({server: tools}) never signals. State is the set of
    seen tuples, `("tool", S, T)`, `("client_server", C, S)`, `("client_tool", C, S, T)`:
    persist `seen()` and restore with `FirstUse.from_seen(...)`.

`definition_drift(server, pinned_findings, at, blocked=False)`
    The pin-drift findings of a server (the inventory's `Drift.describe()` lines) as one signal
    `definition_drift:server=S`: CRITICAL when the server is blocked, else WARNING; no findings,
    no signal. `new_server(server, at)` (WARNING, `new_server:server=S`) and
    `version_changed(server, old, new, at)` (WARNING, `version_changed:server=S`) go with it.

`ErrorRate(window=20, threshold=5, recover_below=None, outcomes=("error", "tool_error"))`
    Per (server, tool), the errors among the last `window` calls (k of n, not a run of
    consecutive errors). At `threshold` errors it signals once (WARNING, `error_rate:server=S,
    tool=T`); when the count falls below `recover_below` (default `ceil(threshold / 2)`, so a rate
    hovering at the threshold does not flap) it returns a recovery signal. Denied calls never
    reached the server and are not counted.

`Health(restart_limit=3, restart_window=300.0, latency_factor=5.0, latency_min_samples=20,
latency_floor_ms=50.0, latency_window=11, baseline_alpha=0.02)`
    Per server: `down` (CRITICAL), `start_failed` (CRITICAL) and a restart loop (`restarted`:
    `restart_limit` restarts within `restart_window` seconds, CRITICAL) share one alert key,
    `health:server=S`; each problem is signalled once. It recovers on `restarted` after an outage
    or a failed start, and from a loop on the first call, or the next restart, at least
    `restart_window` seconds after the last restart; a successful call (`observe`) also ends an
    outage. Latency (`observe`, `latency:server=S`, WARNING, against the server's own baseline):
    the recent level is the median of the last `latency_window` calls (one slow call is not a
    trend), the baseline an EWMA of that median (`baseline_alpha`, so a slow drift over days is
    learned). It signals when, after `latency_min_samples` calls, the recent level exceeds
    `latency_factor` x baseline and `latency_floor_ms`, and recovers below half that factor. The
    baseline stops learning while the server is slow.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from bastion.watch.events import CallEvent, Severity, Signal, severity_for_risk, signal_key

__all__ = ["ErrorRate", "FirstUse", "Health", "definition_drift", "new_server", "version_changed"]

_SEEN_KINDS = {"tool": 3, "client_server": 3, "client_tool": 4}


class FirstUse:
    """First call of a tool on a server, of a server by a client, of a tool by a client."""

    name = "first_use"

    def __init__(
        self, *, learn_until: float | None = None, expected: Mapping[str, Collection[str]] | None = None
    ) -> None:
        self.learn_until = learn_until
        self._expected = frozenset((server, tool) for server, tools in (expected or {}).items() for tool in tools)
        self._seen: set[tuple[str, ...]] = set()

    @classmethod
    def from_seen(
        cls,
        seen: Iterable[Sequence[object]],
        *,
        learn_until: float | None = None,
        expected: Mapping[str, Collection[str]] | None = None,
    ) -> FirstUse:
        """Restore from `seen()`; a malformed entry raises ValueError rather than being dropped."""
        detector = cls(learn_until=learn_until, expected=expected)
        for item in seen:
            entry = tuple(part for part in item if isinstance(part, str))
            if not entry or len(entry) != len(item) or _SEEN_KINDS.get(entry[0]) != len(entry):
                raise ValueError(f"not a first-use entry: {item!r}")
            detector._seen.add(entry)
        return detector

    def seen(self) -> frozenset[tuple[str, ...]]:
        return frozenset(self._seen)

    def observe(self, event: CallEvent) -> Signal | None:
        seen = self._seen
        tool = ("tool", event.server, event.tool)
        client_server = ("client_server", event.client, event.server)
        client_tool = ("client_tool", event.client, event.server, event.tool)
        new_tool = tool not in seen
        new_client_server = client_server not in seen
        if not new_tool and not new_client_server and client_tool in seen:
            return None
        seen.add(tool)
        seen.add(client_server)
        seen.add(client_tool)
        learning = self.learn_until is not None and event.at < self.learn_until
        if learning or (event.server, event.tool) in self._expected:
            return None
        severity = severity_for_risk(event.risk)
        details = {"client": event.client, "server": event.server, "tool": event.tool, "risk": event.risk}
        if new_tool:
            key = signal_key(self.name, server=event.server, tool=event.tool)
            summary = f"first call of {event.risk} tool {event.tool!r} on server {event.server!r} (by {event.client!r})"
        elif new_client_server:
            key = signal_key(self.name, client=event.client, server=event.server)
            summary = f"client {event.client!r} used server {event.server!r} for the first time ({event.tool!r})"
        else:
            key = signal_key(self.name, client=event.client, server=event.server, tool=event.tool)
            summary = f"client {event.client!r} called {event.risk} tool {event.tool!r} on {event.server!r} for the first time"
        return Signal(self.name, key, severity, summary, event.at, details, server=event.server)


def definition_drift(server: str, pinned_findings: Sequence[str], at: float, *, blocked: bool = False) -> list[Signal]:
    """One signal for a server's pin-drift findings: CRITICAL when blocked, else WARNING."""
    if not pinned_findings:
        return []
    count = len(pinned_findings)
    what = f"{count} definition change{'s' if count != 1 else ''} since pinned"
    summary = f"server {server!r}: {what}" + (": blocked until reviewed" if blocked else "")
    severity = Severity.CRITICAL if blocked else Severity.WARNING
    details = {"findings": tuple(pinned_findings), "blocked": blocked}
    return [
        Signal(
            "definition_drift", signal_key("definition_drift", server=server), severity, summary, at, details, server
        )
    ]


def new_server(server: str, at: float) -> Signal:
    summary = f"new server {server!r} appeared"
    return Signal("new_server", signal_key("new_server", server=server), Severity.WARNING, summary, at, {}, server)


def version_changed(server: str, old: str, new: str, at: float) -> Signal:
    summary = f"server {server!r} changed version: {old!r} -> {new!r}"
    details = {"old": old, "new": new}
    key = signal_key("version_changed", server=server)
    return Signal("version_changed", key, Severity.WARNING, summary, at, details, server)


class _Window:
    __slots__ = ("alerting", "bits", "calls", "errors")

    def __init__(self) -> None:
        self.bits = 0
        self.errors = 0
        self.calls = 0
        self.alerting = False


class ErrorRate:
    """k errors among the last n calls per (server, tool), with a recovery signal."""

    name = "error_rate"

    def __init__(
        self,
        *,
        window: int = 20,
        threshold: int = 5,
        recover_below: int | None = None,
        outcomes: Collection[str] = ("error", "tool_error"),
    ) -> None:
        if not 0 < threshold <= window:
            raise ValueError("threshold must be between 1 and window")
        self.window = window
        self.threshold = threshold
        self.recover_below = math.ceil(threshold / 2) if recover_below is None else recover_below
        self._outcomes = frozenset(outcomes)
        self._mask = (1 << window) - 1
        self._windows: dict[tuple[str, str], _Window] = {}

    def observe(self, event: CallEvent) -> Signal | None:
        if event.outcome == "denied":
            return None
        pair = (event.server, event.tool)
        state = self._windows.get(pair)
        if state is None:
            state = self._windows[pair] = _Window()
        error = 1 if event.outcome in self._outcomes else 0
        bits = (state.bits << 1) | error
        state.errors += error - ((bits >> self.window) & 1)
        state.bits = bits & self._mask
        state.calls += 1
        if not state.alerting and state.errors >= self.threshold:
            state.alerting = True
            return self._signal(event, state, recovery=False)
        if state.alerting and state.errors < self.recover_below:
            state.alerting = False
            return self._signal(event, state, recovery=True)
        return None

    def errors(self, server: str, tool: str) -> int:
        """Errors among the last `window` calls of the tool."""
        state = self._windows.get((server, tool))
        return 0 if state is None else state.errors

    def _signal(self, event: CallEvent, state: _Window, *, recovery: bool) -> Signal:
        last = min(state.calls, self.window)
        where = f"{event.tool!r} on {event.server!r}"
        if recovery:
            summary = f"{where} recovered: {state.errors} errors in the last {last} calls"
        else:
            summary = f"{where} is failing: {state.errors} errors in the last {last} calls"
        key = signal_key(self.name, server=event.server, tool=event.tool)
        details = {"errors": state.errors, "calls": last, "threshold": self.threshold, "last_outcome": event.outcome}
        severity = Severity.INFO if recovery else Severity.WARNING
        return Signal(self.name, key, severity, summary, event.at, details, event.server, recovery)


@dataclass(slots=True)
class _Server:
    restarts: deque[float]
    latencies: deque[float]
    problem: str = ""  # "", "down", "start_failed", "restart_loop"
    baseline: float = 0.0
    recent: float = 0.0
    samples: int = 0
    slow: bool = False
    last_restart: float = -math.inf


class Health:
    """A server that is down, fails to start, restarts in a loop, or got much slower than usual."""

    name = "health"

    def __init__(
        self,
        *,
        restart_limit: int = 3,
        restart_window: float = 300.0,
        latency_factor: float = 5.0,
        latency_min_samples: int = 20,
        latency_floor_ms: float = 50.0,
        latency_window: int = 11,
        baseline_alpha: float = 0.02,
    ) -> None:
        self.restart_limit = restart_limit
        self.restart_window = restart_window
        self.latency_factor = latency_factor
        self.latency_min_samples = latency_min_samples
        self.latency_floor_ms = latency_floor_ms
        self.baseline_alpha = baseline_alpha
        self.latency_window = latency_window
        self._servers: dict[str, _Server] = {}

    def _server(self, server: str) -> _Server:
        state = self._servers.get(server)
        if state is None:
            state = self._servers[server] = _Server(deque(maxlen=self.restart_limit), deque(maxlen=self.latency_window))
        return state

    def problem(self, server: str) -> str:
        """The open health problem of a server: "", "down", "start_failed" or "restart_loop"."""
        state = self._servers.get(server)
        return "" if state is None else state.problem

    def down(self, server: str, at: float, reason: str = "") -> Signal | None:
        state = self._server(server)
        if state.problem:
            return None
        state.problem = "down"
        return self._health(server, at, f"server {server!r} is down" + (f": {reason}" if reason else ""))

    def start_failed(self, server: str, at: float, error: str) -> Signal | None:
        state = self._server(server)
        if state.problem in ("start_failed", "restart_loop"):
            return None
        state.problem = "start_failed"
        return self._health(server, at, f"server {server!r} failed to start: {error}")

    def restarted(self, server: str, at: float) -> Signal | None:
        """The server came (back) up: counted towards a restart loop, or ends an outage."""
        state = self._server(server)
        settled = at - state.last_restart >= self.restart_window
        state.restarts.append(at)
        state.last_restart = at
        looping = len(state.restarts) == self.restart_limit and at - state.restarts[0] <= self.restart_window
        if looping:
            if state.problem == "restart_loop":
                return None
            state.problem = "restart_loop"
            count, span = len(state.restarts), at - state.restarts[0]
            return self._health(
                server, at, f"server {server!r} is restarting in a loop: {count} restarts in {span:.0f} s"
            )
        if state.problem in ("down", "start_failed") or (state.problem == "restart_loop" and settled):
            return self._recover(server, state, at, "is up again")
        return None

    def observe(self, event: CallEvent) -> Signal | None:
        """A completed call: ends an outage or a loop that has settled, and feeds the latency baseline."""
        if event.outcome == "denied":
            return None
        state = self._server(event.server)
        if state.problem == "down" and event.outcome == "ok":
            return self._recover(event.server, state, event.at, "answers again")
        if state.problem == "restart_loop" and event.at - state.last_restart >= self.restart_window:
            return self._recover(event.server, state, event.at, "has stopped restarting")
        return self._latency(event.server, state, event.latency_ms, event.at)

    def _latency(self, server: str, state: _Server, latency_ms: float, at: float) -> Signal | None:
        state.samples += 1
        state.latencies.append(latency_ms)
        state.recent = statistics.median(state.latencies)
        if state.samples == 1:
            state.baseline = latency_ms
        elif not state.slow:
            state.baseline += self.baseline_alpha * (state.recent - state.baseline)
        if state.samples < self.latency_min_samples:
            return None
        ratio = state.recent / state.baseline if state.baseline > 0 else math.inf
        if not state.slow and ratio > self.latency_factor and state.recent > self.latency_floor_ms:
            state.slow = True
            summary = f"server {server!r} is slow: {state.recent:.0f} ms against a usual {state.baseline:.0f} ms"
            return _latency_signal(server, state, Severity.WARNING, summary, at)
        if state.slow and ratio < self.latency_factor / 2:
            state.slow = False
            summary = f"server {server!r} latency is back to {state.recent:.0f} ms"
            return _latency_signal(server, state, Severity.INFO, summary, at)
        return None

    def _health(self, server: str, at: float, summary: str) -> Signal:
        key = signal_key(self.name, server=server)
        return Signal(
            self.name, key, Severity.CRITICAL, summary, at, {"problem": self._servers[server].problem}, server
        )

    def _recover(self, server: str, state: _Server, at: float, how: str) -> Signal:
        problem, state.problem = state.problem, ""
        key = signal_key(self.name, server=server)
        summary = f"server {server!r} {how}"
        return Signal(self.name, key, Severity.INFO, summary, at, {"problem": problem}, server, recovery=True)


def _latency_signal(server: str, state: _Server, severity: Severity, summary: str, at: float) -> Signal:
    """A latency signal (a recovery when INFO); built only when one is raised, not on every call."""
    details = {"recent_ms": round(state.recent, 3), "baseline_ms": round(state.baseline, 3)}
    key = signal_key("latency", server=server)
    return Signal("latency", key, severity, summary, at, details, server, recovery=severity is Severity.INFO)
