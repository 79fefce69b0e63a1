"""The audit store on SQLite (the embedded default): WAL, synchronous=FULL, one file.

Several gateway processes share the file; each appends only to its own log, in short
immediate transactions, so they never interleave within a log. Readers never block writers.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

from bastion.errors import StoreError
from bastion.store.audit import CheckpointRow, EntryRow, NodeRow, PayloadRow
from bastion.store.audit_sql import SqlAuditStore, Statements
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

    @property
    def identity(self) -> str:
        return f"sqlite:{self.path.resolve()}"

    @classmethod
    def open(cls, home: Path) -> SqliteAuditStore:
        return cls(home / "audit.db")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _write(self, statements: Statements) -> None:
        with self._lock, transaction(self._db, f"audit store {self.path}") as db:
            for sql, rows in statements:
                db.executemany(sql, rows)

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
        """`append_batch` only if it can start at once: False, with nothing written, if the connection
        is in use by another thread or another process holds the write lock.

        For the log writer's small batches, committed on the event loop's thread: they must never
        make the loop wait for a lock (synchronous=FULL still makes the commit durable before this returns).
        """
        if not self._lock.acquire(blocking=False):
            return False
        try:
            if not begin_now(self._db, busy_timeout_ms=BUSY_TIMEOUT_MS):  # another gateway is committing
                return False
            with transaction(self._db, f"audit store {self.path}", begun=True) as db:
                for sql, rows in self._append_statements(log_id, entries, nodes, payloads):
                    db.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise StoreError(f"audit store {self.path}: {exc}") from exc
        finally:
            self._lock.release()
        return True

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"audit store {self.path}: {exc}") from exc

    def _count(self, sql: str, args: tuple[Any, ...]) -> int:
        with self._lock:
            try:
                return self._db.execute(sql, args).rowcount
            except sqlite3.Error as exc:
                raise StoreError(f"audit store {self.path}: {exc}") from exc
