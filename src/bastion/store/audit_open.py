"""Which audit store a URL names, opened: the store package picks its own class.

`sqlite:PATH` (or nothing: the SQLite file in the Bastion home) and `postgresql://…`. The
composition roots and the commands open a store here and hand it to the audit machinery,
which knows only the `AuditStore` protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bastion.errors import StoreError
from bastion.store.audit import AuditStore, EntryRow, NodeRow, PayloadRow
from bastion.store.audit_sqlite import SqliteAuditStore

__all__ = ["inline_append", "open_store"]


def open_store(home: Path, url: str | None) -> AuditStore:
    if url is None or url.startswith("sqlite:"):
        path = Path(url.removeprefix("sqlite:").removeprefix("//")) if url else None
        return SqliteAuditStore(path) if path else SqliteAuditStore.open(home)
    if url.startswith(("postgresql://", "postgres://")):
        from bastion.store.audit_postgres import PostgresAuditStore  # only when asked for: psycopg is heavy

        return PostgresAuditStore(url)
    raise StoreError(f"unknown audit store {url!r}: use sqlite:PATH or postgresql://…")


def inline_append(
    store: AuditStore,
) -> Callable[[str, list[EntryRow], list[NodeRow], list[PayloadRow]], bool] | None:
    """The store's append that commits at once or not at all (SQLite only), for the log writer's
    small batches on the event loop's thread; None where the store has none."""
    return store.try_append_batch if isinstance(store, SqliteAuditStore) else None
