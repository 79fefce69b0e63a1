"""Audit tests run against both stores: the embedded SQLite file and a real PostgreSQL.

PostgreSQL is reached at BASTION_TEST_POSTGRES_URL (default: the machine's local server);
each test gets a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql as pgsql

from bastion.store.audit import AuditStore
from bastion.store.audit_postgres import PostgresAuditStore
from bastion.store.audit_sqlite import SqliteAuditStore

POSTGRES_URL = os.environ.get("BASTION_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass
class Backend:
    """A store, and a raw connection to tamper with it the way an attacker with file or DB access would."""

    name: str
    url: str
    open: Callable[[], AuditStore]
    sql: Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]]
    snapshot: Callable[[], Callable[[], None]]
    """Copy the store now; calling the result rolls the store back to that copy."""


def _sqlite_backend(path: Path) -> Backend:
    def sql(query: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with sqlite3.connect(path) as db:
            return db.execute(query, args).fetchall()

    def snapshot() -> Callable[[], None]:
        copy = path.with_suffix(".copy")
        with sqlite3.connect(path) as source, sqlite3.connect(copy) as target:
            source.backup(target)

        def restore() -> None:
            with sqlite3.connect(copy) as source, sqlite3.connect(path) as target:
                source.backup(target)

        return restore

    return Backend("sqlite", f"sqlite:{path}", lambda: SqliteAuditStore(path), sql, snapshot)


def _postgres_backend(schema: str) -> Backend:
    url = f"{POSTGRES_URL}?options={quote(f'-csearch_path={schema}')}"
    tables = ("audit_logs", "audit_entries", "audit_nodes", "audit_checkpoints", "audit_data_keys")

    def sql(query: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(url, autocommit=True) as db:
            cursor = db.execute(pgsql.SQL(query.replace("?", "%s")), args)  # pyright: ignore[reportArgumentType]
            return cursor.fetchall() if cursor.description else []

    def snapshot() -> Callable[[], None]:
        backup = f"{schema}_copy"
        with psycopg.connect(POSTGRES_URL, autocommit=True) as db:
            db.execute(pgsql.SQL("CREATE SCHEMA {}").format(pgsql.Identifier(backup)))
            for table in tables:
                db.execute(
                    pgsql.SQL("CREATE TABLE {} AS TABLE {}").format(
                        pgsql.Identifier(backup, table), pgsql.Identifier(schema, table)
                    )
                )

        def restore() -> None:
            with psycopg.connect(POSTGRES_URL, autocommit=True) as db:
                for table in tables:
                    db.execute(pgsql.SQL("DELETE FROM {}").format(pgsql.Identifier(schema, table)))
                    db.execute(
                        pgsql.SQL("INSERT INTO {} SELECT * FROM {}").format(
                            pgsql.Identifier(schema, table), pgsql.Identifier(backup, table)
                        )
                    )

        return restore

    return Backend("postgresql", url, lambda: PostgresAuditStore(url), sql, snapshot)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield _sqlite_backend(tmp_path / "audit.db")
        return
    schema = f"bastion_test_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as db:
            db.execute(pgsql.SQL("CREATE SCHEMA {}").format(pgsql.Identifier(schema)))
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL} (set BASTION_TEST_POSTGRES_URL): {exc}")
    try:
        yield _postgres_backend(schema)
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as db:
            for name in (schema, f"{schema}_copy"):
                db.execute(pgsql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(pgsql.Identifier(name)))
