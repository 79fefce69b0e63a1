"""The embedded audit store: one private file, batches that commit whole, and appends that never wait."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from bastion.errors import StoreError
from bastion.store.audit import EntryRow, LogRow, NodeRow, PayloadRow
from bastion.store.audit_sqlite import SqliteAuditStore


def entry(idx: int) -> EntryRow:
    return EntryRow(idx, bytes([idx]) * 32, f"entry {idx}".encode(), time=float(idx), kind="call", tool="push")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteAuditStore]:
    opened = SqliteAuditStore.open(tmp_path)
    opened.create_log(LogRow("log-a", "bastion/laptop", "laptop", 101, 1.0))
    yield opened
    opened.close()


def test_the_log_is_one_private_file_in_the_home_named_by_its_full_path(tmp_path: Path) -> None:
    store = SqliteAuditStore.open(tmp_path)
    try:
        assert store.path == tmp_path / "audit.db"
        assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
        assert store.identity == f"sqlite:{(tmp_path / 'audit.db').resolve()}"
    finally:
        store.close()


def test_the_page_cache_stays_small_however_long_the_log_grows(store: SqliteAuditStore) -> None:
    # Appends touch a few pages at each table's right edge; a bigger cache would only fill with old
    # pages, in every gateway for as long as it runs (issue 13 §5: bastion wrap's peak memory).
    store.append_batch("log-a", [entry(i) for i in range(200)], [], [])
    cache = store._db.execute("PRAGMA cache_size").fetchone()[0]  # pyright: ignore[reportPrivateUsage]
    assert -256 <= cache < 0  # KiB


def test_an_appended_batch_is_durable_and_seen_by_another_gateway(tmp_path: Path, store: SqliteAuditStore) -> None:
    store.append_batch("log-a", [entry(0), entry(1)], [], [PayloadRow(1, "2026-12-06", b"sealed")])
    other = SqliteAuditStore.open(tmp_path)
    try:
        assert other.size("log-a") == 2
        assert list(other.entries("log-a")) == [entry(0), entry(1)]
        assert other.payload("log-a", 1) == ("2026-12-06", b"sealed")
        assert other.logs() == store.logs()
    finally:
        other.close()


def test_an_index_once_assigned_cannot_be_written_again_and_the_failed_batch_leaves_nothing(
    store: SqliteAuditStore,
) -> None:
    store.append_batch("log-a", [entry(0), entry(1)], [], [])
    with pytest.raises(StoreError):
        store.append_batch("log-a", [entry(2), entry(1)], [NodeRow(4, 0, b"n" * 32)], [])
    assert store.size("log-a") == 2
    assert [row.entry for row in store.entries("log-a")] == [b"entry 0", b"entry 1"]
    assert list(store.nodes("log-a", 4, end=1)) == [], "the batch's subtree went with it"


def test_an_inline_append_does_not_wait_for_another_writer_and_writes_nothing_then(
    store: SqliteAuditStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    with closing(sqlite3.connect(store.path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")  # another gateway is committing
        assert store.try_append_batch("log-a", [entry(0)], [], []) is True, "the journal needs no database lock"
        monkeypatch.setattr(store._journal, "size", 0)  # pyright: ignore[reportPrivateUsage]  # full: must commit
        assert store.try_append_batch("log-a", [entry(1)], [], []) is False
        other.execute("ROLLBACK")
    assert store.size("log-a") == 1, "the refused batch left nothing, the journaled one is there"
    assert store.try_append_batch("log-a", [entry(1)], [], []) is True
    assert store.size("log-a") == 2


def test_an_inline_append_of_a_taken_index_is_a_store_error_and_the_store_stays_usable(
    store: SqliteAuditStore,
) -> None:
    assert store.try_append_batch("log-a", [entry(0)], [], []) is True
    with pytest.raises(StoreError):
        store.try_append_batch("log-a", [entry(1), entry(0)], [], [])
    assert store.size("log-a") == 1
    assert store.try_append_batch("log-a", [entry(1)], [], []) is True
    assert store.size("log-a") == 2


def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    path.write_bytes(b"not a database, only bytes " * 100)
    with pytest.raises(StoreError):
        SqliteAuditStore(path)
    with pytest.raises(StoreError):
        SqliteAuditStore(tmp_path / "missing" / "audit.db")
