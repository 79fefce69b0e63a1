"""The audit store on PostgreSQL: gateways share one database, each batch is one transaction,
and a password never appears in what the store says about itself."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from bastion.errors import StoreError
from bastion.store.audit import EntryRow, LogRow, NodeRow
from bastion.store.audit_postgres import PostgresAuditStore
from tests.audit.conftest import Backend

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


def entry(idx: int) -> EntryRow:
    return EntryRow(idx, bytes([idx]) * 32, f"entry {idx}".encode(), float(idx), "call")


@pytest.fixture
def store(backend: Backend) -> Iterator[PostgresAuditStore]:
    opened = PostgresAuditStore(backend.url)
    yield opened
    opened.close()


def test_two_gateways_share_the_database_each_appending_to_its_own_log(backend: Backend) -> None:
    first, second = PostgresAuditStore(backend.url), PostgresAuditStore(backend.url)
    try:
        first.create_log(LogRow("log-a", "bastion/a", "a", 1, 1.0))
        second.create_log(LogRow("log-b", "bastion/b", "b", 2, 2.0))
        first.append_batch("log-a", [entry(0), entry(1)], [], [])
        second.append_batch("log-b", [entry(0)], [], [])
        assert [log.log_id for log in second.logs()] == ["log-a", "log-b"]
        assert second.size("log-a") == 2
        assert first.size("log-b") == 1
    finally:
        first.close()
        second.close()


def test_a_failed_batch_leaves_nothing_and_the_index_stays_assigned(
    backend: Backend, store: PostgresAuditStore
) -> None:
    store.append_batch("log-a", [entry(0)], [], [])
    with pytest.raises(StoreError):
        store.append_batch("log-a", [entry(1), entry(0)], [NodeRow(4, 0, b"n" * 32)], [])
    assert backend.sql("SELECT idx, entry FROM audit_entries", ()) == [(0, b"entry 0")]
    assert backend.sql("SELECT COUNT(*) FROM audit_nodes", ()) == [(0,)]
    store.append_batch("log-a", [entry(1)], [], [])
    assert store.size("log-a") == 2


def test_opening_an_existing_schema_again_keeps_its_rows(backend: Backend, store: PostgresAuditStore) -> None:
    store.create_log(LogRow("log-a", "bastion/a", "a", 1, 1.0))
    store.append_batch("log-a", [entry(0)], [], [])
    again = PostgresAuditStore(backend.url)
    try:
        assert again.size("log-a") == 1
        assert [log.log_id for log in again.logs()] == ["log-a"]
    finally:
        again.close()


def test_the_identity_and_errors_never_show_the_password(backend: Backend) -> None:
    parts = urlsplit(backend.url)
    user, password = parts.username or "postgres", parts.password or "hunter2"  # trust accepts any password
    netloc = f"{user}:{password}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    store = PostgresAuditStore(urlunsplit(parts._replace(netloc=netloc)))
    try:
        assert password not in store.identity
        assert store.identity.startswith(f"{parts.scheme}://{user}:***@")
        store.append_batch("log-a", [entry(0)], [], [])
        with pytest.raises(StoreError) as failed:
            store.append_batch("log-a", [entry(0)], [], [])
        assert password not in str(failed.value)
    finally:
        store.close()
