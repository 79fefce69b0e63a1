"""The offline verifier's core: replays one log's rows in order, recomputes the tree, checks every
checkpoint and every column. Pure: rows in, report out; the store supplies the rows (`storewide`
runs it over a whole store, as every command and page that verifies does).

Needs only the rows (from a store or an export), the checkpoints and the trusted public keys.
Finds a changed byte (the leaf no longer matches), deleted, swapped or reordered entries
(positions and the index inside each entry disagree), time going backwards, an index column
(time, kind, server, tool, client, decision) or a payload column (epoch, sealed, redacted) that
disagrees with the entry it belongs to, a stored subtree or checkpoint row that disagrees with the
recomputed tree or its signed note, a rewritten tail (roots no longer match signed checkpoints), a
truncated or rolled-back store (a signed checkpoint or witness is larger than the log), and forged
checkpoints. What each column must say is in `columns`, which readers use too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import orjson

from bastion.audit.checkpoint import CheckpointError, Verifier, verify_note
from bastion.audit.columns import (
    MALFORMED,
    Problem,
    entry_problem,
    index_problem,
    payload_day,
    payload_problem,
)
from bastion.audit.entry import ENTRY_VERSION, index_columns
from bastion.audit.merkle import CompactRange
from bastion.store.audit import STORED_NODE_LEVEL, CheckpointRow, LogRow, StoredEntry

__all__ = ["Checked", "LogReport", "Problem", "Seen", "check_rows", "verify_log"]

_NOTED = frozenset({"payload.redacted", "payload.shredded", "gateway.start"})


@dataclass(slots=True)
class Seen:
    """What a log's rows say about the rest of the store, for the checks that need every log."""

    redacted: list[int] = field(default_factory=list[int])
    """Indices whose payload was removed (the redacted column is set)."""
    targets: set[tuple[str, int]] = field(default_factory=set[tuple[str, int]])
    """(log, index) of every payload a `payload.redacted` entry names."""
    shredded: set[str] = field(default_factory=set[str])
    """Every day a `payload.shredded` entry names."""
    epochs: dict[str, int] = field(default_factory=dict[str, int])
    """Day of the payloads still stored → the first index holding one."""
    start_pid: int | None = None
    """The process id the log's `gateway.start` entry (its first) records."""

    def merge(self, other: Seen) -> None:
        self.redacted += other.redacted
        self.targets |= other.targets
        self.shredded |= other.shredded
        for epoch, index in other.epochs.items():
            self.epochs.setdefault(epoch, index)
        if other.start_pid is not None:
            self.start_pid = other.start_pid


@dataclass
class LogReport:
    log_id: str
    origin: str
    size: int = 0
    checkpoints: int = 0
    covered: int = 0
    problems: list[Problem] = field(default_factory=list[Problem])
    seen: Seen = field(default_factory=Seen)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True, slots=True)
class Checked:
    """A run of consecutive rows, checked on their own: their leaf hashes, and the first bad row."""

    start: int
    leaves: bytes
    """32 bytes per good row, in order."""
    first_time: int
    last_time: int
    seen: Seen
    bad: StoredEntry | None = None
    """The first row that failed a check (everything before it is in `leaves`)."""


def check_rows(log_id: str, start: int, rows: Iterable[StoredEntry]) -> Checked:
    """Hash and check a run of rows that should begin at index `start`; pure, so it can run anywhere.

    The hot loop of verification: every check is inlined, and `_row_problem` says afterwards what
    failed about the first bad row.
    """
    sha256, loads = hashlib.sha256, orjson.loads
    leaves = bytearray()
    first_time = last_time = -1
    expected = start
    seen = Seen()
    day, day_lo, day_hi = "", 0.0, 0.0
    last_epoch: str | None = None
    for row in rows:
        idx, stored_leaf, raw, moment_s, kind, server, tool, client, decision, epoch, sealed, redacted = row
        leaf = sha256(b"\x00" + raw).digest()
        moment = -1
        try:
            entry = loads(raw)
            moment = entry["t"]
            fine = (
                idx == expected
                and leaf == stored_leaf
                and entry["i"] == expected
                and entry["v"] == ENTRY_VERSION
                and entry["log"] == log_id
                and type(moment) is int
                and moment >= last_time
                and kind == entry["kind"]
                and round(moment_s * 1000) == moment
            )
            if fine:
                named, decided = entry.get("server"), entry.get("decision")  # `index_columns`, inlined for dicts
                fine = (
                    server == (named.get("name") if named.__class__ is dict else None)
                    and tool == entry.get("tool")
                    and client == entry.get("client")
                    and decision == (decided.get("action") if decided.__class__ is dict else None)
                ) or (server, tool, client, decision) == index_columns(entry)
            if fine:
                if "commitments" in entry:
                    if not day_lo <= moment_s < day_hi:
                        day, day_lo, day_hi = payload_day(moment_s)
                    fine = epoch == day and (redacted is None if sealed else redacted is not None)
                else:
                    fine = epoch is None and not sealed and redacted is None
        except MALFORMED:
            fine = False
        if not fine:
            return Checked(start, bytes(leaves), first_time, last_time, seen, row)
        if kind in _NOTED:
            _note(seen, idx, kind, entry)  # pyright: ignore[reportPossiblyUnboundVariable]
        if epoch is not None:
            if not sealed:
                seen.redacted.append(idx)
            elif epoch != last_epoch:
                seen.epochs.setdefault(epoch, idx)
                last_epoch = epoch
        if first_time < 0:
            first_time = moment
        last_time = moment
        leaves += leaf
        expected += 1
    return Checked(start, bytes(leaves), first_time, last_time, seen)


def _note(seen: Seen, idx: int, kind: str, entry: Mapping[str, Any]) -> None:
    """Remember what an entry says about other rows: a redaction's target, shredded days, the gateway's pid."""
    if kind == "payload.redacted":
        target = entry.get("target")
        if isinstance(target, dict):
            named = cast(dict[str, Any], target)
            log, index = named.get("log"), named.get("index")
            if isinstance(log, str) and type(index) is int:
                seen.targets.add((log, index))
    elif kind == "payload.shredded":
        days = entry.get("days")
        if isinstance(days, list):
            seen.shredded.update(day for day in cast(list[Any], days) if isinstance(day, str))
    elif idx == 0:
        pid = entry.get("pid")
        if type(pid) is int:
            seen.start_pid = pid


def verify_log(
    log: LogRow,
    entries: Iterable[StoredEntry] | Iterable[Checked],
    checkpoints: list[CheckpointRow],
    verifiers: list[Verifier],
    *,
    witnesses: Iterable[str] = (),
    owner_alive: bool = False,
    subtrees: Mapping[int, Iterable[tuple[int, bytes]]] | None = None,
    progress: Callable[[int], None] = lambda _n: None,
) -> LogReport:
    """Replay a log in order against its signed heads, its stored checkpoints and its stored subtrees.

    `entries` are the store's rows, or runs of them already checked by `check_rows` (in other
    processes, see `parallel`); either way the tree is folded and checked here. `subtrees` maps a
    level to the stored subtrees of that level, in index order, for the tree's size (none: not checked).
    """
    report = LogReport(log.log_id, log.origin)
    signed, expected_roots = _heads(log, checkpoints, witnesses, verifiers, report)
    streams = {level: iter(rows) for level, rows in (subtrees or {}).items()}
    completed: list[tuple[int, int, bytes]] | None = [] if subtrees is not None else None
    edge = CompactRange()
    push = edge.push
    previous_time = -1
    for checked in _runs(log.log_id, entries):
        report.seen.merge(checked.seen)
        if checked.first_time >= 0 and checked.first_time < previous_time:
            report.problems.append(Problem(log.log_id, checked.start, "time", "time goes backwards"))
            return report
        leaves = checked.leaves
        for offset in range(0, len(leaves), 32):
            push(leaves[offset : offset + 32], completed, STORED_NODE_LEVEL)
            roots = expected_roots.get(edge.size)
            if roots is not None:
                root = edge.root()
                for expected, label in roots:
                    if expected != root:
                        report.problems.append(
                            Problem(log.log_id, edge.size - 1, "checkpoint", f"{label} does not match the entries")
                        )
                        return report
        if completed:
            problem = _check_subtrees(log.log_id, completed, streams)
            if problem is not None:
                report.problems.append(problem)
                return report
            completed.clear()
        progress(len(leaves) // 32)
        if checked.last_time >= 0:
            previous_time = checked.last_time
        if checked.bad is not None:
            _check_entry(log, checked.bad, edge.size, previous_time, report)
            if not report.problems:
                report.problems.append(Problem(log.log_id, edge.size, "entry format", "the entry is malformed"))
            return report
    size = edge.size
    report.size = size
    report.covered = max((n for n in signed if n <= size), default=0)
    beyond = [n for n in signed if n > size]
    if beyond:
        report.problems.append(
            Problem(
                log.log_id,
                size,
                "truncated",
                f"a signed checkpoint covers {max(beyond)} entries but the log has {size}",
            )
        )
    elif report.covered < size and not owner_alive:
        report.problems.append(
            Problem(
                log.log_id,
                report.covered,
                "unsigned tail",
                f"{size - report.covered} entries are not covered by a signed checkpoint",
            )
        )
    report.problems += _log_row(log, report.seen)
    return report


def _runs(log_id: str, entries: Iterable[StoredEntry] | Iterable[Checked]) -> Iterator[Checked]:
    """Runs of checked rows: passed through, or made here from plain rows."""
    run: list[StoredEntry] = []
    start = 0
    for item in entries:
        if isinstance(item, Checked):
            yield item
            continue
        run.append(item)
        if len(run) == RUN:
            yield check_rows(log_id, start, run)
            start += RUN
            run = []
    if run:
        yield check_rows(log_id, start, run)


RUN = 20000


def _check_subtrees(
    log_id: str, completed: list[tuple[int, int, bytes]], streams: dict[int, Iterator[tuple[int, bytes]]]
) -> Problem | None:
    """Each perfect subtree the entries completed against the one stored for it (they come in index order)."""
    for level, idx, node in completed:
        stored = next(streams[level], None) if level in streams else None
        last = ((idx + 1) << level) - 1
        where = f"the stored subtree of entries {idx << level}..{last} (level {level}, index {idx})"
        if stored is None or stored[0] != idx:
            return Problem(log_id, last, "subtree", f"{where} is missing")
        if stored[1] != node:
            return Problem(log_id, last, "subtree", f"{where} does not match the entries", "hash")
    return None


def _check_entry(log: LogRow, row: StoredEntry, expected: int, previous_time: int, report: LogReport) -> None:
    """Say what is wrong with the first bad row `check_rows` found."""
    idx, stored_leaf, raw = row[0], row[1], row[2]
    if idx != expected:
        check = "gap" if idx > expected else "order"
        report.problems.append(Problem(log.log_id, expected, check, f"expected entry {expected}, found {idx}"))
        return
    if hashlib.sha256(b"\x00" + raw).digest() != stored_leaf:
        report.problems.append(
            Problem(log.log_id, expected, "entry bytes", "the entry does not match its stored leaf hash")
        )
        return
    problem = entry_problem(log.log_id, expected, raw)
    if problem is not None:
        report.problems.append(problem)
        return
    entry = cast(dict[str, Any], orjson.loads(raw))
    moment = entry.get("t")
    if not isinstance(moment, int) or moment < previous_time:
        report.problems.append(Problem(log.log_id, expected, "time", "time goes backwards"))
        return
    problem = index_problem(log.log_id, expected, entry, row[3:9]) or payload_problem(
        log.log_id, expected, entry, row[3], row[9], row[10], row[11]
    )
    if problem is not None:
        report.problems.append(problem)


def _log_row(log: LogRow, seen: Seen) -> list[Problem]:
    """The log's own row against what its checkpoints are signed for and what its first entry records."""
    problems: list[Problem] = []
    if log.origin != f"bastion/{log.instance}/{log.log_id}":
        named = log.origin.startswith("bastion/") and log.origin.endswith(f"/{log.log_id}")
        column = "instance" if named else "origin"
        detail = f"the origin {log.origin!r} does not name instance {log.instance!r} and log {log.log_id}"
        problems.append(Problem(log.log_id, None, "log row", detail, column))
    if seen.start_pid is not None and seen.start_pid != log.pid:
        detail = f"the store says process {log.pid}, the log's gateway.start entry says {seen.start_pid}"
        problems.append(Problem(log.log_id, 0, "log row", detail, "pid"))
    return problems


def _heads(
    log: LogRow,
    checkpoints: list[CheckpointRow],
    witnesses: Iterable[str],
    verifiers: list[Verifier],
    report: LogReport,
) -> tuple[dict[int, bytes], dict[int, list[tuple[bytes, str]]]]:
    """Size → root of every checkpoint whose signature a trusted key verifies; and size → every root
    (signed, or as stored in a checkpoint row) the tree must have at that size."""
    heads: dict[int, bytes] = {}
    roots: dict[int, list[tuple[bytes, str]]] = {}
    foreign = False
    for row in checkpoints:
        label = f"the stored checkpoint of size {row.size}"
        try:
            checkpoint, _verifier = verify_note(row.note, verifiers)
        except CheckpointError as exc:
            report.problems.append(Problem(log.log_id, None, "signature", f"{label}: {exc}"))
            continue
        if checkpoint.origin != log.origin:
            if not foreign:  # one is enough: a changed origin would repeat for every checkpoint
                detail = f"{label} is signed for {checkpoint.origin}, not for this log ({log.origin})"
                report.problems.append(Problem(log.log_id, None, "checkpoint", detail, "origin"))
            foreign = True
            continue
        if checkpoint.size != row.size:
            detail = f"{label} is signed for size {checkpoint.size}"
            report.problems.append(Problem(log.log_id, None, "checkpoint", detail, "size"))
        elif checkpoint.root != row.root:
            detail = f"{label}: the stored root differs from the signed one"
            report.problems.append(Problem(log.log_id, None, "checkpoint", detail, "root"))
        _signed(log, heads, roots, checkpoint.size, checkpoint.root, report)
    for note in witnesses:
        try:
            checkpoint, _verifier = verify_note(note, verifiers)
        except CheckpointError as exc:
            report.problems.append(Problem(log.log_id, None, "signature", f"witness checkpoint: {exc}"))
            continue
        if checkpoint.origin == log.origin:
            _signed(log, heads, roots, checkpoint.size, checkpoint.root, report)
    for row in checkpoints:  # after the signed roots, which say more when both disagree
        roots.setdefault(row.size, []).append(
            (bytes(row.root), f"the root column of the checkpoint of size {row.size}")
        )
    return heads, roots


def _signed(
    log: LogRow,
    heads: dict[int, bytes],
    roots: dict[int, list[tuple[bytes, str]]],
    size: int,
    root: bytes,
    report: LogReport,
) -> None:
    known = heads.get(size)
    if known is not None and known != root:
        report.problems.append(Problem(log.log_id, size, "fork", "two signed roots for one size"))
    heads[size] = root
    roots.setdefault(size, []).append((root, f"the signed root of size {size}"))
    report.checkpoints += 1
