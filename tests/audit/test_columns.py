"""Every column a reader uses is verified: one byte changed in any column of any audit table, with
SQL, the way someone who can write the database would, makes the store-wide verifier fail and name
the log, the entry and the column; the dashboard and the evidence pack then show the log as failing.

Not verified, because nothing signed or hashed records them: when a log was created
(`audit_logs.created`), when a checkpoint was stored (`audit_checkpoints.time`), and when a payload
was redacted or a day key shredded (the values of `audit_entries.redacted` and
`audit_data_keys.shredded`; whether they are set is verified).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from tests.audit.conftest import Backend
from tests.conftest import BASTION, child_env

from bastion.audit.columns import Problem, indexed_entry, read_entry
from bastion.audit.entry import Kind, Record
from bastion.audit.keys import Keyring
from bastion.audit.log import AuditLog
from bastion.audit.payload import AUDIT_MASTER_KEY, PayloadCipher
from bastion.audit.service import read_witnesses
from bastion.audit.storewide import verify_store
from bastion.clock import FakeClock
from bastion.compliance import Outcome, Period, Request, build_pack
from bastion.errors import AuditIntegrityError
from bastion.files import load_master_key
from bastion.store.audit import AuditStore, SearchFilter
from bastion.web.data import AuditView, CallFilter

pytestmark = pytest.mark.e2e

START = datetime(2026, 10, 10, 9, tzinfo=UTC).timestamp()
DAY_ONE = "2026-10-10"
DENIED = 13
"""A refusal with a payload, on the first day."""
REDACTED = 22
"""A call on the second day whose payload was redacted, with a `payload.redacted` entry naming it."""
SIGNED = 20
"""A checkpoint is signed at this size (and another when the log closes)."""
SERVER = {"name": "mail", "id": "srv_mail_1"}


def call(kind: Kind, n: int, action: str = "allow") -> Record:
    fields = {"session": "s", "client": "agent", "server": SERVER, "method": "tools/call", "tool": f"send{n}"}
    fields["decision"] = {"action": action, "rule": "grant.read" if action == "allow" else "policy.risk"}
    return Record(kind, fields, {"arguments": {"n": n, "to": "a@example.com"}})


async def write_log(backend: Backend, home: Path) -> str:
    """One gateway's log over two days: calls and a refusal, heartbeats, a redaction, signed at 20 and at 39."""
    store = backend.open()
    clock = FakeClock(START)
    master = load_master_key(AUDIT_MASTER_KEY, home, {}, create=True)
    assert master is not None
    log = AuditLog(store, Keyring(home, "bastion-test").signer(), PayloadCipher(master), clock, home, instance="test")
    async with anyio.create_task_group() as tasks:
        await tasks.start(log.run)
        await log.append(Record(Kind.GATEWAY_START, {"mode": "stdio", "pid": os.getpid(), "label": "t"}))
        for n in range(6):  # 1..12
            clock.advance(60)
            intent = await log.append(call(Kind.CALL_INTENT, n))
            await log.append(Record(Kind.CALL_OUTCOME, {"intent": intent, "status": "ok"}, {"result": {"n": n}}))
        assert await log.append(call(Kind.CALL_DENIED, 99, "deny")) == DENIED
        for _ in range(6):  # 14..19
            await log.append(Record(Kind.HEARTBEAT, {"check": "nightly", "ping": "success"}))
        await log.checkpoint()
        clock.advance(86400)
        for n in range(8):  # 20..35
            intent = await log.append(call(Kind.CALL_INTENT, 100 + n))
            await log.append(Record(Kind.CALL_OUTCOME, {"intent": intent, "status": "ok"}, {"result": {"n": n}}))
        target = {"log": log.log_id, "index": REDACTED}
        await log.append(Record(Kind.PAYLOAD_REDACTED, {"target": target, "reason": "GDPR", "by": "dave"}))
        await log.append(call(Kind.CALL_DENIED, 200, "deny"))
        await log.append(Record(Kind.GATEWAY_STOP, {"pid": os.getpid()}))
        tasks.cancel_scope.cancel()
    assert store.redact(log.log_id, REDACTED)
    store.close()
    return log.log_id


@dataclass(frozen=True)
class Written:
    backend: Backend
    home: Path
    log: str

    def sql(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        return self.backend.sql(query, args)

    def verify(self, *, payloads: bool = False) -> list[Problem]:
        store = self.backend.open()
        try:
            master = load_master_key(AUDIT_MASTER_KEY, self.home, {}, create=False) if payloads else None
            witnesses = list(read_witnesses(self.home, store).values())
            verifiers = Keyring(self.home, "").verifiers()
            reports = verify_store(
                store, verifiers, external=witnesses, master=master, home=self.home, url=self.backend.url
            )
        finally:
            store.close()
        return [p for report in reports for p in report.problems]


@pytest.fixture
def written(backend: Backend, tmp_path: Path) -> Written:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    return Written(backend, home, anyio.run(write_log, backend, home))


# -- edits, the way an attacker with write access to the database would make them ---------------------------------


def flip_text(w: Written, table: str, column: str, where: str, *args: Any) -> None:
    [(value,)] = w.sql(f"SELECT {column} FROM {table} WHERE {where}", *args)
    w.sql(f"UPDATE {table} SET {column} = ? WHERE {where}", chr(ord(value[0]) ^ 1) + value[1:], *args)


def flip_blob(w: Written, table: str, column: str, where: str, *args: Any) -> None:
    [(value,)] = w.sql(f"SELECT {column} FROM {table} WHERE {where}", *args)
    changed = bytes(value)[:-1] + bytes([bytes(value)[-1] ^ 1])
    w.sql(f"UPDATE {table} SET {column} = ? WHERE {where}", changed, *args)


def setting(table: str, assignments: str, where: str, *values: Any) -> Callable[[Written], None]:
    def edit(w: Written) -> None:
        w.sql(f"UPDATE {table} SET {assignments} WHERE {where}", w.log, *values)

    return edit


def flipping(table: str, column: str, where: str, *args: Any, blob: bool = False) -> Callable[[Written], None]:
    def edit(w: Written) -> None:
        (flip_blob if blob else flip_text)(w, table, column, where, w.log, *args)

    return edit


ROW = "log_id = ? AND idx = ?"
LOG = "log"
"""Stands for the written log's id in the expectations below."""


@dataclass(frozen=True)
class Edit:
    name: str
    edit: Callable[[Written], object]
    expected: tuple[str, int | None, str, str | None]
    """(log, index, check, column) of the problem the verifier must report."""
    needs_key: bool = False
    """Only a verifier holding the master key can tell (`bastion audit verify --payloads`)."""


def _flip_node(w: Written) -> None:
    flip_blob(w, "audit_nodes", "hash", "log_id = ? AND level = 4 AND idx = 1", w.log)


def _flip_note(w: Written) -> None:
    [(note,)] = w.sql("SELECT note FROM audit_checkpoints WHERE log_id = ? AND size = ?", w.log, SIGNED)
    w.sql(
        "UPDATE audit_checkpoints SET note = ? WHERE log_id = ? AND size = ?",
        note.replace("\n20\n", "\n21\n"),
        w.log,
        SIGNED,
    )


def _flip_entry(w: Written) -> None:
    [(entry,)] = w.sql(f"SELECT entry FROM audit_entries WHERE {ROW}", w.log, DENIED)
    w.sql(f"UPDATE audit_entries SET entry = ? WHERE {ROW}", bytes(entry).replace(b'"deny"', b'"denx"'), w.log, DENIED)


def _flip_wrapped(w: Written) -> None:
    flip_blob(w, "audit_data_keys", "wrapped", "epoch = ?", DAY_ONE)


def _flip_epoch(w: Written) -> None:
    flip_text(w, "audit_data_keys", "epoch", "epoch = ?", DAY_ONE)


EDITS = [
    # audit_entries: the index columns, against the entry they index
    Edit("entries.kind", flipping("audit_entries", "kind", ROW, DENIED), (LOG, DENIED, "index column", "kind")),
    Edit(
        "entries.time", setting("audit_entries", "time = time + 1", ROW, DENIED), (LOG, DENIED, "index column", "time")
    ),
    Edit("entries.server", flipping("audit_entries", "server", ROW, DENIED), (LOG, DENIED, "index column", "server")),
    Edit("entries.tool", flipping("audit_entries", "tool", ROW, DENIED), (LOG, DENIED, "index column", "tool")),
    Edit("entries.client", flipping("audit_entries", "client", ROW, DENIED), (LOG, DENIED, "index column", "client")),
    Edit(
        "entries.decision",
        flipping("audit_entries", "decision", ROW, DENIED),
        (LOG, DENIED, "index column", "decision"),
    ),
    # … the payload columns, against the entry's commitments and day
    Edit("entries.epoch", flipping("audit_entries", "epoch", ROW, DENIED), (LOG, DENIED, "payload", "epoch")),
    Edit(
        "entries.sealed deleted",
        setting("audit_entries", "sealed = NULL", ROW, DENIED),
        (LOG, DENIED, "payload", "sealed"),
    ),
    Edit(
        "entries.sealed",
        flipping("audit_entries", "sealed", ROW, DENIED, blob=True),
        (LOG, DENIED, "payload", "sealed"),
        needs_key=True,
    ),
    Edit(
        "entries.redacted",
        setting("audit_entries", "redacted = 1.0", ROW, DENIED),
        (LOG, DENIED, "payload", "redacted"),
    ),
    Edit(
        "entries.redacted cleared",
        setting("audit_entries", "redacted = NULL", ROW, REDACTED),
        (LOG, REDACTED, "payload", "sealed"),
    ),
    Edit(
        "entries.sealed and redacted: an unrecorded redaction",
        setting("audit_entries", "sealed = NULL, redacted = 1.0", ROW, DENIED),
        (LOG, DENIED, "payload", "redacted"),
    ),
    # … and what the tree covers
    Edit("entries.leaf", flipping("audit_entries", "leaf", ROW, DENIED, blob=True), (LOG, DENIED, "entry bytes", None)),
    Edit("entries.entry", _flip_entry, (LOG, DENIED, "entry bytes", None)),
    Edit("entries.idx", setting("audit_entries", "idx = 1000", ROW, DENIED), (LOG, DENIED, "gap", None)),
    Edit("entries.log_id", setting("audit_entries", "log_id = 'zzz'", ROW, DENIED), (LOG, DENIED, "gap", None)),
    # audit_checkpoints: against the signed note and the recomputed tree
    Edit(
        "checkpoints.root",
        flipping("audit_checkpoints", "root", "log_id = ? AND size = ?", SIGNED, blob=True),
        (LOG, None, "checkpoint", "root"),
    ),
    Edit(
        "checkpoints.size",
        setting("audit_checkpoints", "size = 19", "log_id = ? AND size = ?", SIGNED),
        (LOG, None, "checkpoint", "size"),
    ),
    Edit("checkpoints.note", _flip_note, (LOG, None, "signature", None)),
    Edit(
        "checkpoints.log_id",
        setting("audit_checkpoints", "log_id = 'zzz'", "log_id = ? AND size = ?", SIGNED),
        ("zzz", None, "missing log", "log_id"),
    ),
    # audit_nodes: against the recomputed tree
    Edit("nodes.hash", _flip_node, (LOG, 31, "subtree", "hash")),
    Edit(
        "nodes.idx",
        setting("audit_nodes", "idx = 5", "log_id = ? AND level = 4 AND idx = 1"),
        (LOG, 31, "subtree", None),
    ),
    Edit(
        "nodes.level",
        setting("audit_nodes", "level = 3", "log_id = ? AND level = 4 AND idx = 1"),
        (LOG, 31, "subtree", None),
    ),
    Edit(
        "nodes.log_id",
        setting("audit_nodes", "log_id = 'zzz'", "log_id = ? AND level = 4 AND idx = 1"),
        (LOG, 31, "subtree", None),
    ),
    # audit_logs: against the signed checkpoints and the log's first entry
    Edit("logs.origin", flipping("audit_logs", "origin", "log_id = ?"), (LOG, None, "checkpoint", "origin")),
    Edit("logs.instance", flipping("audit_logs", "instance", "log_id = ?"), (LOG, None, "log row", "instance")),
    Edit("logs.pid", setting("audit_logs", "pid = pid + 1", "log_id = ?"), (LOG, 0, "log row", "pid")),
    Edit("logs.log_id", setting("audit_logs", "log_id = 'zzz'", "log_id = ?"), (LOG, None, "missing log", "log_id")),
    # audit_data_keys: against the payloads filed under each day, and the shredding entries
    Edit("data_keys.epoch", _flip_epoch, (LOG, 1, "payload", "epoch")),
    Edit(
        "data_keys.shredded",
        lambda w: w.sql("UPDATE audit_data_keys SET shredded = 1.0 WHERE epoch = ?", DAY_ONE),
        ("", None, "data key", "shredded"),
    ),
    Edit(
        "data_keys.wrapped destroyed: an unrecorded shredding",
        lambda w: w.sql("UPDATE audit_data_keys SET wrapped = NULL, shredded = 1.0 WHERE epoch = ?", DAY_ONE),
        ("", None, "data key", "wrapped"),
    ),
    Edit("data_keys.wrapped", _flip_wrapped, ("", None, "data key", "wrapped"), needs_key=True),
]


def expected_of(w: Written, edit: Edit) -> tuple[str, int | None, str, str | None]:
    log, index, check, column = edit.expected
    return (w.log if log == LOG else log, index, check, column)


def found(problems: list[Problem]) -> set[tuple[str, int | None, str, str | None]]:
    return {(p.log_id, p.index, p.check, p.column) for p in problems}


def test_a_clean_log_verifies_everywhere(written: Written, tmp_path: Path) -> None:
    assert written.verify() == []
    assert written.verify(payloads=True) == [], "every payload matches its commitments"
    store = written.backend.open()
    try:
        view = AuditView(store, written.home)
        view.verification.reports = view.verify(lambda _done, _total: None)
        assert [log["state"] for log in view.integrity()] == ["verified"]
        assert pack(written, store, tmp_path / "pack").verified
    finally:
        store.close()


@pytest.mark.parametrize("edit", EDITS, ids=[edit.name for edit in EDITS])
def test_one_edited_column_fails_verification_naming_the_log_entry_and_column(
    written: Written, edit: Edit, tmp_path: Path
) -> None:
    edit.edit(written)
    expected = expected_of(written, edit)
    if edit.needs_key:
        assert written.verify() == [], "without the master key a payload's ciphertext cannot be checked"
        assert expected in found(written.verify(payloads=True))
        return
    problems = written.verify()
    assert expected in found(problems), [p.describe() for p in problems]
    if expected[1] is not None:
        first = next(p for p in problems if p.log_id == written.log)
        assert (first.index, first.column) == (expected[1], expected[3]), first.describe()
    store = written.backend.open()
    try:
        view = AuditView(store, written.home)
        view.verification.reports = view.verify(lambda _done, _total: None)
        assert expected in found(view.problems()), "the dashboard's verify now runs the same verifier"
        failing = {log["log"] for log in view.integrity() if log["state"] == "failing"}
        if expected[0] == written.log and edit.name != "logs.log_id":
            assert failing == {written.log}
        outcome = pack(written, store, tmp_path / "pack")
    finally:
        store.close()
    assert not outcome.verified
    assert any(problem.startswith(f"log {expected[0]}" if expected[0] else "store") for problem in outcome.problems)


def pack(w: Written, store: AuditStore, out: Path) -> Outcome:
    keyring = Keyring(w.home, "")
    request = Request(
        period=Period.parse("2026-10-01..2026-10-31"),
        home=w.home,
        signer=keyring.signer(create=False),
        verifiers=keyring.verifiers(),
        now=START + 30 * 86400,
        store_url=w.backend.url,
        chromium=None,
        samples=3,
    )
    return build_pack(store, request, out)


# -- readers: what they show comes from the entry, and a row that disagrees marks its log as failing --------------


def test_a_refusal_hidden_behind_another_kind_still_counts_and_marks_its_log_failing(written: Written) -> None:
    written.sql(f"UPDATE audit_entries SET kind = 'heartbeat' WHERE {ROW}", written.log, DENIED)
    store = written.backend.open()
    try:
        view = AuditView(store, written.home)
        hours = view.activity(hours=48, now=START + 86400 + 3600)
        assert sum(denials for _hour, _calls, denials in hours) == 2, "counted by the kind the entry records"
        assert sum(calls for _hour, calls, _denials in hours) == 14
        [state] = [log["state"] for log in view.integrity()]
        assert state == "failing"
        assert (written.log, DENIED, "index column", "kind") in found(view.problems())
    finally:
        store.close()


def test_a_refusal_forged_from_another_entry_is_not_listed_and_marks_its_log_failing(written: Written) -> None:
    written.sql(f"UPDATE audit_entries SET kind = 'call.denied' WHERE {ROW}", written.log, 15)
    store = written.backend.open()
    try:
        view = AuditView(store, written.home)
        calls = view.calls(CallFilter())
        assert 15 not in {call.index for call in calls}
        assert [call.status for call in calls].count("refused") == 2
        assert (written.log, 15, "index column", "kind") in found(view.problems())
    finally:
        store.close()


def test_readers_get_the_entry_or_an_integrity_error_never_the_index(written: Written) -> None:
    store = written.backend.open()
    try:
        [(log_id, row)] = [
            (log_id, row)
            for log_id, row in store.search(SearchFilter(kind="call.denied", limit=10))
            if row.idx == DENIED
        ]
        entry, problem = read_entry(log_id, row)
        assert problem is None
        assert indexed_entry(log_id, row) == entry
        written.sql(f"UPDATE audit_entries SET client = 'someone-else' WHERE {ROW}", written.log, DENIED)
        [row] = list(store.entries(written.log, DENIED, DENIED + 1))
        entry, problem = read_entry(written.log, row)
        assert entry["client"] == "agent", "what readers use is the entry"
        assert problem is not None
        assert (problem.index, problem.column) == (DENIED, "client")
        with pytest.raises(AuditIntegrityError) as raised:
            indexed_entry(written.log, row)
        assert raised.value.index == DENIED
    finally:
        store.close()


# -- the command -------------------------------------------------------------------------------------------------


def cli_verify(w: Written, *extra: str) -> tuple[int, str]:
    done = subprocess.run(
        [*BASTION, "audit", "verify", "--store", w.backend.url, *extra],
        capture_output=True,
        env=child_env(w.home),
        check=False,
        timeout=120,
    )
    return done.returncode, done.stdout.decode() + done.stderr.decode()


def test_the_command_names_the_entry_and_column_and_checks_payloads_with_the_key(written: Written) -> None:
    assert cli_verify(written, "--payloads")[0] == 0
    flip_blob(written, "audit_entries", "sealed", ROW, written.log, DENIED)
    code, output = cli_verify(written)
    assert code == 0, output
    code, output = cli_verify(written, "--payloads")
    assert code == 1
    assert f"log {written.log} index {DENIED}: payload sealed:" in output
    flip_text(written, "audit_entries", "kind", ROW, written.log, DENIED)
    code, output = cli_verify(written)
    assert code == 1
    assert f"log {written.log} index {DENIED}: index column kind:" in output


def test_payloads_cannot_be_checked_without_the_master_key(written: Written) -> None:
    (written.home / "keys" / "audit-master.key").unlink()
    code, output = cli_verify(written, "--payloads")
    assert code != 0
    assert "--payloads" in output
