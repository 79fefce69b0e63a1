"""Which audit store a URL names: SQLite in the home by default, a file, or PostgreSQL; nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.errors import StoreError
from bastion.store.audit import AuditStore, EntryRow, LogRow
from bastion.store.audit_open import inline_append, open_store
from bastion.store.audit_postgres import PostgresAuditStore
from bastion.store.audit_sqlite import SqliteAuditStore
from tests.audit.conftest import Backend

ENTRY = EntryRow(0, b"l" * 32, b"entry", 1.0, "call")


def test_no_url_opens_the_sqlite_file_in_the_home(tmp_path: Path) -> None:
    store = open_store(tmp_path, None)
    try:
        assert isinstance(store, SqliteAuditStore)
        assert store.identity == f"sqlite:{(tmp_path / 'audit.db').resolve()}"
    finally:
        store.close()


@pytest.mark.parametrize("prefix", ["sqlite:", "sqlite://"])
def test_a_sqlite_url_opens_that_file_wherever_it_is(tmp_path: Path, prefix: str) -> None:
    path = tmp_path / "elsewhere.db"
    store = open_store(tmp_path / "home", prefix + str(path))
    try:
        assert store.identity == f"sqlite:{path.resolve()}"
        assert path.exists()
        assert not (tmp_path / "home").exists()
    finally:
        store.close()


@pytest.mark.parametrize("url", ["mysql://db/bastion", "audit.db", "file:audit.db"])
def test_an_unknown_store_is_refused_before_anything_is_created(tmp_path: Path, url: str) -> None:
    with pytest.raises(StoreError):
        open_store(tmp_path, url)
    assert list(tmp_path.iterdir()) == []


def test_sqlite_offers_an_append_that_commits_at_once(tmp_path: Path) -> None:
    store = open_store(tmp_path, None)
    try:
        store.create_log(LogRow("log-a", "bastion/test", "test", 1, 1.0))
        append = inline_append(store)
        assert append is not None
        assert append("log-a", [ENTRY], [], []) is True
        assert store.size("log-a") == 1
    finally:
        store.close()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_postgresql_url_opens_the_shared_database_which_has_no_inline_append(backend: Backend) -> None:
    store: AuditStore = open_store(Path("unused"), backend.url)
    try:
        assert isinstance(store, PostgresAuditStore)
        assert inline_append(store) is None
        store.create_log(LogRow("log-a", "bastion/test", "test", 1, 1.0))
        assert backend.sql("SELECT log_id FROM audit_logs", ()) == [("log-a",)]
    finally:
        store.close()
