"""The audit store on SQLite (the embedded default): WAL, synchronous=FULL, one file, and an intent journal.

Several gateway processes share the file; each appends only to its own log, in short
immediate transactions, so they never interleave within a log. Readers never block writers.

A small batch appended on the event loop (`try_append_batch`: a sequential call's intent and the
previous call's outcome) is made durable in the store's intent journal (`bastion.store.journal`) and
held in memory; the rows held are committed by `commit_held` (the log writer calls it shortly after
such an append), with the next transaction of any kind, when the journal is full, and before
anything is read, so this store's own readers never see less than was appended. Other connections
see them at that commit. Opening the store first replays any journal a stopped process left
(`replay_journals`).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

from bastion.errors import StoreError
from bastion.store.audit import CheckpointRow, EntryRow, LogRow, NodeRow, PayloadRow
from bastion.store.audit_sql import (
    ENTRY_INSERT,
    NODE_INSERT,
    SIZE_QUERY,
    SqlAuditStore,
    Statements,
    entry_rows,
    node_rows,
)
from bastion.store.journal import IntentJournal, decode_rows, encode_rows, orphans, records
from bastion.store.sqlite_db import begin_now, open_private, transaction

__all__ = ["SqliteAuditStore"]

BUSY_TIMEOUT_MS = 30_000

logger = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_logs (
    log_id TEXT PRIMARY KEY, origin TEXT NOT NULL, instance TEXT NOT NULL, pid INTEGER NOT NULL, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_entries (
    log_id TEXT NOT NULL, idx INTEGER NOT NULL, leaf BLOB NOT NULL, entry BLOB NOT NULL, time REAL NOT NULL,
    kind TEXT NOT NULL, server TEXT, tool TEXT, client TEXT, decision TEXT,
    epoch TEXT, sealed BLOB, redacted REAL,
    PRIMARY KEY (log_id, idx)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS audit_entries_time ON audit_entries (time);
CREATE TABLE IF NOT EXISTS audit_nodes (
    log_id TEXT NOT NULL, level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,
    PRIMARY KEY (log_id, level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    log_id TEXT NOT NULL, size INTEGER NOT NULL, root BLOB NOT NULL, note TEXT NOT NULL, time REAL NOT NULL,
    PRIMARY KEY (log_id, size)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit_data_keys (epoch TEXT PRIMARY KEY, wrapped BLOB, shredded REAL);
"""


class SqliteAuditStore(SqlAuditStore):
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            self._db = open_private(
                path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                # No WAL checkpoint inside a commit (it may run on the event loop, see try_append_batch):
                # add_checkpoint, on the log's writer thread once a second while the log grows, makes one.
                # 256 KiB of cache: writes are appends (a few pages at the right edge of each table),
                # reads are scans, which the OS's page cache serves as well. Filled by a growing log
                # whatever its size, so kept small: 1 MiB was 0.7 MB of a `bastion wrap`'s peak.
                pragmas=("wal_autocheckpoint=0", "cache_size=-256"),
            )
            self._db.executescript(SCHEMA)
        except (sqlite3.DatabaseError, OSError) as exc:
            raise StoreError(f"cannot open the audit store {path}: {exc}") from exc
        self._journal: IntentJournal | None = None
        self._journal_failed = False
        self._held_entries: list[tuple[Any, ...]] = []
        self._held_nodes: list[tuple[Any, ...]] = []
        self._next: dict[str, int] = {}
        """Each log's next index, as far as this store knows, for the journaled appends' order check."""
        try:
            self.replay_journals()
        except BaseException:
            self._db.close()
            raise

    @property
    def identity(self) -> str:
        return f"sqlite:{self.path.resolve()}"

    @classmethod
    def open(cls, home: Path) -> SqliteAuditStore:
        return cls(home / "audit.db")

    @property
    def journal_dir(self) -> Path:
        return self.path.with_name(self.path.name + ".journal")

    def close(self) -> None:
        with self._lock:
            try:
                self._commit_held()
                if self._journal is not None:
                    self._journal.close()  # everything it held is committed: it goes
            finally:
                self._db.close()

    def replay_journals(self) -> None:
        """Commit what journals of stopped processes hold and the database lacks, then remove them. Raises
        StoreError if a journal cannot be read or its rows do not follow on from their log in the database
        (nothing of that journal is committed then)."""
        for path, fd in orphans(self.journal_dir):
            added = 0
            try:
                with self._lock, transaction(self._db, f"audit store {self.path}") as db:
                    sizes: dict[str, int] = {}
                    for body in records(fd):
                        log_id, entries, nodes = decode_rows(body, path)
                        entries, nodes = _missing(db, sizes, log_id, entries, nodes, path)
                        db.executemany(ENTRY_INSERT, entries)
                        db.executemany(NODE_INSERT, nodes)
                        added += len(entries)
                path.unlink(missing_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot replay the audit journal {path}: {exc}") from exc
            finally:
                os.close(fd)
            if added:
                logger.warning("audit store %s: %d entries replayed from %s", self.path, added, path.name)

    def _write(self, statements: Statements) -> None:
        with self._lock:
            with transaction(self._db, f"audit store {self.path}") as db:
                self._put_held(db)
                for sql, rows in statements:
                    db.executemany(sql, rows)
            self._released()

    def _put_held(self, db: sqlite3.Connection) -> None:
        """Inside a transaction: insert the rows held in memory (durable in the journal already)."""
        if self._held_entries:
            db.executemany(ENTRY_INSERT, self._held_entries)
        if self._held_nodes:
            db.executemany(NODE_INSERT, self._held_nodes)

    def _released(self) -> None:
        """After a commit that held the held rows: the journal starts again."""
        self._next.clear()  # a committed batch may have moved any log on
        if self._held_entries:
            self._held_entries, self._held_nodes = [], []
            assert self._journal is not None
            self._journal.restart()

    def create_log(self, log: LogRow) -> None:
        """Also make the intent journal now, off the first call's path (about 6 ms: 1 MiB written)."""
        super().create_log(log)
        with self._lock:
            self._opened_journal()

    def _opened_journal(self) -> IntentJournal | None:
        """With the lock held: the journal, made on first use; None if it cannot be made (every batch is
        then committed to the database, as without one)."""
        if self._journal is None and not self._journal_failed:
            try:
                self._journal = IntentJournal(self.journal_dir)
            except OSError:
                self._journal_failed = True
                logger.warning("audit store %s: no intent journal; committing each batch", self.path, exc_info=True)
        return self._journal

    def commit_held(self) -> None:
        with self._lock:
            self._commit_held()

    def _commit_held(self) -> None:
        """With the lock held: commit the held rows (a no-op without any)."""
        if self._held_entries:
            with transaction(self._db, f"audit store {self.path}") as db:
                self._put_held(db)
            self._released()

    def add_checkpoint(self, row: CheckpointRow) -> None:
        super().add_checkpoint(row)
        with self._lock:
            try:  # PASSIVE: copies what no reader still needs, never waits; the WAL is reused from its start
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error:  # upkeep, not a record: the signed checkpoint above is stored already
                logger.warning("audit store %s: the WAL could not be checkpointed; trying again later", self.path)

    def try_append_batch(
        self, log_id: str, entries: list[EntryRow], nodes: list[NodeRow], payloads: list[PayloadRow]
    ) -> bool:
        """`append_batch` only if it can be made durable at once: False, with nothing written, if the
        connection is in use by another thread, or if the batch must go to the database and another
        process holds its write lock.

        For the log writer's small batches, on the event loop's thread, which must never wait for a lock.
        The batch is written to the intent journal, durable when this returns, and held for the database
        (see the module's docstring); when the journal is full or cannot be made, the held rows are
        committed together with this batch instead (synchronous=FULL: durable when this returns).
        """
        if not self._lock.acquire(blocking=False):
            return False
        try:
            rows, subtrees = entry_rows(log_id, entries, payloads), node_rows(log_id, nodes)
            if self._journaled(log_id, entries, rows, subtrees):
                return True
            if not begin_now(self._db, busy_timeout_ms=BUSY_TIMEOUT_MS):  # another gateway is committing
                return False
            with transaction(self._db, f"audit store {self.path}", begun=True) as db:
                self._put_held(db)
                db.executemany(ENTRY_INSERT, rows)
                db.executemany(NODE_INSERT, subtrees)
            self._released()
        except sqlite3.Error as exc:
            raise StoreError(f"audit store {self.path}: {exc}") from exc
        finally:
            self._lock.release()
        return True

    def _journaled(
        self, log_id: str, entries: list[EntryRow], rows: list[tuple[Any, ...]], nodes: list[tuple[Any, ...]]
    ) -> bool:
        """With the lock held: write the batch to the journal and hold its rows; False (nothing written)
        if the journal has no room or cannot be made. Raises StoreError for a batch out of its log's order
        or if the journal's write fails."""
        journal = self._opened_journal()
        if journal is None:
            return False
        body = encode_rows(log_id, rows, nodes)
        if not journal.room(len(body)):
            return False
        expected = self._next.get(log_id)
        if expected is None:
            expected = self._next[log_id] = _size(self._db, log_id)
        if entries and [e.idx for e in entries] != list(range(expected, expected + len(entries))):
            raise StoreError(
                f"audit store {self.path}: log {log_id} is at index {expected}; a batch from {entries[0].idx} cannot follow"
            )
        try:
            journal.write(body)
        except OSError as exc:
            raise StoreError(f"audit store {self.path}: the intent journal could not be written: {exc}") from exc
        self._held_entries += rows
        self._held_nodes += nodes
        self._next[log_id] = expected + len(entries)
        return True

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            self._commit_held()
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"audit store {self.path}: {exc}") from exc

    def _count(self, sql: str, args: tuple[Any, ...]) -> int:
        with self._lock:
            self._commit_held()
            try:
                return self._db.execute(sql, args).rowcount
            except sqlite3.Error as exc:
                raise StoreError(f"audit store {self.path}: {exc}") from exc


def _missing(
    db: sqlite3.Connection,
    sizes: dict[str, int],
    log_id: str,
    entries: list[tuple[Any, ...]],
    nodes: list[tuple[Any, ...]],
    path: Path,
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """A journaled batch's rows that the database lacks: entries from the log's size on, which must follow
    on from it, and the subtrees they complete."""
    size = sizes.get(log_id)
    if size is None:
        size = _size(db, log_id)
    entries = [row for row in entries if row[1] >= size]
    if entries and entries[0][1] != size:
        raise StoreError(
            f"the audit journal {path}: log {log_id} is at index {size}; its batch starts at {entries[0][1]}"
        )
    sizes[log_id] = size + len(entries)
    return entries, [row for row in nodes if ((row[2] + 1) << row[1]) - 1 >= size]


def _size(db: sqlite3.Connection, log_id: str) -> int:
    row = db.execute(SIZE_QUERY, (log_id,))
    return int(row.fetchone()[0])
