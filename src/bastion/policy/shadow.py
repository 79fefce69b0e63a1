"""The shadow report: where a candidate policy, decided beside the live one on real traffic, would
have decided a call differently (`bastion policy shadow`, the dashboard's Shadow page).

The gateway records the candidate's decision inside each call's own decision (`decision.candidate`
in `call.intent` and `call.denied` entries), so the report reads the audit log and compares; it
needs no key and decides nothing again. `bastion policy replay` is the other direction: the past
decided afresh under a policy that was not running then.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any, cast

from bastion.store.audit import AuditStore, EntryRow, SearchFilter

__all__ = ["ShadowRow", "ShadowSummary", "difference", "shadow_report"]

CALL_KINDS = ("call.intent", "call.denied")
ReadEntry = Callable[[str, EntryRow], Mapping[str, Any]]
"""A stored row's entry, checked against the row (`audit.columns.indexed_entry` or the dashboard's reader)."""


@dataclass(frozen=True, slots=True)
class ShadowRow:
    """One call the candidate would have decided differently."""

    log: str
    index: int
    time: float
    kind: str
    client: str
    server: str
    tool: str
    live: str
    """What the live policy decided (for a monitored call: what it would have applied)."""
    live_rule: str
    candidate: str
    candidate_rule: str
    candidate_reason: str
    enforced: bool
    """False when the live decision was only recorded (monitor mode) and the call went through."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ShadowSummary:
    compared: int
    """Calls in the period that carry a candidate decision."""
    rows: list[ShadowRow]
    """Those decided differently, oldest first."""
    would_refuse: int
    would_allow: int


def _mapping(value: object) -> Mapping[str, Any]:
    return cast(Mapping[str, Any], value) if isinstance(value, Mapping) else {}


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def compared(entry: Mapping[str, Any]) -> bool:
    """Whether a call entry carries a candidate decision at all."""
    return entry.get("kind") in CALL_KINDS and bool(_mapping(_mapping(entry.get("decision")).get("candidate")))


def difference(log_id: str, index: int, entry: Mapping[str, Any]) -> ShadowRow | None:
    """The call's two decisions when their actions differ; None when they agree or there is no candidate."""
    kind = _text(entry.get("kind"))
    if kind not in CALL_KINDS:
        return None
    decision = _mapping(entry.get("decision"))
    candidate = _mapping(decision.get("candidate"))
    if not candidate:
        return None
    live = "deny" if kind == "call.denied" else _text(decision.get("action")) or "allow"
    shadow = _text(candidate.get("action"))
    if not shadow or shadow == live:
        return None
    moment = entry.get("t")
    return ShadowRow(
        log_id,
        index,
        moment / 1000 if isinstance(moment, int) else 0.0,
        kind,
        _text(entry.get("client")),
        _text(_mapping(entry.get("server")).get("name")),
        _text(entry.get("tool")),
        live,
        _text(decision.get("rule")),
        shadow,
        _text(candidate.get("rule")),
        _text(candidate.get("reason")),
        decision.get("enforced") is not False,
    )


def _entries(
    store: AuditStore, read: ReadEntry, since: float, until: float | None
) -> Iterator[tuple[str, int, Mapping[str, Any]]]:
    for kind in CALL_KINDS:
        for log_id, row in store.search(SearchFilter(kind=kind, since=since, until=until, limit=10_000_000)):
            yield log_id, row.idx, read(log_id, row)


def shadow_report(
    store: AuditStore, read: ReadEntry, since: float, until: float | None = None, server: str | None = None
) -> ShadowSummary:
    """Every call of the period whose candidate decision differs from the live one, oldest first."""
    rows: list[ShadowRow] = []
    seen = 0
    for log_id, index, entry in _entries(store, read, since, until):
        if server is not None and _text(_mapping(entry.get("server")).get("name")) != server:
            continue
        if not compared(entry):
            continue
        seen += 1
        row = difference(log_id, index, entry)
        if row is not None:
            rows.append(row)
    rows.sort(key=lambda row: (row.time, row.log, row.index))
    refuse = sum(1 for row in rows if row.candidate == "deny")
    allow = sum(1 for row in rows if row.candidate == "allow")
    return ShadowSummary(seen, rows, refuse, allow)
