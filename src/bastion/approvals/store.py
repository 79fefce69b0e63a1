"""Where approvals live: shared by every gateway, CLI and dashboard that uses the same store.

The embedded default is `BASTION_HOME/approvals.db` (SQLite, WAL); with `[audit] store =
"postgresql://…"` approvals live in that database, so a call waiting on one gateway instance
can be approved from any other, and waiters are woken by LISTEN/NOTIFY instead of polling.
A decision is one conditional UPDATE (`… WHERE status = 'pending'`): the first one wins,
whichever channel and process it comes from. The interface is synchronous; async callers run
it in a worker thread.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from bastion.approvals.model import Approval, Grant, Scope, Status, Verdict, grant_for
from bastion.errors import StoreError
from bastion.store.shared import SharedDb, shared_url

__all__ = ["ApprovalStore", "open_approvals"]

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS approvals (
        id TEXT PRIMARY KEY, created DOUBLE PRECISION NOT NULL, expires DOUBLE PRECISION NOT NULL,
        status TEXT NOT NULL, data TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS approvals_status ON approvals (status, created)",
    """CREATE TABLE IF NOT EXISTS approval_links (nonce TEXT PRIMARY KEY, used DOUBLE PRECISION NOT NULL)""",
]
CHANNEL = "bastion_approvals"
POLL = 0.1


class ApprovalStore:
    """Approvals on SQLite or PostgreSQL (see `SharedDb`)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._db = SharedDb(url, SCHEMA, "approval")
        self._pg = self._db.postgres

    def close(self) -> None:
        self._db.close()

    def _exec(self, sql: str, args: tuple[Any, ...] = ()) -> Any:
        return self._db.execute(sql, args)

    # -- requests and decisions --------------------------------------------------------------------------------

    def create(self, approval: Approval) -> None:
        self._exec(
            "INSERT INTO approvals (id, created, expires, status, data) VALUES (?, ?, ?, ?, ?)",
            (approval.id, approval.created, approval.expires, approval.status.value, _dump(approval)),
        )

    def get(self, approval_id: str) -> Approval | None:
        row = self._exec("SELECT data FROM approvals WHERE id = ?", (approval_id,)).fetchone()
        return _load(row[0]) if row else None

    def list(self, status: Status | None = None, limit: int = 200) -> list[Approval]:
        if status is None:
            rows = self._exec("SELECT data FROM approvals ORDER BY created DESC LIMIT ?", (limit,)).fetchall()
        else:
            sql = "SELECT data FROM approvals WHERE status = ? ORDER BY created DESC LIMIT ?"
            rows = self._exec(sql, (status.value, limit)).fetchall()
        return [_load(row[0]) for row in rows]

    def decide(self, approval_id: str, verdict: Verdict) -> Approval | None:
        """Record a verdict if the request is still pending and unexpired; None if another decision came first."""
        current = self.get(approval_id)
        if current is None or current.status is not Status.PENDING:
            return None
        status = Status.APPROVED if verdict.approve else Status.DENIED
        decided = replace(current, status=status, verdict=verdict)
        cursor = self._exec(
            "UPDATE approvals SET status = ?, data = ? WHERE id = ? AND status = 'pending' AND expires > ?",
            (status.value, _dump(decided), approval_id, verdict.at),
        )
        if cursor.rowcount != 1:
            return None
        self._notify(approval_id)
        return decided

    def expire(self, approval_id: str, now: float) -> Approval | None:
        """Mark a request that nobody decided in time; None if it was decided meanwhile."""
        current = self.get(approval_id)
        if current is None or current.status is not Status.PENDING:
            return None
        expired = replace(current, status=Status.EXPIRED)
        cursor = self._exec(
            "UPDATE approvals SET status = 'expired', data = ? WHERE id = ? AND status = 'pending'",
            (_dump(expired), approval_id),
        )
        if cursor.rowcount == 1:
            self._notify(approval_id)
            return expired
        return None

    def grants(self, now: float) -> list[Grant]:
        """Standing grants of session- and window-scoped approvals still in force."""
        rows = self._exec("SELECT data FROM approvals WHERE status = 'approved' AND created > ?", (now - 86400 * 7,))
        found = [grant_for(_load(row[0])) for row in rows.fetchall()]
        return [g for g in found if g is not None and (g.until is None or g.until > now)]

    def use_link(self, nonce: str, now: float) -> bool:
        """Spend a signed link's nonce; False if it was used before (links are single-use)."""
        try:
            self._exec("INSERT INTO approval_links (nonce, used) VALUES (?, ?)", (nonce, now))
        except StoreError:
            return False
        return True

    # -- waiting -----------------------------------------------------------------------------------------------

    def wait(self, approval_id: str, deadline: float) -> Approval | None:
        """Block until the request is decided or the deadline passes; the request as it then stands."""
        if not self._pg:
            while time.time() < deadline:
                current = self.get(approval_id)
                if current is None or current.status is not Status.PENDING:
                    return current
                time.sleep(POLL)
            return self.get(approval_id)
        import psycopg  # only here, on PostgreSQL (see SharedDb)

        with psycopg.connect(self.url, autocommit=True) as listener:
            listener.execute(f"LISTEN {CHANNEL}")
            current = self.get(approval_id)
            while current is not None and current.status is Status.PENDING and time.time() < deadline:
                for note in listener.notifies(timeout=max(0.0, deadline - time.time()), stop_after=1):
                    if note.payload == approval_id:
                        break
                current = self.get(approval_id)
            return current

    def _notify(self, approval_id: str) -> None:
        self._db.notify(CHANNEL, approval_id)


def open_approvals(home: Path, audit_store: str | None) -> ApprovalStore:
    """The approval store next to the audit log: the same PostgreSQL database, or BASTION_HOME/approvals.db."""
    return ApprovalStore(shared_url(home, audit_store, "approvals"))


def _dump(approval: Approval) -> str:
    return orjson.dumps(approval.to_dict()).decode()


def _load(text: str) -> Approval:
    data = orjson.loads(text)
    decision = data.pop("decision", None)
    verdict = None
    if decision is not None:
        verdict = Verdict(
            data["status"] == Status.APPROVED.value,
            decision["by"],
            decision["channel"],
            decision["at"],
            Scope(decision["scope"]),
            decision["until"],
            decision["reason"],
        )
    return Approval(
        data["id"],
        data["created"],
        data["expires"],
        data["gateway"],
        data["client"],
        data["session"],
        data["server"],
        data["tool"],
        data["risk"],
        data["arguments"],
        data["why"],
        tuple(data["recent"]),
        Status(data["status"]),
        verdict,
    )
