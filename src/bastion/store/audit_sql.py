"""The audit store's queries, written once for both SQL databases.

Subclasses supply the connection: `_read` and `_write` (one durable transaction), `_count`
(for updates whose effect matters), `identity` and `close`. Queries use `?` placeholders;
the PostgreSQL store turns them into its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from bastion.errors import StoreError
from bastion.store.audit import (
    STORED_NODE_LEVEL,
    CheckpointRow,
    EntryRow,
    LogRow,
    NodeRow,
    PayloadRow,
    SearchFilter,
    StoredEntry,
)

__all__ = ["ENTRY_INSERT", "NODE_INSERT", "SIZE_QUERY", "SqlAuditStore", "entry_rows", "node_rows"]

Statements = list[tuple[str, list[tuple[Any, ...]]]]

ENTRY_INSERT = "INSERT INTO audit_entries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)"
NODE_INSERT = "INSERT INTO audit_nodes VALUES (?, ?, ?, ?)"
SIZE_QUERY = "SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_entries WHERE log_id = ?"


def entry_rows(log_id: str, entries: list[EntryRow], payloads: list[PayloadRow]) -> list[tuple[Any, ...]]:
    """`audit_entries` rows for a batch, each with its sealed payload if it has one (the last column aside)."""
    sealed = {p.idx: p for p in payloads}
    return [
        (
            *(log_id, e.idx, e.leaf, e.entry, e.time, e.kind, e.server, e.tool, e.client, e.decision),
            *((sealed[e.idx].epoch, sealed[e.idx].sealed) if e.idx in sealed else (None, None)),
        )
        for e in entries
    ]


def node_rows(log_id: str, nodes: list[NodeRow]) -> list[tuple[Any, ...]]:
    return [(log_id, n.level, n.idx, n.hash) for n in nodes]


class SqlAuditStore:
    def _write(self, statements: Statements) -> None:
        raise NotImplementedError

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _count(self, sql: str, args: tuple[Any, ...]) -> int:
        """Run one update in its own transaction; how many rows it changed."""
        raise NotImplementedError

    def commit_held(self) -> None:
        """Nothing is held: every append is committed."""

    def create_log(self, log: LogRow) -> None:
        self._write(
            [
                (
                    "INSERT INTO audit_logs VALUES (?, ?, ?, ?, ?)",
                    [(log.log_id, log.origin, log.instance, log.pid, log.created)],
                )
            ]
        )

    def logs(self) -> list[LogRow]:
        rows = self._read("SELECT log_id, origin, instance, pid, created FROM audit_logs ORDER BY created, log_id")
        return [LogRow(str(r[0]), str(r[1]), str(r[2]), int(r[3]), float(r[4])) for r in rows]  # type: ignore[arg-type]

    def append_batch(
        self, log_id: str, entries: list[EntryRow], nodes: list[NodeRow], payloads: list[PayloadRow]
    ) -> None:
        self._write(self._append_statements(log_id, entries, nodes, payloads))

    def _append_statements(
        self, log_id: str, entries: list[EntryRow], nodes: list[NodeRow], payloads: list[PayloadRow]
    ) -> Statements:
        statements: Statements = [(ENTRY_INSERT, entry_rows(log_id, entries, payloads))]
        if nodes:
            statements.append((NODE_INSERT, node_rows(log_id, nodes)))
        return statements

    def size(self, log_id: str) -> int:
        row = self._read(SIZE_QUERY, (log_id,))
        return int(row[0][0])  # type: ignore[arg-type]

    def entries(self, log_id: str, start: int = 0, end: int | None = None) -> Iterator[EntryRow]:
        stop = end if end is not None else 1 << 62
        batch = 5000
        position = start
        while position < stop:
            rows = self._read(
                "SELECT idx, leaf, entry, time, kind, server, tool, client, decision FROM audit_entries "
                "WHERE log_id = ? AND idx >= ? AND idx < ? ORDER BY idx LIMIT ?",
                (log_id, position, stop, batch),
            )
            if not rows:
                return
            for row in rows:
                yield EntryRow(*row)  # type: ignore[arg-type]
            position = int(rows[-1][0]) + 1  # type: ignore[arg-type]

    def raw_entries(self, log_id: str, start: int = 0, end: int | None = None) -> Iterator[StoredEntry]:
        position, stop = start, end if end is not None else 1 << 62
        while position < stop:
            rows = self._read(
                "SELECT idx, leaf, entry, time, kind, server, tool, client, decision, epoch, sealed IS NOT NULL, "
                "redacted FROM audit_entries WHERE log_id = ? AND idx >= ? AND idx < ? ORDER BY idx LIMIT 20000",
                (log_id, position, stop),
            )
            if not rows:
                return
            yield from rows  # type: ignore[misc]  # both drivers return BLOB/BYTEA as bytes
            position = rows[-1][0] + 1

    def nodes(self, log_id: str, level: int, end: int) -> Iterator[tuple[int, bytes]]:
        position = 0
        while position < end:
            rows = self._read(
                "SELECT idx, hash FROM audit_nodes WHERE log_id = ? AND level = ? AND idx >= ? AND idx < ? "
                "ORDER BY idx LIMIT 20000",
                (log_id, level, position, end),
            )
            if not rows:
                return
            for idx, value in rows:
                yield int(idx), bytes(value)
            position = int(rows[-1][0]) + 1

    def sealed_payloads(self, log_id: str, start: int, end: int) -> Iterator[tuple[int, bytes, str | None, bytes]]:
        position = start
        while position < end:
            rows = self._read(
                "SELECT idx, entry, epoch, sealed FROM audit_entries WHERE log_id = ? AND idx >= ? AND idx < ? "
                "AND sealed IS NOT NULL ORDER BY idx LIMIT 2000",
                (log_id, position, end),
            )
            if not rows:
                return
            for idx, entry, epoch, sealed in rows:
                yield int(idx), bytes(entry), (str(epoch) if epoch is not None else None), bytes(sealed)
            position = int(rows[-1][0]) + 1

    def data_keys(self) -> list[tuple[str, bytes | None, float | None]]:
        rows = self._read("SELECT epoch, wrapped, shredded FROM audit_data_keys ORDER BY epoch")
        return [(str(r[0]), bytes(r[1]) if r[1] is not None else None, r[2]) for r in rows]

    def stored_log_ids(self) -> set[str]:
        """Found by skipping from one log id to the next along each table's primary key: a lookup per log,
        never a scan of the entries."""
        found: set[str] = set()
        for table in ("audit_entries", "audit_nodes", "audit_checkpoints"):
            rows = self._read(f"SELECT MIN(log_id) FROM {table}")  # noqa: S608 (fixed table names)
            while rows and rows[0][0] is not None:
                found.add(str(rows[0][0]))
                rows = self._read(f"SELECT MIN(log_id) FROM {table} WHERE log_id > ?", (rows[0][0],))  # noqa: S608
        return found

    def subtree_hashes(self, log_id: str, level: int, idx: int) -> list[bytes]:
        if level < STORED_NODE_LEVEL:
            start, count = idx << level, 1 << level
            rows = self._read(
                "SELECT leaf FROM audit_entries WHERE log_id = ? AND idx >= ? AND idx < ? ORDER BY idx",
                (log_id, start, start + count),
            )
            if len(rows) != count:
                raise StoreError(f"audit log {log_id}: leaves {start}..{start + count - 1} are missing")
            return [bytes(row[0]) for row in rows]
        rows = self._read(
            "SELECT hash FROM audit_nodes WHERE log_id = ? AND level = ? AND idx = ?", (log_id, level, idx)
        )
        if not rows:
            raise StoreError(f"audit log {log_id}: subtree ({level}, {idx}) is missing")
        return [bytes(rows[0][0])]

    def add_checkpoint(self, row: CheckpointRow) -> None:
        self._write(
            [
                (
                    "INSERT INTO audit_checkpoints VALUES (?, ?, ?, ?, ?)",
                    [(row.log_id, row.size, row.root, row.note, row.time)],
                )
            ]
        )

    def checkpoints(self, log_id: str) -> list[CheckpointRow]:
        rows = self._read(
            "SELECT log_id, size, root, note, time FROM audit_checkpoints WHERE log_id = ? ORDER BY size", (log_id,)
        )
        return [CheckpointRow(*row) for row in rows]  # type: ignore[arg-type]

    def latest_checkpoint(self, log_id: str) -> CheckpointRow | None:
        rows = self._read(
            "SELECT log_id, size, root, note, time FROM audit_checkpoints WHERE log_id = ? ORDER BY size DESC LIMIT 1",
            (log_id,),
        )
        return CheckpointRow(*rows[0]) if rows else None  # type: ignore[arg-type]

    def payload(self, log_id: str, idx: int) -> tuple[str, bytes | None] | None:
        rows = self._read("SELECT epoch, sealed FROM audit_entries WHERE log_id = ? AND idx = ?", (log_id, idx))
        if not rows or rows[0][0] is None:
            return None
        return str(rows[0][0]), (bytes(rows[0][1]) if rows[0][1] is not None else None)

    def redact(self, log_id: str, idx: int) -> bool:
        return (
            self._count(
                "UPDATE audit_entries SET sealed = NULL, redacted = ? WHERE log_id = ? AND idx = ? AND sealed IS NOT NULL",
                (time.time(), log_id, idx),
            )
            > 0
        )

    def data_key(self, epoch: str) -> bytes | None:
        rows = self._read("SELECT wrapped FROM audit_data_keys WHERE epoch = ?", (epoch,))
        return bytes(rows[0][0]) if rows and rows[0][0] is not None else None  # type: ignore[arg-type]

    def put_data_key(self, epoch: str, wrapped: bytes) -> bytes:
        self._write(
            [("INSERT INTO audit_data_keys VALUES (?, ?, NULL) ON CONFLICT (epoch) DO NOTHING", [(epoch, wrapped)])]
        )
        found = self.data_key(epoch)
        if found is None:
            raise StoreError(f"the data key of {epoch} was shredded; payloads of that day cannot be written")
        return found

    def shred_before(self, epoch: str, now: float) -> list[str]:
        rows = self._read("SELECT epoch FROM audit_data_keys WHERE epoch < ? AND wrapped IS NOT NULL", (epoch,))
        shredded = [str(r[0]) for r in rows]
        self._write(
            [("UPDATE audit_data_keys SET wrapped = NULL, shredded = ? WHERE epoch = ?", [(now, e) for e in shredded])]
        )
        return shredded

    def search(self, filters: SearchFilter) -> list[tuple[str, EntryRow]]:
        clauses, args = ["1 = 1"], list[object]()
        for column in ("server", "tool", "client", "decision", "kind"):
            value = getattr(filters, column)
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if filters.since is not None:
            clauses.append("time >= ?")
            args.append(filters.since)
        if filters.until is not None:
            clauses.append("time < ?")
            args.append(filters.until)
        args.append(filters.limit)
        rows = self._read(
            "SELECT log_id, idx, leaf, entry, time, kind, server, tool, client, decision FROM audit_entries "  # noqa: S608 (fixed column names, values bound)
            f"WHERE {' AND '.join(clauses)} ORDER BY time DESC, log_id, idx DESC LIMIT ?",
            tuple(args),
        )
        return [(str(r[0]), EntryRow(*r[1:])) for r in rows]  # type: ignore[arg-type]
