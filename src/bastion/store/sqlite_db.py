"""Private SQLite files and their transactions, written once for every embedded store.

Several Bastion processes share one BASTION_HOME, so every store opens its file the same way:
readable only by its owner (created 0600, so there is no moment when it is not), in autocommit
mode so that each write is an explicit short `BEGIN IMMEDIATE` transaction, WAL so readers never
block writers, and `synchronous=FULL` so a committed write survives a power cut.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Generator, Sequence
from contextlib import contextmanager
from pathlib import Path

from bastion.errors import StoreError

__all__ = ["begin_now", "open_private", "transaction"]


def open_private(path: Path, *, timeout: float = 10.0, pragmas: Sequence[str] = ()) -> sqlite3.Connection:
    """A connection to the SQLite file at `path`, mode 0600, WAL, synchronous=FULL, then `pragmas`
    (e.g. "cache_size=-1024"), in autocommit mode: write with `transaction`.

    `timeout` is how long a write waits for another process's lock. Raises sqlite3.Error (a file
    that is not a database) or OSError (a folder that does not exist): the store names itself.
    """
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    os.chmod(path, 0o600)  # before SQLite opens it: its -wal and -shm files take the database's mode
    db = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    try:
        _wal(db, timeout)
        db.execute("PRAGMA synchronous=FULL")
        for pragma in pragmas:
            db.execute(f"PRAGMA {pragma}")
    except BaseException:
        db.close()
        raise
    return db


def _wal(db: sqlite3.Connection, timeout: float) -> None:
    """Switch to WAL, waiting up to `timeout` for others doing the same: SQLite answers "database is
    locked" at once, without its busy handler, while another connection switches a new file (several
    gateways starting together on a fresh home)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


@contextmanager
def transaction(db: sqlite3.Connection, what: str, *, begun: bool = False) -> Generator[sqlite3.Connection]:
    """One write transaction: BEGIN IMMEDIATE (unless `begin_now` began it), COMMIT when the block
    ends, ROLLBACK when it raises, so a failed write leaves nothing behind.

    A SQLite error becomes StoreError("WHAT: error"); any other error goes on unchanged.
    """
    try:
        if not begun:
            db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        raise StoreError(f"{what}: {exc}") from exc


def begin_now(db: sqlite3.Connection, *, busy_timeout_ms: int) -> bool:
    """BEGIN IMMEDIATE only if no other process holds the write lock: False at once if one does.

    For writes on an event loop's thread, which must never wait for a lock; `busy_timeout_ms` is
    the connection's usual wait, put back afterwards. Continue with `transaction(db, …, begun=True)`.
    """
    db.execute("PRAGMA busy_timeout=0")
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:  # SQLITE_BUSY: another process is committing
        return False
    finally:
        db.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    return True
