"""The one verifier of a whole audit store. `bastion audit verify`, the dashboard's "verify now" and
`bastion report` all run it, so they all hold a store to the same rules.

Every log is replayed by `verify.verify_log` (pure: rows in, report out), its rows read a page at a
time, never all at once (and in worker processes when a log is large and the store can be reopened
there). Then come the checks that need the whole store: rows kept under a log the store does not
list, checkpoints held outside (witnesses, published ones) for a log the store lost, payloads removed
without a `payload.redacted` entry naming them, day keys destroyed without a `payload.shredded`
entry; and with the master key, every payload against its entry's salted commitments.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from bastion.audit.checkpoint import CheckpointError, Verifier, verify_note
from bastion.audit.columns import Problem, check_payload
from bastion.audit.parallel import checked_runs
from bastion.audit.payload import PayloadCipher
from bastion.audit.verify import LogReport, Seen, verify_log
from bastion.errors import StoreError
from bastion.processes import pid_alive
from bastion.store.audit import STORED_NODE_LEVEL, AuditStore, LogRow

__all__ = ["STORE", "verify_store"]

STORE = "(the store)"
"""The origin of the report that holds problems belonging to no one log."""


def _quiet(_done: int, _total: int) -> None:
    pass


def verify_store(
    store: AuditStore,
    verifiers: list[Verifier],
    *,
    external: Iterable[str] = (),
    master: bytes | None = None,
    home: Path | None = None,
    url: str | None = None,
    alive: Callable[[int], bool] = pid_alive,
    progress: Callable[[int, int], None] = _quiet,
) -> list[LogReport]:
    """Verify every log of `store`; one report per log, then reports for what belongs to no listed log.

    `external` holds signed checkpoints kept outside the store (witnesses, published ones): each must
    fit its log, and each names a log the store must still have. With `master`, every payload is
    decrypted and checked against its entry. With `home`, large logs are checked in worker
    processes that reopen the store from `home` and `url`.
    """
    outside = list(external)  # read before the store: a checkpoint signed meanwhile is not "ahead" of it
    logs = store.logs()
    total = sum(store.size(log.log_id) for log in logs)
    by_origin: dict[str, list[str]] = {}
    for note in outside:
        by_origin.setdefault(note.split("\n", 1)[0], []).append(note)
    done = 0

    def step(count: int) -> None:
        nonlocal done
        done += count
        progress(done, total)

    reports: list[LogReport] = []
    for log in logs:
        report = _verify_one(store, log, verifiers, by_origin.get(log.origin, []), home, url, alive, step)
        reports.append(report)
    data_keys = store.data_keys()
    store_problems: list[Problem] = []
    if master is not None:
        store_problems += _check_payloads(store, reports, PayloadCipher(master), data_keys)
    orphans = store.stored_log_ids() - {log.log_id for log in logs}
    reports += _unlisted(logs, outside, verifiers, orphans)
    store_problems += _cross_checks(reports, data_keys)
    if store_problems:
        reports.append(LogReport("", STORE, problems=store_problems))
    progress(total, total)
    return reports


def _verify_one(
    store: AuditStore,
    log: LogRow,
    verifiers: list[Verifier],
    witnesses: list[str],
    home: Path | None,
    url: str | None,
    alive: Callable[[int], bool],
    step: Callable[[int], None],
) -> LogReport:
    checkpoints = store.checkpoints(log.log_id)  # before the size: every checkpoint read is within it
    size = store.size(log.log_id)
    subtrees = {
        level: store.nodes(log.log_id, level, size >> level) for level in range(STORED_NODE_LEVEL, size.bit_length())
    }
    return verify_log(
        log,
        checked_runs(store, home, url, log.log_id, size),
        checkpoints,
        verifiers,
        witnesses=witnesses,
        owner_alive=alive(log.pid),
        subtrees=subtrees,
        progress=step,
    )


def _check_payloads(
    store: AuditStore,
    reports: list[LogReport],
    cipher: PayloadCipher,
    data_keys: list[tuple[str, bytes | None, float | None]],
) -> list[Problem]:
    """Open every stored payload of each log that verified through and check it against its entry;
    returns the problems of day keys (they belong to no one log)."""
    wrapped = {epoch: key for epoch, key, _shredded in data_keys}
    opened: dict[str, bytes | None] = {}
    problems: list[Problem] = []
    for report in reports:
        for idx, raw, epoch, sealed in store.sealed_payloads(report.log_id, 0, report.size):
            key = wrapped.get(epoch) if epoch is not None else None
            if epoch is None or key is None:
                continue  # its day was shredded, or its key is missing: the cross-checks say which
            if epoch not in opened:
                opened[epoch] = _open_day_key(cipher, epoch, key, problems)
            day_key = opened[epoch]
            problem = check_payload(report.log_id, idx, raw, sealed, day_key) if day_key is not None else None
            if problem is not None:
                report.problems.append(problem)
    return problems


def _open_day_key(cipher: PayloadCipher, epoch: str, wrapped: bytes, problems: list[Problem]) -> bytes | None:
    try:
        return cipher.unwrap(epoch, wrapped)
    except StoreError:
        detail = f"the data key of {epoch} does not open with this master key: altered, moved, or another key"
        problems.append(Problem("", None, "data key", detail, "wrapped"))
        return None


def _unlisted(logs: list[LogRow], outside: list[str], verifiers: list[Verifier], orphans: set[str]) -> list[LogReport]:
    """Reports for logs the store does not list: named by a checkpoint held outside, or holding rows."""
    found: list[LogReport] = []
    origins = {log.origin for log in logs}
    for note in outside:
        try:
            checkpoint, _ = verify_note(note, verifiers)
        except CheckpointError as exc:
            found.append(LogReport("?", "?", problems=[Problem("?", None, "signature", f"external checkpoint: {exc}")]))
            continue
        if checkpoint.origin not in origins:
            detail = "a checkpoint held outside the store names a log the store does not have"
            found.append(
                LogReport("?", checkpoint.origin, problems=[Problem(checkpoint.origin, None, "missing log", detail)])
            )
    for log_id in sorted(orphans):
        detail = "the store keeps entries, subtrees or checkpoints under this log id but does not list the log"
        found.append(LogReport(log_id, "?", problems=[Problem(log_id, None, "missing log", detail, "log_id")]))
    return found


def _cross_checks(reports: list[LogReport], data_keys: list[tuple[str, bytes | None, float | None]]) -> list[Problem]:
    """What one log's rows say about others: every removed payload has a redaction entry, every destroyed
    day key a shredding entry, every stored payload a day key. Problems of one log go to its report;
    the rest are returned."""
    seen = Seen()
    for report in reports:
        seen.merge(report.seen)
    for report in reports:
        for idx in report.seen.redacted:
            if (report.log_id, idx) not in seen.targets:
                detail = "the payload was removed, but no payload.redacted entry names it"
                report.problems.append(Problem(report.log_id, idx, "payload", detail, "redacted"))
    keys = {epoch: (wrapped, shredded) for epoch, wrapped, shredded in data_keys}
    for report in reports:
        for epoch, idx in report.seen.epochs.items():
            if epoch not in keys:
                detail = f"no data key is stored for the payload's day {epoch}"
                report.problems.append(Problem(report.log_id, idx, "payload", detail, "epoch"))
    problems: list[Problem] = []
    for epoch, (wrapped, shredded) in sorted(keys.items()):
        if (wrapped is None) != (shredded is not None):
            state = "destroyed" if wrapped is None else "present"
            detail = (
                f"the data key of {epoch} is {state}, but the row says {'not ' if shredded is None else ''}shredded"
            )
            problems.append(Problem("", None, "data key", detail, "shredded"))
        elif wrapped is None and epoch not in seen.shredded:
            detail = f"the data key of {epoch} was destroyed, but no payload.shredded entry names the day"
            problems.append(Problem("", None, "data key", detail, "wrapped"))
    return problems
