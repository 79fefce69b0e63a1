"""What each stored column of an entry's row must say, given the entry it belongs to: the rules the
verifier holds every row to, and readers use to read a row as its entry. Pure: values in, values out.

The index columns (`time`, `kind`, `server`, `tool`, `client`, `decision`) must say what the
entry says (`entry.index_columns`, which the writer fills them with); the payload columns
(`epoch`, `sealed`, `redacted`) must fit the entry's commitments and day; with the master key,
the payload itself must hold exactly the values the entry commits to.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import orjson

from bastion.audit.entry import ENTRY_VERSION, commit, index_columns
from bastion.audit.payload import PayloadCipher, epoch_of
from bastion.errors import AuditIntegrityError, StoreError
from bastion.store.audit import EntryRow

__all__ = [
    "MALFORMED",
    "Problem",
    "check_payload",
    "entry_problem",
    "index_problem",
    "indexed_entry",
    "payload_day",
    "payload_problem",
    "read_entry",
]

_DAY = 86400.0
_EDGE = 0.001
"""Within a millisecond of midnight the day of a moment is computed afresh, never taken from a cache."""
MALFORMED = (orjson.JSONDecodeError, KeyError, TypeError, ValueError, OverflowError, AttributeError)
"""What reading a malformed entry, column or payload may raise."""


@dataclass(frozen=True, slots=True)
class Problem:
    log_id: str
    index: int | None
    check: str
    detail: str
    column: str | None = None
    """The stored column that disagrees with what it should say, when one does."""

    def describe(self) -> str:
        where = (f"log {self.log_id}" if self.log_id else "store") + (
            f" index {self.index}" if self.index is not None else ""
        )
        check = f"{self.check} {self.column}" if self.column else self.check
        return f"{where}: {check}: {self.detail}"


def payload_day(moment: float) -> tuple[str, float, float]:
    """The payload day of `moment`, and the span of moments that certainly share it (empty near midnight)."""
    day = epoch_of(moment)
    midnight = moment - moment % _DAY
    if midnight + _EDGE <= moment < midnight + _DAY - _EDGE:
        return day, midnight + _EDGE, midnight + _DAY - _EDGE
    return day, 0.0, 0.0


def entry_problem(log_id: str, index: int, raw: bytes) -> Problem | None:
    """Whether the bytes are a version 1 entry that names this log and position."""
    try:
        entry = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return Problem(log_id, index, "entry bytes", "the entry is not JSON")
    if not isinstance(entry, dict):
        return Problem(log_id, index, "entry format", "the entry is not a JSON object")
    named = cast(dict[str, Any], entry)
    if named.get("v") != ENTRY_VERSION:
        return Problem(log_id, index, "entry format", "unknown entry version")
    if named.get("i") != index or named.get("log") != log_id:
        return Problem(log_id, index, "order", f"the entry says it is {named.get('log')}/{named.get('i')}")
    return None


def index_problem(log_id: str, index: int, entry: Mapping[str, Any], columns: tuple[Any, ...]) -> Problem | None:
    """The first index column (time, kind, server, tool, client, decision) that disagrees with the entry."""
    moment_s, kind, *rest = columns
    moment = entry.get("t")
    try:
        stored_ms: int | None = round(moment_s * 1000)
    except (TypeError, ValueError, OverflowError):
        stored_ms = None
    if stored_ms != moment:
        detail = f"the store says {moment_s!r} s, the entry says {moment} ms"
        return Problem(log_id, index, "index column", detail, "time")
    recorded = (entry.get("kind"), *index_columns(entry))
    for column, stored, says in zip(
        ("kind", "server", "tool", "client", "decision"), (kind, *rest), recorded, strict=True
    ):
        if stored != says:
            return Problem(log_id, index, "index column", f"the store says {stored!r}, the entry says {says!r}", column)
    return None


def payload_problem(
    log_id: str, index: int, entry: Mapping[str, Any], moment_s: float, epoch: Any, sealed: Any, redacted: Any
) -> Problem | None:
    """Whether the payload columns fit the entry: a payload filed under the entry's day for every entry
    that commits to values (still stored, or marked redacted), and nothing for one that does not."""

    def wrong(column: str, detail: str) -> Problem:
        return Problem(log_id, index, "payload", detail, column)

    if "commitments" not in entry:
        if epoch is not None:
            return wrong("epoch", f"the entry commits to no values, yet a payload day ({epoch!r}) is filed")
        if sealed:
            return wrong("sealed", "the entry commits to no values, yet a payload is stored")
        if redacted is not None:
            return wrong("redacted", "the entry commits to no values, yet its payload is marked redacted")
        return None
    if epoch is None:
        return wrong("epoch", "the entry commits to values, but no payload is filed for it")
    day = epoch_of(moment_s)
    if epoch != day:
        return wrong("epoch", f"the payload is filed under {epoch!r}, but the entry was written on {day}")
    if sealed and redacted is not None:
        return wrong("redacted", "the payload is stored, yet marked redacted")
    if not sealed and redacted is None:
        return wrong("sealed", "the payload was removed without being redacted")
    return None


# -- payloads ---------------------------------------------------------------------------------------------------


def check_payload(log_id: str, index: int, raw: bytes, sealed: bytes, data_key: bytes) -> Problem | None:
    """Decrypt one payload and check every value in it against the entry's salted commitment."""

    def wrong(detail: str) -> Problem:
        return Problem(log_id, index, "payload", detail, "sealed")

    try:
        plain = PayloadCipher.open(data_key, log_id, index, sealed)
    except StoreError:
        return wrong("the payload does not decrypt under its day's key: it was altered or moved")
    try:
        body = orjson.loads(plain)
        salt = bytes.fromhex(body["salt"])
        values = cast(dict[str, object], body["values"])
        commitments = cast(dict[str, str], orjson.loads(raw)["commitments"])
        names, committed = set(values), set(commitments)
    except MALFORMED:
        return wrong("the payload or the entry's commitments are malformed")
    if names != committed:
        return wrong(f"the payload holds {sorted(names)}, the entry commits to {sorted(committed)}")
    for name in sorted(names):
        text = values[name]
        if not isinstance(text, str) or commit(salt, name, text.encode("utf-8")) != commitments[name]:
            return wrong(f"the payload's {name} does not match the entry's commitment")
    return None


# -- readers ----------------------------------------------------------------------------------------------------


def read_entry(log_id: str, row: EntryRow) -> tuple[dict[str, Any], Problem | None]:
    """A stored row's entry, and what is wrong with the row, if anything: its leaf hash, the position the
    entry names, or an index column that disagrees with it.

    For readers that show or count entries (the dashboard, the evidence pack, replay): they use the
    entry, never the index columns, and a row with a problem marks its log as failing.
    """
    if hashlib.sha256(b"\x00" + row.entry).digest() != row.leaf:
        problem = Problem(log_id, row.idx, "entry bytes", "the entry does not match its stored leaf hash")
    else:
        problem = entry_problem(log_id, row.idx, row.entry)
    try:
        entry = orjson.loads(row.entry)
    except orjson.JSONDecodeError:
        return {}, problem or Problem(log_id, row.idx, "entry bytes", "the entry is not JSON")
    if not isinstance(entry, dict):
        return {}, problem or Problem(log_id, row.idx, "entry format", "the entry is not a JSON object")
    found = cast(dict[str, Any], entry)
    columns = (row.time, row.kind, row.server, row.tool, row.client, row.decision)
    return found, problem or index_problem(log_id, row.idx, found, columns)


def indexed_entry(log_id: str, row: EntryRow) -> dict[str, Any]:
    """The entry a row holds; AuditIntegrityError when the row disagrees with it (see `read_entry`)."""
    entry, problem = read_entry(log_id, row)
    if problem is not None:
        raise AuditIntegrityError(log_id, problem.index, problem.describe())
    return entry
