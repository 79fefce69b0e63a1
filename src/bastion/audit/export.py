"""Exports of the log for other systems: JSONL (entries as recorded) and OCSF for SIEMs.

Every exported event carries its log, index and leaf hash, so a copy in a SIEM can be
checked against the log (and its inclusion proven with `bastion audit prove`).
"""

from __future__ import annotations

from typing import Any

import orjson

from bastion import __version__
from bastion.store.audit import EntryRow

__all__ = ["OCSF_API_ACTIVITY", "to_jsonl", "to_ocsf"]

OCSF_API_ACTIVITY = 6003
OCSF_VERSION = "1.3.0"
_OTHER = 99


def to_jsonl(log_id: str, row: EntryRow) -> bytes:
    return orjson.dumps(
        {"log": log_id, "index": row.idx, "leaf_hash": row.leaf.hex(), "entry": orjson.loads(row.entry)}
    )


def to_ocsf(log_id: str, row: EntryRow) -> dict[str, Any] | None:
    """An OCSF API Activity (6003) event for a tool call's outcome or denial; None for other entries."""
    entry = orjson.loads(row.entry)
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
