"""The audit store interface: what the log writer, verifier and commands need from storage.

Implementations are synchronous and run in a worker thread (SQLite, PostgreSQL); each
`append_batch` is one durable transaction, which is what makes group commit work.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "STORED_NODE_LEVEL",
    "AuditStore",
    "CheckpointRow",
    "EntryRow",
    "LogRow",
    "NodeRow",
    "PayloadRow",
    "SearchFilter",
    "StoredEntry",
]

STORED_NODE_LEVEL = 4
"""Perfect subtrees of 2**4 leaves and up are stored as they complete; smaller ones are
recomputed from at most 16 leaves when a proof needs them (16 times fewer rows to write)."""


@dataclass(frozen=True, slots=True)
class LogRow:
    log_id: str
    origin: str
    instance: str
    pid: int
    created: float


@dataclass(frozen=True, slots=True)
class EntryRow:
    idx: int
    leaf: bytes
    entry: bytes
    time: float
    kind: str
    server: str | None = None
    tool: str | None = None
    client: str | None = None
    decision: str | None = None


StoredEntry = tuple[
    int, bytes, bytes, float, str, str | None, str | None, str | None, str | None, str | None, bool, float | None
]
"""Every column of an entry's row but the payload itself, as the verifier reads it: (index, leaf hash,
entry bytes, time, kind, server, tool, client, decision, epoch, whether a sealed payload is stored,
redacted). A plain tuple: the verifier reads millions of them."""


@dataclass(frozen=True, slots=True)
class NodeRow:
    level: int
    idx: int
    hash: bytes


@dataclass(frozen=True, slots=True)
class PayloadRow:
    idx: int
    epoch: str
    sealed: bytes


@dataclass(frozen=True, slots=True)
class CheckpointRow:
    log_id: str
    size: int
    root: bytes
    note: str
    time: float


@dataclass(frozen=True, slots=True)
class SearchFilter:
    server: str | None = None
    tool: str | None = None
    client: str | None = None
    decision: str | None = None
    kind: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 100


class AuditStore(Protocol):
    @property
    def identity(self) -> str:
        """Which store this is (its path or URL without a password), to keep witnesses apart."""
        ...

    def create_log(self, log: LogRow) -> None: ...
    def logs(self) -> list[LogRow]: ...
    def append_batch(
        self, log_id: str, entries: list[EntryRow], nodes: list[NodeRow], payloads: list[PayloadRow]
    ) -> None: ...
    def size(self, log_id: str) -> int: ...
    def entries(self, log_id: str, start: int = 0, end: int | None = None) -> Iterator[EntryRow]: ...
    def subtree_hashes(self, log_id: str, level: int, idx: int) -> list[bytes]:
        """What the perfect subtree (level, idx) folds from, in one query: its 2**level leaf hashes
        below STORED_NODE_LEVEL, else its one stored hash. `audit.merkle.perfect_root` of either is
        the subtree's hash (the store holds rows; the audit side does the tree math)."""
        ...

    def raw_entries(self, log_id: str, start: int = 0, end: int | None = None) -> Iterator[StoredEntry]:
        """Every column of the rows in index order (see `StoredEntry`), in pages: all the verifier needs, fast."""
        ...

    def nodes(self, log_id: str, level: int, end: int) -> Iterator[tuple[int, bytes]]:
        """(index, hash) of the stored subtrees of one level with index below `end`, in index order, in pages."""
        ...

    def sealed_payloads(self, log_id: str, start: int, end: int) -> Iterator[tuple[int, bytes, str | None, bytes]]:
        """(index, entry bytes, epoch, sealed payload) of the rows in [start, end) that hold a payload, in pages."""
        ...

    def data_keys(self) -> list[tuple[str, bytes | None, float | None]]:
        """Every day's (epoch, wrapped data key, when it was shredded)."""
        ...

    def stored_log_ids(self) -> set[str]:
        """Every log id that entries, subtrees or checkpoints are stored under (listed in the logs or not)."""
        ...

    def add_checkpoint(self, row: CheckpointRow) -> None: ...
    def commit_held(self) -> None:
        """Commit what a durable append left for a later commit (the SQLite store's intent journal)."""
        ...

    def checkpoints(self, log_id: str) -> list[CheckpointRow]: ...
    def latest_checkpoint(self, log_id: str) -> CheckpointRow | None: ...
    def payload(self, log_id: str, idx: int) -> tuple[str, bytes | None] | None: ...
    def redact(self, log_id: str, idx: int) -> bool: ...
    def data_key(self, epoch: str) -> bytes | None: ...
    def put_data_key(self, epoch: str, wrapped: bytes) -> bytes: ...
    def shred_before(self, epoch: str, now: float) -> list[str]: ...
    def search(self, filters: SearchFilter) -> list[tuple[str, EntryRow]]: ...
    def close(self) -> None: ...
