"""Detectors over calls and server events: first use, definition drift, k-of-n errors, health."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.watch.detectors import ErrorRate, FirstUse, Health, definition_drift, new_server, version_changed
from bastion.watch.events import CallEvent, Severity, severity_for_risk, signal_key

T0 = 1_700_000_000.0


def call(
    tool: str = "read_file",
    *,
    at: float = T0,
    client: str = "claude",
    server: str = "fs",
    risk: str = "read",
    outcome: str = "ok",
    latency_ms: float = 10.0,
) -> CallEvent:
    return CallEvent(at, client, server, tool, risk, outcome, latency_ms)


# First use


@pytest.mark.parametrize(
    ("risk", "severity"),
    [
        ("read", Severity.INFO),
        ("write", Severity.WARNING),
        ("network", Severity.CRITICAL),
        ("destructive", Severity.CRITICAL),
        ("exec", Severity.CRITICAL),
        ("something new", Severity.WARNING),
    ],
)
def test_a_first_tool_call_signals_at_once_with_severity_by_risk(risk: str, severity: Severity) -> None:
    detector = FirstUse()
    signal = detector.observe(call("write_file", at=T0 + 5, risk=risk))
    assert signal is not None
    assert signal.at == T0 + 5
    assert signal.severity is severity
    assert signal.key == "first_use:server=fs,tool=write_file"
    assert signal.server == "fs"
    assert severity_for_risk(risk) is severity


def test_the_second_call_of_a_tool_is_not_new() -> None:
    detector = FirstUse()
    assert detector.observe(call()) is not None
    assert detector.observe(call(at=T0 + 1)) is None


def test_a_clients_first_use_of_a_server_and_of_a_tool_are_signalled() -> None:
    detector = FirstUse()
    detector.observe(call("read_file", client="claude"))
    detector.observe(call("list_dir", client="claude"))
    first_server = detector.observe(call("read_file", client="cursor"))
    first_tool = detector.observe(call("list_dir", client="cursor"))
    assert first_server is not None
    assert first_server.key == "first_use:client=cursor,server=fs"
    assert first_tool is not None
    assert first_tool.key == "first_use:client=cursor,server=fs,tool=list_dir"


def test_one_signal_per_event_the_broadest_novelty_wins() -> None:
    detector = FirstUse()
    signal = detector.observe(call("delete_file", client="new-agent", risk="destructive"))
    assert signal is not None
    assert signal.key == signal_key("first_use", server="fs", tool="delete_file")
    assert detector.observe(call("delete_file", client="new-agent", risk="destructive")) is None


def test_the_learning_period_learns_first_uses_silently() -> None:
    detector = FirstUse(learn_until=T0 + 3600)
    assert detector.observe(call("write_file", risk="write", at=T0)) is None
    assert detector.observe(call("write_file", risk="write", at=T0 + 7200)) is None, "learned"
    signal = detector.observe(call("exec_cmd", risk="exec", at=T0 + 7200))
    assert signal is not None
    assert signal.severity is Severity.CRITICAL


def test_expected_tools_never_signal() -> None:
    detector = FirstUse(expected={"fs": ["read_file", "write_file"]})
    assert detector.observe(call("write_file", risk="write")) is None
    assert detector.observe(call("write_file", client="cursor", risk="write")) is None
    assert detector.observe(call("delete_file", risk="destructive")) is not None


def test_seen_state_survives_a_restart_through_json() -> None:
    detector = FirstUse()
    detector.observe(call("read_file"))
    saved = json.dumps(sorted(detector.seen()))
    restored = FirstUse.from_seen(json.loads(saved))
    assert restored.seen() == detector.seen()
    assert restored.observe(call("read_file", at=T0 + 10)) is None


@pytest.mark.parametrize(
    "entry", [[], ["tool", "fs"], ["bogus", "a", "b"], ["client_tool", "c", "s"], ["tool", "fs", 3]]
)
def test_malformed_seen_state_is_refused_not_dropped(entry: list[object]) -> None:
    with pytest.raises(ValueError, match="first-use"):
        FirstUse.from_seen([entry])


# Definition drift


def test_drift_findings_become_one_warning_or_critical_when_blocked() -> None:
    findings = ["server 'fs': tool 'write_file' changed: hidden and refused until reviewed"]
    [warning] = definition_drift("fs", findings, T0)
    [critical] = definition_drift("fs", findings, T0, blocked=True)
    assert warning.severity is Severity.WARNING
    assert critical.severity is Severity.CRITICAL
    assert warning.key == critical.key == "definition_drift:server=fs"
    assert warning.details["findings"] == tuple(findings)
    assert definition_drift("fs", [], T0) == []


def test_new_server_and_version_change_are_warnings() -> None:
    assert new_server("git", T0).key == "new_server:server=git"
    changed = version_changed("git", "1.0.0", "1.0.1", T0)
    assert changed.severity is Severity.WARNING
    assert changed.details == {"old": "1.0.0", "new": "1.0.1"}


# Error rate


def feed(detector: ErrorRate, outcomes: list[str], start: float = T0) -> list[tuple[int, bool]]:
    """(index, recovery) of every signal."""
    signals: list[tuple[int, bool]] = []
    for index, outcome in enumerate(outcomes):
        signal = detector.observe(call("query", at=start + index, outcome=outcome))
        if signal is not None:
            signals.append((index, signal.recovery))
    return signals


def test_four_errors_in_twenty_calls_do_not_signal_five_do() -> None:
    detector = ErrorRate()
    four = ["ok"] * 16 + ["error"] * 4
    assert feed(detector, four) == []
    assert detector.errors("fs", "query") == 4
    assert feed(detector, ["tool_error"], start=T0 + 100) == [(0, False)]


def test_errors_count_k_of_n_not_consecutive() -> None:
    detector = ErrorRate(window=20, threshold=5)
    scattered = ["ok", "error", "ok", "ok", "error", "ok", "error", "ok", "ok", "error", "ok", "error"]
    assert feed(detector, scattered) == [(11, False)]


def test_errors_older_than_the_window_fall_out_and_recovery_is_signalled() -> None:
    detector = ErrorRate(window=20, threshold=5)
    signals = feed(detector, ["error"] * 5 + ["ok"] * 20)
    # Recovery when fewer than ceil(5 / 2) = 3 errors remain among the last 20: at call 22.
    assert signals == [(4, False), (22, True)]


def test_denied_calls_are_not_errors_of_the_server() -> None:
    detector = ErrorRate(threshold=1)
    assert feed(detector, ["denied"] * 10) == []


def test_the_error_signal_names_server_and_tool() -> None:
    detector = ErrorRate(threshold=1)
    signal = detector.observe(call("query", server="db", outcome="error", at=T0 + 3))
    assert signal is not None
    assert signal.key == "error_rate:server=db,tool=query"
    assert signal.server == "db"
    assert signal.at == T0 + 3


@given(st.lists(st.sampled_from(["ok", "error", "tool_error", "denied"]), max_size=200))
def test_error_count_matches_a_naive_window(outcomes: list[str]) -> None:
    detector = ErrorRate(window=20, threshold=5)
    signals = feed(detector, outcomes)
    counted = [o for o in outcomes if o != "denied"][-20:]
    assert detector.errors("fs", "query") == sum(o != "ok" for o in counted)
    assert [recovery for _, recovery in signals] == [i % 2 == 1 for i in range(len(signals))], "alternating"


def test_an_impossible_threshold_is_refused() -> None:
    with pytest.raises(ValueError, match="threshold"):
        ErrorRate(window=5, threshold=6)


# Health


def test_a_server_that_goes_down_signals_once_and_recovers_on_restart() -> None:
    health = Health()
    down = health.down("fs", T0, "exited with status 1")
    assert down is not None
    assert down.severity is Severity.CRITICAL
    assert down.key == "health:server=fs"
    assert health.down("fs", T0 + 1) is None
    up = health.restarted("fs", T0 + 2)
    assert up is not None
    assert up.recovery
    assert up.key == down.key


def test_a_failing_start_is_critical() -> None:
    health = Health()
    signal = health.start_failed("fs", T0, "command not found")
    assert signal is not None
    assert signal.severity is Severity.CRITICAL
    assert "command not found" in signal.summary
    assert health.problem("fs") == "start_failed"


def test_a_restart_loop_signals_and_settles_after_a_quiet_window() -> None:
    health = Health(restart_limit=3, restart_window=300.0)
    assert health.restarted("fs", T0) is None
    assert health.restarted("fs", T0 + 60) is None
    loop = health.restarted("fs", T0 + 120)
    assert loop is not None
    assert "loop" in loop.summary
    assert health.restarted("fs", T0 + 180) is None, "signalled once"
    assert health.observe(call(server="fs", at=T0 + 200)) is None, "still within the window"
    settled = health.observe(call(server="fs", at=T0 + 480))
    assert settled is not None
    assert settled.recovery


def test_restarts_spread_over_more_than_the_window_are_no_loop() -> None:
    health = Health(restart_limit=3, restart_window=300.0)
    assert [health.restarted("fs", T0 + i * 200) for i in range(5)] == [None] * 5


def test_a_successful_call_clears_an_outage() -> None:
    health = Health()
    health.down("fs", T0)
    assert health.observe(call(outcome="error", at=T0 + 1)) is None
    recovered = health.observe(call(outcome="ok", at=T0 + 2))
    assert recovered is not None
    assert recovered.recovery


def test_latency_far_above_the_servers_own_baseline_signals_and_recovers() -> None:
    health = Health(latency_factor=5.0, latency_min_samples=20)
    at = T0
    for _ in range(100):
        at += 1
        assert health.observe(call(latency_ms=40.0, at=at)) is None
    slow = None
    for _ in range(20):
        at += 1
        slow = slow or health.observe(call(latency_ms=400.0, at=at))
    assert slow is not None
    assert slow.key == "latency:server=fs"
    assert slow.severity is Severity.WARNING
    back = None
    for _ in range(20):
        at += 1
        back = back or health.observe(call(latency_ms=40.0, at=at))
    assert back is not None
    assert back.recovery


def test_a_single_slow_call_or_a_young_baseline_does_not_signal() -> None:
    health = Health()
    for i in range(5):
        assert health.observe(call(latency_ms=1000.0 if i == 4 else 10.0, at=T0 + i)) is None
    for i in range(100):
        assert health.observe(call(latency_ms=10.0, at=T0 + 10 + i)) is None
    assert health.observe(call(latency_ms=5000.0, at=T0 + 200)) is None


def test_slow_but_fast_in_absolute_terms_does_not_signal() -> None:
    health = Health(latency_floor_ms=50.0)
    for i in range(50):
        health.observe(call(latency_ms=1.0, at=T0 + i))
    assert all(health.observe(call(latency_ms=20.0, at=T0 + 100 + i)) is None for i in range(30))
