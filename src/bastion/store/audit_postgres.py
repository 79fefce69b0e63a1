"""The audit store on PostgreSQL: many gateways share one database, each writing its own log.

Logs are keyed by their id, so instances never contend on one sequence; every batch is one
transaction. Connections come from a small pool; the interface is synchronous and runs in a
worker thread, like the SQLite store.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from bastion.audit.merkle import perfect_root
from bastion.errors import StoreError
from bastion.store.audit import STORED_NODE_LEVEL, CheckpointRow, EntryRow, LogRow, NodeRow, PayloadRow, SearchFilter

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


class PostgresAuditStore:
    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self._pool = ConnectionPool(url, min_size=1, max_size=4, open=True, timeout=10.0)
            with self._pool.connection() as db:
                db.execute("SELECT pg_advisory_xact_lock(7412300)")  # one schema creator at a time
                db.execute(SCHEMA)  # pyright: ignore[reportArgumentType]
        except (psycopg.Error, OSError) as exc:
            raise StoreError(f"cannot open the audit store at {_safe(url)}: {exc}") from exc

    @property
    def identity(self) -> str:
        return _safe(self.url)

    def close(self) -> None:
        self._pool.close()

    def _write(self, statements: list[tuple[str, list[tuple[Any, ...]]]]) -> None:
        try:
            with self._pool.connection() as db, db.transaction(), db.cursor() as cursor:
                for sql, rows in statements:
                    if rows:
                        cursor.executemany(sql, rows)  # pyright: ignore[reportArgumentType]
        except psycopg.Error as exc:
            raise StoreError(f"audit store {_safe(self.url)}: {exc}") from exc

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            with self._pool.connection() as db:
                return db.execute(sql, args).fetchall()  # pyright: ignore[reportArgumentType]
        except psycopg.Error as exc:
            raise StoreError(f"audit store {_safe(self.url)}: {exc}") from exc

    def create_log(self, log: LogRow) -> None:
        self._write(
            [
                (
                    "INSERT INTO audit_logs VALUES (%s, %s, %s, %s, %s)",
                    [(log.log_id, log.origin, log.instance, log.pid, log.created)],
                )
            ]
        )

    def logs(self) -> list[LogRow]:
        rows = self._read("SELECT log_id, origin, instance, pid, created FROM audit_logs ORDER BY created, log_id")
        return [LogRow(*row) for row in rows]

    def append_batch(
        self, log_id: str, entries: list[EntryRow], nodes: list[NodeRow], payloads: list[PayloadRow]
    ) -> None:
        sealed = {p.idx: p for p in payloads}
        rows = [
            (
                *(log_id, e.idx, e.leaf, e.entry, e.time, e.kind, e.server, e.tool, e.client, e.decision),
                *((sealed[e.idx].epoch, sealed[e.idx].sealed) if e.idx in sealed else (None, None)),
            )
            for e in entries
        ]
        statements: list[tuple[str, list[tuple[Any, ...]]]] = [
            ("INSERT INTO audit_entries VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, NULL)", rows)
        ]
        if nodes:
            statements.append(
                ("INSERT INTO audit_nodes VALUES (%s, %s, %s, %s)", [(log_id, n.level, n.idx, n.hash) for n in nodes])
            )
        self._write(statements)

    def size(self, log_id: str) -> int:
        return int(self._read("SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_entries WHERE log_id = %s", (log_id,))[0][0])

    def entries(self, log_id: str, start: int = 0, end: int | None = None) -> Iterator[EntryRow]:
        stop = end if end is not None else 1 << 62
        position = start
        while position < stop:
            rows = self._read(
                "SELECT idx, leaf, entry, time, kind, server, tool, client, decision FROM audit_entries "
                "WHERE log_id = %s AND idx >= %s AND idx < %s ORDER BY idx LIMIT 5000",
                (log_id, position, stop),
            )
            if not rows:
                return
            for row in rows:
                yield EntryRow(row[0], bytes(row[1]), bytes(row[2]), *row[3:])
            position = int(rows[-1][0]) + 1

    def raw_entries(self, log_id: str) -> Iterator[tuple[int, bytes, bytes]]:
        position = 0
        while True:
            rows = self._read(
                "SELECT idx, leaf, entry FROM audit_entries WHERE log_id = %s AND idx >= %s ORDER BY idx LIMIT 20000",
                (log_id, position),
            )
            if not rows:
                return
            yield from rows  # (idx, leaf, entry): both drivers return BLOB/BYTEA as bytes
            position = rows[-1][0] + 1

    def subtree(self, log_id: str, level: int, idx: int) -> bytes:
        if level < STORED_NODE_LEVEL:
            start, count = idx << level, 1 << level
            rows = self._read(
                "SELECT leaf FROM audit_entries WHERE log_id = %s AND idx >= %s AND idx < %s ORDER BY idx",
                (log_id, start, start + count),
            )
            if len(rows) != count:
                raise StoreError(f"audit log {log_id}: leaves {start}..{start + count - 1} are missing")
            return perfect_root([bytes(row[0]) for row in rows])
        rows = self._read(
            "SELECT hash FROM audit_nodes WHERE log_id = %s AND level = %s AND idx = %s", (log_id, level, idx)
        )
        if not rows:
            raise StoreError(f"audit log {log_id}: subtree ({level}, {idx}) is missing")
        return bytes(rows[0][0])

    def add_checkpoint(self, row: CheckpointRow) -> None:
        self._write(
            [
                (
                    "INSERT INTO audit_checkpoints VALUES (%s, %s, %s, %s, %s)",
                    [(row.log_id, row.size, row.root, row.note, row.time)],
                )
            ]
        )

    def checkpoints(self, log_id: str) -> list[CheckpointRow]:
        rows = self._read(
            "SELECT log_id, size, root, note, time FROM audit_checkpoints WHERE log_id = %s ORDER BY size", (log_id,)
        )
        return [CheckpointRow(row[0], row[1], bytes(row[2]), row[3], row[4]) for row in rows]

    def latest_checkpoint(self, log_id: str) -> CheckpointRow | None:
        rows = self.checkpoints(log_id)
        return rows[-1] if rows else None

    def payload(self, log_id: str, idx: int) -> tuple[str, bytes | None] | None:
        rows = self._read("SELECT epoch, sealed FROM audit_entries WHERE log_id = %s AND idx = %s", (log_id, idx))
        if not rows or rows[0][0] is None:
            return None
        return str(rows[0][0]), (bytes(rows[0][1]) if rows[0][1] is not None else None)

    def redact(self, log_id: str, idx: int) -> bool:
        try:
            with self._pool.connection() as db:
                cursor = db.execute(
                    "UPDATE audit_entries SET sealed = NULL, redacted = EXTRACT(EPOCH FROM now()) "
                    "WHERE log_id = %s AND idx = %s AND sealed IS NOT NULL",
                    (log_id, idx),
                )
                return cursor.rowcount > 0
        except psycopg.Error as exc:
            raise StoreError(f"audit store {_safe(self.url)}: {exc}") from exc

    def data_key(self, epoch: str) -> bytes | None:
        rows = self._read("SELECT wrapped FROM audit_data_keys WHERE epoch = %s", (epoch,))
        return bytes(rows[0][0]) if rows and rows[0][0] is not None else None

    def put_data_key(self, epoch: str, wrapped: bytes) -> bytes:
        self._write(
            [("INSERT INTO audit_data_keys VALUES (%s, %s, NULL) ON CONFLICT (epoch) DO NOTHING", [(epoch, wrapped)])]
        )
        found = self.data_key(epoch)
        if found is None:
            raise StoreError(f"the data key of {epoch} was shredded; payloads of that day cannot be written")
        return found

    def shred_before(self, epoch: str, now: float) -> list[str]:
        rows = self._read("SELECT epoch FROM audit_data_keys WHERE epoch < %s AND wrapped IS NOT NULL", (epoch,))
        shredded = [str(r[0]) for r in rows]
        self._write(
            [
                (
                    "UPDATE audit_data_keys SET wrapped = NULL, shredded = %s WHERE epoch = %s",
                    [(now, e) for e in shredded],
                )
            ]
        )
        return shredded

    def search(self, filters: SearchFilter) -> list[tuple[str, EntryRow]]:
        clauses, args = ["TRUE"], list[Any]()
        for column in ("server", "tool", "client", "decision", "kind"):
            value = getattr(filters, column)
            if value is not None:
                clauses.append(f"{column} = %s")
                args.append(value)
        if filters.since is not None:
            clauses.append("time >= %s")
            args.append(filters.since)
        if filters.until is not None:
            clauses.append("time < %s")
            args.append(filters.until)
        args.append(filters.limit)
        rows = self._read(
            "SELECT log_id, idx, leaf, entry, time, kind, server, tool, client, decision FROM audit_entries "  # noqa: S608 (fixed column names, values bound)
            f"WHERE {' AND '.join(clauses)} ORDER BY time DESC, log_id, idx DESC LIMIT %s",
            tuple(args),
        )
        return [(row[0], EntryRow(row[1], bytes(row[2]), bytes(row[3]), *row[4:])) for row in rows]


def _safe(url: str) -> str:
    """The URL without a password, for messages."""
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)
