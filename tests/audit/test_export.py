"""Exports: JSONL carries each entry as recorded, OCSF maps call outcomes, denials and alerts, and skips the rest."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pytest

from bastion.audit.export import OCSF_API_ACTIVITY, OCSF_DETECTION_FINDING, to_jsonl, to_ocsf
from bastion.store.audit import EntryRow


def row(entry: dict[str, Any], idx: int = 4) -> EntryRow:
    raw = orjson.dumps(entry)
    return EntryRow(idx, hashlib.sha256(b"\x00" + raw).digest(), raw, entry["t"] / 1000, str(entry["kind"]))


OUTCOME = {
    "kind": "call.outcome",
    "t": 1_700_000_000_000,
    "i": 4,
    "tool": "read_file",
    "client": "alice",
    "status": "ok",
    "latency_us": 12_600,
    "server": {"name": "fs", "version": "1.2"},
    "request": "7",
    "session": "s1",
}


def test_jsonl_carries_the_log_index_leaf_hash_and_the_entry_as_recorded() -> None:
    exported = row(OUTCOME)
    assert orjson.loads(to_jsonl("log1", exported)) == {
        "log": "log1",
        "index": 4,
        "leaf_hash": exported.leaf.hex(),
        "entry": OUTCOME,
    }


def test_a_successful_call_is_an_api_activity_that_succeeded() -> None:
    event = to_ocsf("log1", row(OUTCOME))
    assert event is not None
    assert (event["class_uid"], event["type_uid"], event["status"], event["status_id"]) == (
        OCSF_API_ACTIVITY,
        600399,
        "Success",
        1,
    )
    assert event["api"]["operation"] == "read_file"
    assert event["api"]["service"] == {"name": "fs", "version": "1.2"}
    assert event["duration"] == 13  # 12.6 ms, rounded
    assert (event["metadata"]["log_name"], event["metadata"]["sequence"]) == ("log1", 4)


def test_a_denied_call_is_a_failure_of_medium_severity_with_the_decisions_reason() -> None:
    denied = {**OUTCOME, "kind": "call.denied", "decision": {"action": "deny", "reason": "rule r1"}}
    del denied["status"]
    event = to_ocsf("log1", row(denied))
    assert event is not None
    assert (event["status"], event["severity_id"], event["status_detail"]) == ("Failure", 3, "rule r1")


def test_an_alert_change_is_a_detection_finding() -> None:
    alert = {"kind": "alert.change", "t": 5, "to": "resolved", "severity": "critical", "alert": "a1", "by": "bob"}
    event = to_ocsf("log1", row(alert))
    assert event is not None
    assert (event["class_uid"], event["activity_id"], event["status_id"], event["severity_id"]) == (
        OCSF_DETECTION_FINDING,
        3,
        4,
        5,
    )
    assert event["actor"] == {"user": {"name": "bob"}}


@pytest.mark.parametrize("kind", ["call.intent", "gateway.start", "heartbeat"])
def test_other_entries_have_no_ocsf_event(kind: str) -> None:
    assert to_ocsf("log1", row({"kind": kind, "t": 1})) is None
