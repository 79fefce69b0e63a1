"""The one way Bastion's SQLite stores open their files and write: private, WAL, all or nothing."""

from __future__ import annotations

import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest

from bastion.errors import StoreError
from bastion.store.sqlite_db import begin_now, open_private, transaction


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    with closing(open_private(tmp_path / "state.db")) as opened:
        opened.execute("CREATE TABLE t (x INTEGER PRIMARY KEY)")
        yield opened


def count(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT COUNT(*) FROM t").fetchone()[0])


def test_the_file_is_private_to_its_owner_and_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with closing(open_private(path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        with transaction(db, "test store"):
            db.execute("CREATE TABLE t (x)")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.with_name("state.db-wal").stat().st_mode) == 0o600


def test_a_file_left_open_to_others_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.touch(mode=0o644)
    path.chmod(0o644)
    with closing(open_private(path)):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_extra_pragmas_are_applied(tmp_path: Path) -> None:
    with closing(open_private(tmp_path / "state.db", pragmas=("cache_size=-1024",))) as db:
        assert db.execute("PRAGMA cache_size").fetchone()[0] == -1024


def test_a_transaction_commits_when_its_block_ends(db: sqlite3.Connection) -> None:
    with transaction(db, "test store") as tx:
        tx.execute("INSERT INTO t VALUES (1)")
        tx.execute("INSERT INTO t VALUES (2)")
    assert count(db) == 2
    assert not db.in_transaction


def insert_then(db: sqlite3.Connection, failure: Callable[[sqlite3.Connection], object]) -> None:
    with transaction(db, "test store") as tx:
        tx.execute("INSERT INTO t VALUES (1)")
        failure(tx)


def refuse(tx: sqlite3.Connection) -> None:
    raise ValueError("refused")


def test_an_error_in_the_block_rolls_everything_back_and_goes_on_unchanged(db: sqlite3.Connection) -> None:
    with pytest.raises(ValueError, match="refused"):
        insert_then(db, refuse)
    assert count(db) == 0
    assert not db.in_transaction


def test_a_sqlite_error_rolls_back_and_becomes_a_store_error(db: sqlite3.Connection) -> None:
    with pytest.raises(StoreError):
        insert_then(db, lambda tx: tx.execute("INSERT INTO t VALUES (1)"))  # the same primary key again
    assert count(db) == 0
    assert not db.in_transaction


def test_begin_now_does_not_wait_for_another_writer(tmp_path: Path, db: sqlite3.Connection) -> None:
    with closing(sqlite3.connect(tmp_path / "state.db", isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")  # another process is committing
        assert begin_now(db, busy_timeout_ms=30_000) is False
        assert not db.in_transaction
        other.execute("ROLLBACK")
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 30_000, "the usual wait is put back"
    assert begin_now(db, busy_timeout_ms=30_000) is True
    with transaction(db, "test store", begun=True) as tx:
        tx.execute("INSERT INTO t VALUES (1)")
    assert count(db) == 1


OPENER = """
import sys, time
from pathlib import Path
from bastion.store.sqlite_db import open_private
start = float(sys.argv[2])
while time.time() < start:
    pass
open_private(Path(sys.argv[1])).executescript("CREATE TABLE IF NOT EXISTS t (x)")
"""


def test_gateways_starting_together_on_a_fresh_home_all_open_the_file(tmp_path: Path) -> None:
    # SQLite answers "database is locked" at once, without its busy handler, to a connection that
    # switches a new file to WAL while another does: four `bastion wrap` started by one client config
    # on a fresh home lost one gateway that way about one time in ten.
    for attempt in range(6):
        path = tmp_path / f"race-{attempt}.db"
        start = time.time() + 1.0
        openers = [
            subprocess.Popen([sys.executable, "-c", OPENER, str(path), str(start)], stderr=subprocess.PIPE)
            for _ in range(6)
        ]
        errors = [opener.communicate(timeout=60)[1].decode() for opener in openers]
        failures = [error for opener, error in zip(openers, errors, strict=True) if opener.returncode != 0]
        assert failures == [], failures[0]
