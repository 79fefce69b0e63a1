"""The audit store on PostgreSQL: many gateways share one database, each writing its own log.

Logs are keyed by their id, so instances never contend on one sequence; every batch is one
transaction. Connections come from a small pool; the interface is synchronous and runs in a
worker thread, like the SQLite store.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg import sql as pgsql
from psycopg_pool import ConnectionPool

from bastion.errors import StoreError
from bastion.store.audit_sql import SqlAuditStore, Statements
from bastion.store.shared import SCHEMA_LOCK

__all__ = ["PostgresAuditStore"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_logs (
    log_id TEXT PRIMARY KEY, origin TEXT NOT NULL, instance TEXT NOT NULL, pid INTEGER NOT NULL,
    created DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_entries (
    log_id TEXT NOT NULL, idx BIGINT NOT NULL, leaf BYTEA NOT NULL, entry BYTEA NOT NULL,
    time DOUBLE PRECISION NOT NULL, kind TEXT NOT NULL, server TEXT, tool TEXT, client TEXT, decision TEXT,
    epoch TEXT, sealed BYTEA, redacted DOUBLE PRECISION,
    PRIMARY KEY (log_id, idx)
);
CREATE INDEX IF NOT EXISTS audit_entries_time ON audit_entries (time);
CREATE TABLE IF NOT EXISTS audit_nodes (
    log_id TEXT NOT NULL, level INTEGER NOT NULL, idx BIGINT NOT NULL, hash BYTEA NOT NULL,
    PRIMARY KEY (log_id, level, idx)
);
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    log_id TEXT NOT NULL, size BIGINT NOT NULL, root BYTEA NOT NULL, note TEXT NOT NULL,
    time DOUBLE PRECISION NOT NULL, PRIMARY KEY (log_id, size)
);
CREATE TABLE IF NOT EXISTS audit_data_keys (epoch TEXT PRIMARY KEY, wrapped BYTEA, shredded DOUBLE PRECISION);
"""


class PostgresAuditStore(SqlAuditStore):
    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self._pool = ConnectionPool(url, min_size=1, max_size=4, open=True, timeout=10.0)
            with self._pool.connection() as db:
                db.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))  # one schema creator at a time
                db.execute(SCHEMA)  # pyright: ignore[reportArgumentType]
        except (psycopg.Error, OSError) as exc:
            raise StoreError(f"cannot open the audit store at {_safe(url)}: {exc}") from exc

    @property
    def identity(self) -> str:
        return _safe(self.url)

    def close(self) -> None:
        self._pool.close()

    def _failure(self, exc: psycopg.Error) -> StoreError:
        if isinstance(exc, psycopg.OperationalError):
            # The server went away: its other idle connections are broken too. Drop them now, so that
            # the first calls once it is back do not fail on a dead connection (psycopg_pool's advice).
            self._pool.check()
        return StoreError(f"audit store {_safe(self.url)}: {exc}")

    def _write(self, statements: Statements) -> None:
        try:
            with self._pool.connection() as db, db.transaction(), db.cursor() as cursor:
                for sql, rows in statements:
                    if rows:
                        cursor.executemany(_pg(sql), rows)
        except psycopg.Error as exc:
            raise self._failure(exc) from exc

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            with self._pool.connection() as db:
                return db.execute(_pg(sql), args).fetchall()
        except psycopg.Error as exc:
            raise self._failure(exc) from exc

    def _count(self, sql: str, args: tuple[Any, ...]) -> int:
        try:
            with self._pool.connection() as db:
                return db.execute(_pg(sql), args).rowcount
        except psycopg.Error as exc:
            raise self._failure(exc) from exc


def _safe(url: str) -> str:
    """The URL without a password, for messages."""
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def _pg(sql: str) -> pgsql.SQL:
    """A query written with `?` placeholders, as psycopg wants it (the queries hold no literal `?`)."""
    return pgsql.SQL(sql.replace("?", "%s"))  # pyright: ignore[reportArgumentType]
