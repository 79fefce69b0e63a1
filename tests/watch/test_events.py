"""The values detectors read and write: severity by risk, signal keys, and signals themselves."""

from __future__ import annotations

import dataclasses

import pytest

from bastion.watch.events import OUTCOMES, RISKS, CallEvent, Severity, Signal, severity_for_risk, signal_key


def test_severity_grows_with_the_risk_of_the_tool() -> None:
    assert [severity_for_risk(risk) for risk in RISKS] == [
        Severity.INFO,
        Severity.WARNING,
        Severity.CRITICAL,
        Severity.CRITICAL,
        Severity.CRITICAL,
    ]


def test_an_unknown_risk_class_counts_as_write() -> None:
    assert severity_for_risk("") is Severity.WARNING
    assert severity_for_risk("teleport") is Severity.WARNING


def test_severities_rank_in_order_for_comparisons() -> None:
    ranked = sorted(Severity, key=lambda severity: severity.rank)
    assert ranked == [Severity.INFO, Severity.WARNING, Severity.CRITICAL]
    assert Severity.CRITICAL.rank > Severity.INFO.rank


def test_a_signal_key_names_the_detector_then_its_parts_in_the_order_given() -> None:
    assert signal_key("first_use", server="fs", tool="write_file") == "first_use:server=fs,tool=write_file"
    assert signal_key("volume", tool="t", server="s") == "volume:tool=t,server=s"
    assert signal_key("health") == "health:"


def test_a_signal_defaults_to_no_details_no_server_and_not_a_recovery() -> None:
    found = Signal("health", "health:server=fs", Severity.CRITICAL, "fs is down", 10.0)
    assert (dict(found.details), found.server, found.recovery) == ({}, "", False)
    assert Signal("health", "k", Severity.INFO, "s", 1.0).details is not found.details


def test_call_events_are_frozen_values() -> None:
    event = CallEvent(1.0, "alice", "fs", "read_file", "read", OUTCOMES[0], 3.5)
    assert event == CallEvent(1.0, "alice", "fs", "read_file", "read", "ok", 3.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.outcome = "denied"  # pyright: ignore[reportAttributeAccessIssue]
