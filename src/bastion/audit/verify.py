"""The offline verifier: replays every entry, recomputes the tree, checks every checkpoint.

Needs only the entries (from a store or an export), the checkpoints and the trusted public
keys. Finds a changed byte (the leaf no longer matches), deleted, swapped or reordered
entries (positions and the index inside each entry disagree), time going backwards, a
rewritten tail (roots no longer match signed checkpoints), a truncated or rolled-back store
(a signed checkpoint or witness is larger than the log), and forged checkpoints.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import orjson

from bastion.audit.checkpoint import CheckpointError, Verifier, verify_note
from bastion.audit.entry import ENTRY_VERSION
from bastion.audit.merkle import CompactRange
from bastion.store.audit import CheckpointRow, LogRow

__all__ = ["Checked", "LogReport", "Problem", "check_rows", "verify_log"]


@dataclass(frozen=True, slots=True)
class Problem:
    log_id: str
    index: int | None
    check: str
    detail: str

    def describe(self) -> str:
        where = f"log {self.log_id}" + (f" index {self.index}" if self.index is not None else "")
        return f"{where}: {self.check}: {self.detail}"


@dataclass
class LogReport:
    log_id: str
    origin: str
    size: int = 0
    checkpoints: int = 0
    covered: int = 0
    problems: list[Problem] = field(default_factory=list[Problem])

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
    bad: tuple[int, bytes, bytes] | None = None
    """The first row that failed a check (everything before it is in `leaves`)."""


def check_rows(log_id: str, start: int, rows: Iterable[tuple[int, bytes, bytes]]) -> Checked:
    """Hash and check a run of rows that should begin at index `start`; pure, so it can run anywhere."""
    sha256, loads = hashlib.sha256, orjson.loads
    leaves = bytearray()
    first_time = last_time = -1
    expected = start
    for row in rows:
        idx, stored_leaf, raw = row
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
            )
        except (orjson.JSONDecodeError, KeyError, TypeError):
            fine = False
        if not fine:
            return Checked(start, bytes(leaves), first_time, last_time, row)
        if first_time < 0:
            first_time = moment
        last_time = moment
        leaves += leaf
        expected += 1
    return Checked(start, bytes(leaves), first_time, last_time)


def verify_log(
    log: LogRow,
    entries: Iterable[tuple[int, bytes, bytes]] | Iterable[Checked],
    checkpoints: list[CheckpointRow],
    verifiers: list[Verifier],
    *,
    witnesses: Iterable[str] = (),
    owner_alive: bool = False,
    progress: Callable[[int], None] = lambda _n: None,
) -> LogReport:
    """Replay a log in order against its signed heads.

    `entries` are the store's rows, or runs of them already checked by `check_rows` (in
    other processes, see `parallel`); either way the tree is folded and checked here.
    """
    report = LogReport(log.log_id, log.origin)
    signed = _signed_heads(log, checkpoints, witnesses, verifiers, report)
    edge = CompactRange()
    push = edge.push
    previous_time = -1
    for checked in _runs(log.log_id, entries):
        if checked.first_time >= 0 and checked.first_time < previous_time:
            report.problems.append(Problem(log.log_id, checked.start, "time", "time goes backwards"))
            return report
        leaves = checked.leaves
        for offset in range(0, len(leaves), 32):
            push(leaves[offset : offset + 32])
            root = signed.get(edge.size)
            if root is not None and root != edge.root():
                report.problems.append(
                    Problem(
                        log.log_id,
                        edge.size - 1,
                        "checkpoint",
                        f"the signed root of size {edge.size} does not match the entries",
                    )
                )
                return report
        progress(len(leaves) // 32)
        if checked.last_time >= 0:
            previous_time = checked.last_time
        if checked.bad is not None:
            idx, stored_leaf, raw = checked.bad
            leaf = hashlib.sha256(b"\x00" + raw).digest()
            _check_entry(log, idx, stored_leaf, leaf, raw, edge.size, previous_time, report)
            if not report.problems:
                report.problems.append(Problem(log.log_id, edge.size, "entry format", "the entry is malformed"))
            return report
    expected = edge.size
    report.size = expected
    report.covered = max((size for size in signed if size <= expected), default=0)
    beyond = [size for size in signed if size > expected]
    if beyond:
        report.problems.append(
            Problem(
                log.log_id,
                expected,
                "truncated",
                f"a signed checkpoint covers {max(beyond)} entries but the log has {expected}",
            )
        )
    elif report.covered < expected and not owner_alive:
        report.problems.append(
            Problem(
                log.log_id,
                report.covered,
                "unsigned tail",
                f"{expected - report.covered} entries are not covered by a signed checkpoint",
            )
        )
    return report


def _runs(log_id: str, entries: Iterable[tuple[int, bytes, bytes]] | Iterable[Checked]) -> Iterator[Checked]:
    """Runs of checked rows: passed through, or made here from plain rows."""
    run: list[tuple[int, bytes, bytes]] = []
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


def _check_entry(
    log: LogRow,
    idx: int,
    stored_leaf: bytes,
    leaf: bytes,
    raw: bytes,
    expected: int,
    previous_time: int,
    report: LogReport,
) -> int | None:
    """The entry's time if everything about it holds; else None, with the problem reported."""
    if idx != expected:
        check = "gap" if idx > expected else "order"
        report.problems.append(Problem(log.log_id, expected, check, f"expected entry {expected}, found {idx}"))
        return None
    if leaf != stored_leaf:
        report.problems.append(
            Problem(log.log_id, expected, "entry bytes", "the entry does not match its stored leaf hash")
        )
        return None
    try:
        entry = orjson.loads(raw)
    except orjson.JSONDecodeError:
        report.problems.append(Problem(log.log_id, expected, "entry bytes", "the entry is not JSON"))
        return None
    if not isinstance(entry, dict) or entry.get("v") != ENTRY_VERSION:
        report.problems.append(Problem(log.log_id, expected, "entry format", "unknown entry version"))
        return None
    if entry.get("i") != expected or entry.get("log") != log.log_id:
        report.problems.append(
            Problem(log.log_id, expected, "order", f"the entry says it is {entry.get('log')}/{entry.get('i')}")  # pyright: ignore[reportUnknownMemberType]
        )
        return None
    moment = entry.get("t")  # pyright: ignore[reportUnknownMemberType,reportUnknownVariableType]
    if not isinstance(moment, int) or moment < previous_time:
        report.problems.append(Problem(log.log_id, expected, "time", "time goes backwards"))
        return None
    return moment


def _signed_heads(
    log: LogRow,
    checkpoints: list[CheckpointRow],
    witnesses: Iterable[str],
    verifiers: list[Verifier],
    report: LogReport,
) -> dict[int, bytes]:
    """Size → root of every checkpoint whose signature a trusted key verifies."""
    heads: dict[int, bytes] = {}
    notes = [(row.note, f"stored checkpoint of size {row.size}") for row in checkpoints]
    notes += [(note, "witness checkpoint") for note in witnesses]
    for note, label in notes:
        try:
            checkpoint, _verifier = verify_note(note, verifiers)
        except CheckpointError as exc:
            report.problems.append(Problem(log.log_id, None, "signature", f"{label}: {exc}"))
            continue
        if checkpoint.origin != log.origin:
            continue
        known = heads.get(checkpoint.size)
        if known is not None and known != checkpoint.root:
            report.problems.append(Problem(log.log_id, checkpoint.size, "fork", "two signed roots for one size"))
        heads[checkpoint.size] = checkpoint.root
        report.checkpoints += 1
    return heads
