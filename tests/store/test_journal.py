"""The intent journal: a journaled batch survives its process, and replay adds exactly what the store lacks.

A process that stops without committing is a real child process here (it exits with `os._exit`,
so nothing is flushed or closed), and its journal is then damaged the ways a crash or an attacker
would leave it: a torn last record, a flipped byte, stale records of an earlier round behind the
current ones.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from contextlib import closing
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.errors import StoreError
from bastion.store.audit import EntryRow, LogRow, NodeRow, PayloadRow
from bastion.store.audit_sqlite import SqliteAuditStore
from bastion.store.journal import IntentJournal, decode_rows, encode_rows, orphans, records


def entry(idx: int) -> EntryRow:
    return EntryRow(idx, bytes([idx]) * 32, f"entry {idx}".encode(), time=idx + 0.25, kind="call", tool="push")


CRASH = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from bastion.store.audit import CheckpointRow, EntryRow, LogRow, NodeRow, PayloadRow
    from bastion.store.audit_sqlite import SqliteAuditStore

    committed, journaled = int(sys.argv[2]), int(sys.argv[3])
    store = SqliteAuditStore(Path(sys.argv[1]))
    store.create_log(LogRow("log-a", "bastion/t", "t", os.getpid(), 1.0))

    def entry(idx):
        return EntryRow(idx, bytes([idx]) * 32, f"entry {idx}".encode(), time=idx + 0.25, kind="call", tool="push")

    for idx in range(committed):
        assert store.try_append_batch("log-a", [entry(idx)], [], [])
    if committed:  # any write commits the held rows; the journal starts a new round
        store.add_checkpoint(CheckpointRow("log-a", committed, b"r" * 32, "note", 2.0))
    for idx in range(committed, committed + journaled):
        nodes = [NodeRow(4, 0, b"n" * 32)] if idx == 15 else []
        payloads = [PayloadRow(idx, "2026-12-06", b"sealed %d" % idx)] if idx % 2 else []
        assert store.try_append_batch("log-a", [entry(idx)], nodes, payloads)
    print(store._journal.path, flush=True)
    os._exit(0)  # a crash: nothing committed, nothing closed
    """
)


def crash(path: Path, committed: int, journaled: int) -> Path:
    """Journal `journaled` entries after `committed` committed ones in a child that then dies; its journal."""
    done = subprocess.run(
        [sys.executable, "-c", CRASH, str(path), str(committed), str(journaled)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return Path(done.stdout.strip())


def stored(path: Path) -> list[int]:
    store = SqliteAuditStore(path)
    try:
        return [row.idx for row in store.entries("log-a")]
    finally:
        store.close()


def test_journaled_entries_of_a_process_that_died_are_in_the_store_once_it_is_opened_again(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    journal = crash(path, committed=0, journaled=20)
    assert journal.exists()
    assert journal.parent == tmp_path / "audit.db.journal"

    store = SqliteAuditStore(path)
    try:
        assert [row.idx for row in store.entries("log-a")] == list(range(20))
        assert [row.entry for row in store.entries("log-a")][19] == b"entry 19"
        assert [row.time for row in store.entries("log-a")][3] == 3.25
        assert store.payload("log-a", 7) == ("2026-12-06", b"sealed 7")
        assert store.payload("log-a", 8) is None
        assert list(store.nodes("log-a", 4, end=1)) == [(0, b"n" * 32)], "the subtree a batch completed"
        assert not journal.exists(), "a replayed journal goes"
    finally:
        store.close()
    assert stored(path) == list(range(20)), "and is not replayed twice"


def test_replay_adds_only_what_the_store_lacks_and_stale_rounds_are_never_read(tmp_path: Path) -> None:
    # 12 entries journaled and committed (their round's records still lie in the file), then 3 more
    # written over the start of the file in a new round: exactly 15 entries, none twice.
    path = tmp_path / "audit.db"
    crash(path, committed=12, journaled=3)
    assert stored(path) == list(range(15))


def test_a_torn_or_damaged_record_ends_the_replay_before_it(tmp_path: Path) -> None:
    for damage in ("torn", "flipped"):
        path = tmp_path / damage / "audit.db"
        path.parent.mkdir()
        journal = crash(path, committed=0, journaled=5)
        data = bytearray(journal.read_bytes())
        bodies = list(records(os.open(journal, os.O_RDONLY)))
        fourth = sum(len(body) + 20 for body in bodies[:3])  # 20: the record header
        if damage == "torn":
            data[fourth + 20 + len(bodies[3]) // 2 :] = bytes(len(data) - fourth - 20 - len(bodies[3]) // 2)
        else:
            data[fourth + 25] ^= 0x01
        journal.write_bytes(bytes(data))
        assert stored(path) == [0, 1, 2], damage


def test_a_journal_whose_rows_do_not_follow_on_from_the_store_is_refused_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    journal = crash(path, committed=0, journaled=4)
    data = journal.read_bytes()
    first = next(records(os.open(journal, os.O_RDONLY)))
    journal.write_bytes(data[20 + len(first) :] + bytes(20 + len(first)))  # the first record lost: a gap
    with pytest.raises(StoreError, match="log log-a is at index 0; its batch starts at 1"):
        SqliteAuditStore(path)
    assert journal.exists(), "nothing of it was committed, and it stays for whoever looks into it"
    assert stored_without_replay(path) == []


def stored_without_replay(path: Path) -> list[int]:
    with closing(sqlite3.connect(path)) as db:
        return [row[0] for row in db.execute("SELECT idx FROM audit_entries ORDER BY idx")]


def test_a_live_stores_journal_is_never_replayed_by_another(tmp_path: Path) -> None:
    live = SqliteAuditStore.open(tmp_path)
    try:
        live.create_log(LogRow("log-a", "bastion/t", "t", os.getpid(), 1.0))
        assert live.try_append_batch("log-a", [entry(0)], [], [])
        assert live.size("log-a") == 1, "its own readers see what it holds"
        assert list(orphans(live.journal_dir)) == []
        other = SqliteAuditStore.open(tmp_path)
        try:
            journal = live._journal  # pyright: ignore[reportPrivateUsage]
            assert journal is not None
            assert journal.path.exists(), "still there: another store's opening did not take it"
        finally:
            other.close()
    finally:
        live.close()
    assert list((tmp_path / "audit.db.journal").iterdir()) == [], "closed: everything committed, the journal gone"
    assert stored(tmp_path / "audit.db") == [0]


def test_held_rows_are_committed_when_asked_and_a_full_journal_commits_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SqliteAuditStore.open(tmp_path)
    try:
        store.create_log(LogRow("log-a", "bastion/t", "t", os.getpid(), 1.0))
        assert store.try_append_batch("log-a", [entry(0)], [], [])
        assert stored_without_replay(tmp_path / "audit.db") == [], "held, not yet in the database"
        store.commit_held()
        assert stored_without_replay(tmp_path / "audit.db") == [0]
        journal = store._journal  # pyright: ignore[reportPrivateUsage]
        assert journal is not None
        monkeypatch.setattr(journal, "size", 200)  # room for about one record
        assert store.try_append_batch("log-a", [entry(1)], [], [])
        assert stored_without_replay(tmp_path / "audit.db") == [0]
        assert store.try_append_batch("log-a", [entry(2)], [], [PayloadRow(2, "2026-12-06", b"x" * 300)])
        assert stored_without_replay(tmp_path / "audit.db") == [0, 1, 2], "no room: committed at once, with 1"
    finally:
        store.close()


def test_a_batch_out_of_its_logs_order_is_a_store_error_and_nothing_is_journaled(tmp_path: Path) -> None:
    store = SqliteAuditStore.open(tmp_path)
    try:
        store.create_log(LogRow("log-a", "bastion/t", "t", os.getpid(), 1.0))
        assert store.try_append_batch("log-a", [entry(0)], [], [])
        with pytest.raises(StoreError, match="log log-a is at index 1"):
            store.try_append_batch("log-a", [entry(0)], [], [])
        with pytest.raises(StoreError):
            store.try_append_batch("log-a", [entry(2)], [], [])
        assert store.try_append_batch("log-a", [entry(1)], [NodeRow(4, 0, b"n" * 32)], [])
        assert store.size("log-a") == 2
    finally:
        store.close()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=20,
)
BODIES = st.binary(max_size=4096) | JSON.map(orjson.dumps) | st.lists(JSON, min_size=3, max_size=3).map(orjson.dumps)


@settings(max_examples=300, deadline=None)
@given(BODIES, st.integers(min_value=0, max_value=4))
def test_any_bytes_in_a_journal_replay_as_nothing_or_a_named_store_error(data: bytes, records_first: int) -> None:
    # A journal is read back after a crash, or after someone wrote into the home: whatever is in it,
    # reading it yields only records whose CRC holds, and a body that is not a batch is a StoreError.
    with tempfile.TemporaryDirectory() as name:
        journal = IntentJournal(Path(name), size=8192)
        for idx in range(records_first):
            journal.write(
                encode_rows("log-a", [("log-a", idx, b"l", b"e", 1.0, "call", None, None, None, None, None, None)], [])
            )
        journal.write(data)  # a record whose CRC holds but whose body is anything
        os.pwrite(journal._fd, data, journal._offset)  # pyright: ignore[reportPrivateUsage]  # and bytes after it
        fd = os.open(journal.path, os.O_RDONLY)
        try:
            bodies = list(records(fd))
        finally:
            os.close(fd)
        assert bodies[: records_first + 1][-1] == data
        for body in bodies:
            try:
                decode_rows(body, journal.path)
            except StoreError as exc:
                assert "not a batch of rows" in str(exc)
        journal.close()
