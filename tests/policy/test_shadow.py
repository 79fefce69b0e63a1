"""The shadow report: the calls of a period the candidate policy would have decided otherwise."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import orjson

from bastion.policy.shadow import ShadowRow, ShadowSummary, difference, shadow_report
from bastion.store.audit import AuditStore, EntryRow, SearchFilter


class Searched:
    """The one part of an audit store the report reads: search by kind and period."""

    def __init__(self, entries: list[tuple[str, int, dict[str, Any]]]) -> None:
        self._entries = entries
        self.asked: list[SearchFilter] = []

    def search(self, filters: SearchFilter) -> list[tuple[str, EntryRow]]:
        self.asked.append(filters)
        return [
            (log, EntryRow(index, b"", orjson.dumps(entry), entry["t"] / 1000, entry["kind"]))
            for log, index, entry in self._entries
            if entry["kind"] == filters.kind
        ]


def read(log_id: str, row: EntryRow) -> Mapping[str, Any]:
    return cast(dict[str, Any], orjson.loads(row.entry))


def call(t: int, live: str, candidate: str | None, server: str = "fs", kind: str = "call.intent") -> dict[str, Any]:
    decision: dict[str, Any] = {"action": live, "rule": f"live.{live}"}
    if candidate is not None:
        decision["candidate"] = {"action": candidate, "rule": f"cand.{candidate}", "reason": "because"}
    return {"kind": kind, "t": t, "client": "alice", "server": {"name": server}, "tool": "tool", "decision": decision}


def report(entries: list[tuple[str, int, dict[str, Any]]], server: str | None = None) -> ShadowSummary:
    return shadow_report(cast(AuditStore, Searched(entries)), read, 0.0, server=server)


def test_only_calls_decided_differently_are_rows_and_every_compared_call_is_counted() -> None:
    summary = report(
        [
            ("log", 1, call(1000, "allow", "allow")),
            ("log", 2, call(2000, "allow", "deny")),
            ("log", 3, call(3000, "allow", None)),
            ("log", 4, call(4000, "deny", "allow", kind="call.denied")),
        ]
    )
    assert summary.compared == 3
    assert [(row.index, row.live, row.candidate) for row in summary.rows] == [
        (2, "allow", "deny"),
        (4, "deny", "allow"),
    ]
    assert (summary.would_refuse, summary.would_allow) == (1, 1)


def test_rows_come_oldest_first_across_logs_and_kinds() -> None:
    summary = report(
        [
            ("b", 9, call(5000, "allow", "deny")),
            ("a", 1, call(5000, "allow", "deny")),
            ("a", 0, call(1000, "deny", "allow", kind="call.denied")),
        ]
    )
    assert [(row.log, row.index) for row in summary.rows] == [("a", 0), ("a", 1), ("b", 9)]
    assert summary.rows[0].time == 1.0


def test_a_server_filter_leaves_other_servers_out_of_the_count_too() -> None:
    summary = report(
        [("l", 1, call(1, "allow", "deny", server="fs")), ("l", 2, call(2, "allow", "deny", server="git"))],
        server="git",
    )
    assert summary.compared == 1
    assert [row.server for row in summary.rows] == ["git"]


def test_the_report_asks_the_store_for_call_entries_of_the_period_only() -> None:
    store = Searched([])
    summary = shadow_report(cast(AuditStore, store), read, 100.0, 200.0)
    assert (summary.compared, summary.rows) == (0, [])
    assert [(f.kind, f.since, f.until) for f in store.asked] == [
        ("call.intent", 100.0, 200.0),
        ("call.denied", 100.0, 200.0),
    ]


def test_a_row_serialises_every_field_and_a_missing_time_reads_as_zero() -> None:
    entry = call(0, "approve", "deny")
    del entry["t"]
    row = difference("log", 3, entry)
    assert isinstance(row, ShadowRow)
    data = row.to_dict()
    assert data["time"] == 0.0
    assert (data["live"], data["live_rule"], data["candidate_reason"], data["enforced"]) == (
        "approve",
        "live.approve",
        "because",
        True,
    )
    assert set(data) == set(ShadowRow.__slots__)
