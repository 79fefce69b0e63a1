"""Exports of the log for other systems: JSONL (entries as recorded) and OCSF for SIEMs.

Every exported event carries its log, index and leaf hash, so a copy in a SIEM can be
checked against the log (and its inclusion proven with `bastion audit prove`).
"""

from __future__ import annotations

from typing import Any

import orjson

from bastion import __version__
from bastion.store.audit import EntryRow

__all__ = ["OCSF_API_ACTIVITY", "OCSF_DETECTION_FINDING", "to_jsonl", "to_ocsf"]

OCSF_API_ACTIVITY = 6003
OCSF_DETECTION_FINDING = 2004
OCSF_VERSION = "1.3.0"
_OTHER = 99


def to_jsonl(log_id: str, row: EntryRow) -> bytes:
    return orjson.dumps(
        {"log": log_id, "index": row.idx, "leaf_hash": row.leaf.hex(), "entry": orjson.loads(row.entry)}
    )


def to_ocsf(log_id: str, row: EntryRow) -> dict[str, Any] | None:
    """An OCSF API Activity (6003) event for a tool call's outcome or denial, a Detection Finding
    (2004) for an alert's change of state; None for other entries."""
    entry = orjson.loads(row.entry)
    if entry.get("kind") == "alert.change":
        return _finding(log_id, row, entry)
    if entry.get("kind") not in ("call.outcome", "call.denied"):
        return None
    server = entry.get("server") or {}
    decision = entry.get("decision") or {}
    failed = entry.get("kind") == "call.denied" or entry.get("status") != "ok"
    return {
        "class_uid": OCSF_API_ACTIVITY,
        "class_name": "API Activity",
        "category_uid": 6,
        "category_name": "Application Activity",
        "activity_id": _OTHER,
        "activity_name": entry.get("method", "call"),
        "type_uid": OCSF_API_ACTIVITY * 100 + _OTHER,
        "time": entry["t"],
        "severity_id": 3 if entry.get("kind") == "call.denied" else 1,
        "status_id": 2 if failed else 1,
        "status": "Failure" if failed else "Success",
        "status_detail": decision.get("reason") if entry.get("kind") == "call.denied" else entry.get("status"),
        "actor": {
            "user": {"name": entry.get("client"), "uid": entry.get("client")},
            "session": {"uid": entry.get("session")},
        },
        "api": {
            "operation": entry.get("tool") or entry.get("method"),
            "service": {"name": server.get("name"), "version": server.get("version")},
            "request": {"uid": entry.get("request")},
        },
        "duration": round(entry["latency_us"] / 1000) if isinstance(entry.get("latency_us"), int) else None,
        "metadata": {
            "version": OCSF_VERSION,
            "product": {"name": "Bastion", "vendor_name": "Bastion", "version": __version__},
            "log_name": log_id,
            "sequence": row.idx,
            "uid": row.leaf.hex(),
        },
        "unmapped": {"decision": decision, "commitments": entry.get("commitments", {}), "kind": entry.get("kind")},
    }


_FINDING_ACTIVITY = {"open": 1, "acknowledged": 2, "snoozed": 2, "resolved": 3}
_FINDING_STATUS = {"open": 1, "acknowledged": 2, "snoozed": 3, "resolved": 4}
_SEVERITY = {"info": 1, "warning": 3, "critical": 5}


def _finding(log_id: str, row: EntryRow, entry: dict[str, Any]) -> dict[str, Any]:
    """An alert's change of state as an OCSF Detection Finding (class 2004)."""
    state = str(entry.get("to"))
    activity = _FINDING_ACTIVITY.get(state, 99)
    return {
        "class_uid": OCSF_DETECTION_FINDING,
        "class_name": "Detection Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": activity,
        "type_uid": OCSF_DETECTION_FINDING * 100 + activity,
        "time": entry["t"],
        "severity_id": _SEVERITY.get(str(entry.get("severity")), 0),
        "status_id": _FINDING_STATUS.get(state, 99),
        "status": state,
        "finding_info": {
            "uid": entry.get("alert"),
            "title": entry.get("reason") or entry.get("alert"),
            "analytic": {"name": entry.get("detector"), "type_id": 1, "type": "Rule"},
        },
        "actor": {"user": {"name": entry.get("by")}},
        "message": entry.get("note") or entry.get("reason"),
        "metadata": {
            "version": OCSF_VERSION,
            "product": {"name": "Bastion", "vendor_name": "Bastion", "version": __version__},
            "log_name": log_id,
            "sequence": row.idx,
            "uid": row.leaf.hex(),
        },
    }
