"""The state several gateways share (approvals, alerts, checks): one small SQL layer over SQLite
or PostgreSQL.

The embedded default is a SQLite file in BASTION_HOME; with `[audit] store = "postgresql://…"`
the same database holds it, so gateway instances, the CLI and the dashboard see one state.
Statements use `?` placeholders; `notify` wakes PostgreSQL listeners (a no-op on SQLite,
whose waiters poll).
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bastion.errors import StoreError
from bastion.store.sqlite_db import open_private

__all__ = ["SCHEMA_LOCK", "SharedDb", "shared_url"]


def shared_url(home: Path, audit_store: str | None, name: str) -> str:
    """PostgreSQL when the audit log is there, else `BASTION_HOME/NAME.db`."""
    if audit_store and audit_store.startswith(("postgresql://", "postgres://")):
        return audit_store
    return "sqlite:" + str(home / f"{name}.db")


SCHEMA_LOCK = 7412300
"""The PostgreSQL advisory lock held while a schema is made: `CREATE TABLE IF NOT EXISTS` run by two
sessions at once can fail one of them (both insert the table's type into the catalog), so
gateways that start together on a new database make their tables one after the other."""


class SharedDb:
    def __init__(self, url: str, schema: Sequence[str], what: str) -> None:
        self.url = url
        self.postgres = url.startswith(("postgresql://", "postgres://"))
        self._what = what
        self._errors: tuple[type[Exception], ...] = (sqlite3.Error,)
        self._reconnect: Callable[[], Any] = lambda: None
        try:
            if self.postgres:
                # psycopg costs ~24 MB; only gateways that share PostgreSQL load it.
                import psycopg

                self._errors = (sqlite3.Error, psycopg.Error)
                self._reconnect = functools.partial(psycopg.connect, url, autocommit=True, connect_timeout=5)
                self._db: Any = self._reconnect()
                with self._db.transaction():  # gateways starting together: one makes the schema, then the next
                    self.execute("SELECT pg_advisory_xact_lock(?)", (SCHEMA_LOCK,))
                    for statement in schema:
                        self.execute(statement)
            else:
                self._db = open_private(Path(url.removeprefix("sqlite:")))
                for statement in schema:
                    self.execute(statement)
        except (*self._errors, OSError) as exc:
            raise StoreError(f"cannot open the {what} store: {exc}") from exc

    def execute(self, sql: str, args: tuple[Any, ...] = ()) -> Any:
        try:
            if self.postgres and self._db.closed:  # the server went away and came back: a new connection
                self._db = self._reconnect()
            return self._db.execute(sql.replace("?", "%s") if self.postgres else sql, args)
        except self._errors as exc:
            raise StoreError(f"{self._what} store: {exc}") from exc

    def notify(self, channel: str, payload: str) -> None:
        if self.postgres:
            self.execute("SELECT pg_notify(?, ?)", (channel, payload))

    def close(self) -> None:
        self._db.close()
