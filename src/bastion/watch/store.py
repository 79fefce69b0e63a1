"""Alerts and checks as every process sees them, and triage requests from the CLI.

The gateway's watcher keeps the live state in memory (`Alerts`, `Checks`) and writes each
alert and check here as it changes, so that `bastion alerts`, `bastion status` and the
dashboard can read them. `bastion alerts ack|resolve` records the triage here (and in the
audit log); the watcher applies it to its live state within a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bastion.store.shared import SharedDb, shared_url

__all__ = ["AlertRow", "CheckRow", "Triage", "WatchStore", "open_watch"]

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS watch_alerts (
        key TEXT PRIMARY KEY, state TEXT NOT NULL, severity TEXT NOT NULL, detector TEXT NOT NULL,
        server TEXT NOT NULL, summary TEXT NOT NULL, opened DOUBLE PRECISION NOT NULL,
        last_seen DOUBLE PRECISION NOT NULL, count INTEGER NOT NULL, data TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS watch_checks (
        name TEXT PRIMARY KEY, status TEXT NOT NULL, last_ping DOUBLE PRECISION, due DOUBLE PRECISION,
        updated DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS watch_triage (
        id TEXT PRIMARY KEY, key TEXT NOT NULL, action TEXT NOT NULL, by TEXT NOT NULL, note TEXT NOT NULL,
        at DOUBLE PRECISION NOT NULL, applied DOUBLE PRECISION)""",
]


@dataclass(frozen=True, slots=True)
class AlertRow:
    key: str
    state: str
    severity: str
    detector: str
    server: str
    summary: str
    opened: float
    last_seen: float
    count: int
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CheckRow:
    name: str
    status: str
    last_ping: float | None
    due: float | None
    updated: float


@dataclass(frozen=True, slots=True)
class Triage:
    id: str
    key: str
    action: str
    by: str
    note: str
    at: float


class WatchStore:
    def __init__(self, url: str) -> None:
        self._db = SharedDb(url, SCHEMA, "watch")

    def close(self) -> None:
        self._db.close()

    def save_alert(self, row: AlertRow) -> None:
        self._db.execute("DELETE FROM watch_alerts WHERE key = ?", (row.key,))
        self._db.execute(
            "INSERT INTO watch_alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row.key, row.state, row.severity, row.detector, row.server, row.summary, row.opened, row.last_seen,
             row.count, orjson.dumps(row.data, default=str).decode()),
        )  # fmt: skip

    def alerts(self, include_resolved: bool = False) -> list[AlertRow]:
        where = "" if include_resolved else " WHERE state <> 'resolved'"
        rows = self._db.execute(f"SELECT * FROM watch_alerts{where} ORDER BY last_seen DESC").fetchall()  # noqa: S608
        return [_alert(row) for row in rows]

    def alert(self, key: str) -> AlertRow | None:
        row = self._db.execute("SELECT * FROM watch_alerts WHERE key = ?", (key,)).fetchone()
        return _alert(row) if row else None

    def save_check(self, row: CheckRow) -> None:
        self._db.execute("DELETE FROM watch_checks WHERE name = ?", (row.name,))
        self._db.execute(
            "INSERT INTO watch_checks VALUES (?, ?, ?, ?, ?)",
            (row.name, row.status, row.last_ping, row.due, row.updated),
        )

    def checks(self) -> list[CheckRow]:
        return [CheckRow(*row) for row in self._db.execute("SELECT * FROM watch_checks ORDER BY name").fetchall()]

    def request_triage(self, triage: Triage) -> None:
        self._db.execute(
            "INSERT INTO watch_triage VALUES (?, ?, ?, ?, ?, ?, NULL)",
            (triage.id, triage.key, triage.action, triage.by, triage.note, triage.at),
        )

    def pending_triage(self) -> list[Triage]:
        rows = self._db.execute(
            "SELECT id, key, action, by, note, at FROM watch_triage WHERE applied IS NULL ORDER BY at"
        ).fetchall()
        return [Triage(*row) for row in rows]

    def triage_applied(self, triage_id: str, at: float) -> None:
        self._db.execute("UPDATE watch_triage SET applied = ? WHERE id = ?", (at, triage_id))


def _alert(row: tuple[Any, ...]) -> AlertRow:
    key, state, severity, detector, server, summary, opened, last_seen, count, data = row
    return AlertRow(key, state, severity, detector, server, summary, opened, last_seen, count, orjson.loads(data))


def open_watch(home: Path, audit_store: str | None) -> WatchStore:
    return WatchStore(shared_url(home, audit_store, "watch"))
