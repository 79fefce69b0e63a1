"""The state gateways share (approvals, alerts, checks): a SQLite file in the home, or the audit
log's PostgreSQL, behind one small SQL layer."""

from __future__ import annotations

import secrets
import socket
import stat
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import psycopg
import pytest
from psycopg import sql as pgsql

from bastion.approvals.store import SCHEMA as APPROVALS
from bastion.errors import StoreError
from bastion.store.shared import SharedDb, shared_url
from bastion.watch.store import SCHEMA as WATCH
from tests.audit.conftest import Backend

SCHEMA = ("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)",)
on_postgresql = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def shared(backend: Backend) -> Iterator[SharedDb]:
    opened = SharedDb(backend.url, SCHEMA, "notes")
    yield opened
    opened.close()


def test_the_state_is_in_postgresql_when_the_audit_log_is_else_a_file_in_the_home(tmp_path: Path) -> None:
    assert shared_url(tmp_path, "postgresql://db/bastion", "watch") == "postgresql://db/bastion"
    assert shared_url(tmp_path, "postgres://db/bastion", "watch") == "postgres://db/bastion"
    assert shared_url(tmp_path, None, "watch") == f"sqlite:{tmp_path / 'watch.db'}"
    assert shared_url(tmp_path, "sqlite:/var/audit.db", "approvals") == f"sqlite:{tmp_path / 'approvals.db'}"


def test_a_sqlite_row_is_seen_by_another_gateway_at_once_and_the_file_is_private(tmp_path: Path) -> None:
    url = shared_url(tmp_path, None, "notes")
    first, second = SharedDb(url, SCHEMA, "notes"), SharedDb(url, SCHEMA, "notes")
    try:
        assert first.postgres is False
        first.execute("INSERT INTO notes VALUES (?, ?)", (1, "held"))
        first.notify("notes", "1")  # SQLite waiters poll: nothing to wake, and nothing fails
        assert second.execute("SELECT text FROM notes WHERE id = ?", (1,)).fetchall() == [("held",)]
        assert stat.S_IMODE((tmp_path / "notes.db").stat().st_mode) == 0o600
    finally:
        first.close()
        second.close()


def test_a_sqlite_error_is_a_store_error_whether_opening_or_writing(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        SharedDb(f"sqlite:{tmp_path / 'missing' / 'notes.db'}", SCHEMA, "notes")
    with pytest.raises(StoreError):
        SharedDb(f"sqlite:{tmp_path / 'bad.db'}", ("CREATE TABLE (",), "notes")
    shared = SharedDb(f"sqlite:{tmp_path / 'notes.db'}", SCHEMA, "notes")
    try:
        shared.execute("INSERT INTO notes VALUES (?, ?)", (1, "first"))
        with pytest.raises(StoreError):
            shared.execute("INSERT INTO notes VALUES (?, ?)", (1, "the same id"))
        assert shared.execute("SELECT text FROM notes").fetchall() == [("first",)]
    finally:
        shared.close()


def test_an_unreachable_postgresql_is_a_store_error_without_its_password(closed_port: int) -> None:
    with pytest.raises(StoreError) as failed:
        SharedDb(f"postgresql://bastion:hunter2@127.0.0.1:{closed_port}/bastion", SCHEMA, "notes")
    assert "hunter2" not in str(failed.value)


@on_postgresql
def test_a_postgresql_row_written_with_question_marks_is_seen_by_another_gateway(
    backend: Backend, shared: SharedDb
) -> None:
    assert shared.postgres is True
    shared.execute("INSERT INTO notes VALUES (?, ?)", (1, "held"))
    other = SharedDb(backend.url, SCHEMA, "notes")
    try:
        assert other.execute("SELECT text FROM notes WHERE id = ?", (1,)).fetchall() == [("held",)]
    finally:
        other.close()


@on_postgresql
def test_notify_wakes_a_postgresql_listener_with_its_payload(backend: Backend, shared: SharedDb) -> None:
    channel = f"notes_{secrets.token_hex(4)}"
    with psycopg.connect(backend.url, autocommit=True) as listener:
        listener.execute(pgsql.SQL("LISTEN {}").format(pgsql.Identifier(channel)))
        shared.notify(channel, "approval-7")
        heard = [(note.channel, note.payload) for note in listener.notifies(timeout=5, stop_after=1)]
    assert heard == [(channel, "approval-7")]


@on_postgresql
def test_a_connection_the_server_dropped_fails_one_call_then_is_replaced(backend: Backend, shared: SharedDb) -> None:
    shared.execute("INSERT INTO notes VALUES (?, ?)", (1, "kept"))
    [(pid,)] = shared.execute("SELECT pg_backend_pid()").fetchall()
    backend.sql("SELECT pg_terminate_backend(?)", (pid,))
    with pytest.raises(StoreError):
        shared.execute("SELECT text FROM notes")
    assert shared.execute("SELECT text FROM notes").fetchall() == [("kept",)]
    [(new_pid,)] = shared.execute("SELECT pg_backend_pid()").fetchall()
    assert new_pid != pid


@on_postgresql
def test_gateways_starting_together_on_a_new_postgresql_all_open_it(backend: Backend) -> None:
    """`CREATE TABLE IF NOT EXISTS` run at once by several sessions can fail one of them (two
    inserts into the catalog); the schema is made under a lock, so every gateway starts."""
    schemas = [APPROVALS, WATCH] * 4
    start = threading.Barrier(len(schemas))
    failures: list[BaseException] = []
    opened: list[SharedDb] = []

    def open_one(schema: Sequence[str]) -> None:
        start.wait()
        try:
            opened.append(SharedDb(backend.url, schema, "race"))
        except BaseException as exc:  # what a gateway that fails to start would see
            failures.append(exc)

    threads = [threading.Thread(target=open_one, args=(schema,)) for schema in schemas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for db in opened:
        db.close()
    assert failures == []
    assert len(opened) == len(schemas)
