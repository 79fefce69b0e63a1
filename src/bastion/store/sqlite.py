"""The embedded SQLite store: running gateways, their servers' states, kill switches and HTTP client tokens.

Several Bastion processes share one BASTION_HOME (a client config launches one
`bastion wrap` per server), so every write is a short transaction and readers never
block writers (WAL). Tokens are stored as SHA-256 hashes only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from bastion.errors import StoreError
from bastion.store.sqlite_db import open_private, transaction

__all__ = ["GatewayRow", "KillRow", "ServerRow", "StateStore", "TokenRow", "hash_token"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS gateways (
    pid INTEGER PRIMARY KEY, instance TEXT NOT NULL, mode TEXT NOT NULL,
    config TEXT NOT NULL, started REAL NOT NULL, seen REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS servers (
    pid INTEGER NOT NULL, server TEXT NOT NULL, state TEXT NOT NULL, detail TEXT NOT NULL,
    restarts INTEGER NOT NULL, updated REAL NOT NULL, PRIMARY KEY (pid, server)
);
CREATE TABLE IF NOT EXISTS kills (
    server TEXT NOT NULL, tool TEXT NOT NULL, reason TEXT NOT NULL, by TEXT NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (server, tool)
);
CREATE TABLE IF NOT EXISTS tokens (
    client TEXT PRIMARY KEY, token_sha256 TEXT NOT NULL UNIQUE, created REAL NOT NULL,
    expires REAL, revoked REAL, servers TEXT, role TEXT NOT NULL DEFAULT 'agent'
);
"""
TOKEN_PREFIX = "bst_"  # noqa: S105 (a prefix, not a secret)


@dataclass(frozen=True, slots=True)
class GatewayRow:
    pid: int
    instance: str
    mode: str
    config: str
    started: float
    seen: float


@dataclass(frozen=True, slots=True)
class ServerRow:
    pid: int
    server: str
    state: str
    detail: str
    restarts: int
    updated: float


@dataclass(frozen=True, slots=True)
class KillRow:
    server: str
    tool: str
    reason: str
    by: str
    at: float


@dataclass(frozen=True, slots=True)
class TokenRow:
    client: str
    created: float
    expires: float | None
    revoked: float | None
    servers: tuple[str, ...] | None = None
    """The only servers this client may use (None: every server its policy allows)."""
    role: str = "agent"
    """agent (an MCP client), or a dashboard role: admin, approver, auditor."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class StateStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            # 1 MiB of cache: writes are appends, reads are scans
            self._db = open_private(path, pragmas=("cache_size=-1024",))
            self._db.executescript(SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(tokens)")}
            if "servers" not in columns:  # a store from before tokens could be limited to servers
                self._db.execute("ALTER TABLE tokens ADD COLUMN servers TEXT")
            if "role" not in columns:  # … or had dashboard roles
                self._db.execute("ALTER TABLE tokens ADD COLUMN role TEXT NOT NULL DEFAULT 'agent'")
        except (sqlite3.DatabaseError, OSError) as exc:
            raise StoreError(f"cannot open the state store {path}: {exc}") from exc

    @classmethod
    def open(cls, home: Path) -> StateStore:
        return cls(home / "bastion.db")

    def close(self) -> None:
        self._db.close()

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self._db, f"state store {self.path}")

    # -- gateways and servers ----------------------------------------------------------------------------------

    def gateway_started(self, pid: int, instance: str, mode: str, config: str, now: float) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM servers WHERE pid = ?", (pid,))
            db.execute(
                "INSERT OR REPLACE INTO gateways VALUES (?, ?, ?, ?, ?, ?)", (pid, instance, mode, config, now, now)
            )

    def gateway_stopped(self, pid: int) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM servers WHERE pid = ?", (pid,))
            db.execute("DELETE FROM gateways WHERE pid = ?", (pid,))

    def server_state(self, pid: int, server: str, state: str, detail: str, restarts: int, now: float) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO servers VALUES (?, ?, ?, ?, ?, ?)", (pid, server, state, detail, restarts, now)
            )
            db.execute("UPDATE gateways SET seen = ? WHERE pid = ?", (now, pid))

    def gateways(self) -> list[GatewayRow]:
        rows = self._db.execute("SELECT * FROM gateways ORDER BY started").fetchall()
        return [GatewayRow(*row) for row in rows]

    def servers(self) -> list[ServerRow]:
        rows = self._db.execute("SELECT * FROM servers ORDER BY pid, server").fetchall()
        return [ServerRow(*row) for row in rows]

    def forget_gateway(self, pid: int) -> None:
        self.gateway_stopped(pid)

    # -- kill switches -----------------------------------------------------------------------------------------

    def kill(self, server: str, tool: str, reason: str, by: str, now: float) -> bool:
        """Switch a tool off for every gateway sharing this home; False if it was off already."""
        with self._tx() as db:
            cursor = db.execute("INSERT OR IGNORE INTO kills VALUES (?, ?, ?, ?, ?)", (server, tool, reason, by, now))
            return cursor.rowcount > 0

    def unkill(self, server: str, tool: str) -> bool:
        with self._tx() as db:
            return db.execute("DELETE FROM kills WHERE server = ? AND tool = ?", (server, tool)).rowcount > 0

    def kills(self) -> list[KillRow]:
        try:
            rows = self._db.execute("SELECT * FROM kills ORDER BY server, tool").fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"state store {self.path}: {exc}") from exc
        return [KillRow(*row) for row in rows]

    # -- HTTP client tokens ------------------------------------------------------------------------------------

    def create_token(
        self,
        client: str,
        now: float,
        expires: float | None,
        servers: tuple[str, ...] | None = None,
        role: str = "agent",
    ) -> str:
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._tx() as db:
            existing = db.execute("SELECT revoked FROM tokens WHERE client = ?", (client,)).fetchone()
            if existing is not None and existing[0] is None:
                raise StoreError(
                    f"client {client!r} already has a token; revoke it first: bastion tokens revoke {client}"
                )
            listed = json.dumps(list(servers)) if servers is not None else None
            db.execute(
                "INSERT OR REPLACE INTO tokens (client, token_sha256, created, expires, revoked, servers, role)"
                " VALUES (?, ?, ?, ?, NULL, ?, ?)",
                (client, hash_token(token), now, expires, listed, role),
            )
        return token

    def revoke_token(self, client: str, now: float) -> bool:
        with self._tx() as db:
            cursor = db.execute("UPDATE tokens SET revoked = ? WHERE client = ? AND revoked IS NULL", (now, client))
            return cursor.rowcount > 0

    def tokens(self) -> list[TokenRow]:
        rows = self._db.execute("SELECT client, created, expires, revoked, servers, role FROM tokens ORDER BY client")
        return [
            TokenRow(row[0], row[1], row[2], row[3], tuple(json.loads(row[4])) if row[4] else None, row[5])
            for row in rows.fetchall()
        ]

    def token_servers(self, client: str) -> tuple[str, ...] | None:
        """The servers a client's token limits it to, or None."""
        row = self._db.execute("SELECT servers FROM tokens WHERE client = ? AND revoked IS NULL", (client,)).fetchone()
        return tuple(json.loads(row[0])) if row is not None and row[0] else None

    def client_for_token(self, token: str, now: float) -> str | None:
        """The MCP client a presented bearer token belongs to, if it is valid now (dashboard tokens are not)."""
        found = self.holder_of_token(token, now)
        return found[0] if found is not None and found[1] == "agent" else None

    def holder_of_token(self, token: str, now: float) -> tuple[str, str] | None:
        """(client, role) of a presented token, if it is valid now."""
        digest = hash_token(token)
        row = self._db.execute(
            "SELECT client, token_sha256, expires, revoked, role FROM tokens WHERE token_sha256 = ?", (digest,)
        ).fetchone()
        if row is None or not hmac.compare_digest(row[1], digest):
            return None
        if row[3] is not None or (row[2] is not None and row[2] <= now):
            return None
        return str(row[0]), str(row[4])
