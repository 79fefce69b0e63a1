"""The audit log writer: one per gateway process, group commit, signed checkpoints.

`append()` returns a durably assigned index or raises. Appends that arrive while a batch is
being written wait for the next batch, so concurrent calls share one transaction (and one
fsync). A checkpoint is signed at least every second while the log grows, at shutdown and
on demand; the last signed checkpoint is also written to a witness file outside the store,
so a store rolled back to an older copy is noticed. After a write fails, every append raises
(its call is refused) until the store answers again; the log then resumes where the store has it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.abc

from bastion.audit.checkpoint import Checkpoint, Signer, sign_checkpoint
from bastion.audit.entry import Record, SealedRecord, encode_entry, index_columns, seal
from bastion.audit.keys import write_private
from bastion.audit.merkle import CompactRange, leaf_hash
from bastion.audit.payload import PayloadCipher, epoch_of
from bastion.clock import Clock
from bastion.errors import StoreError
from bastion.store.audit import STORED_NODE_LEVEL, AuditStore, CheckpointRow, EntryRow, LogRow, NodeRow, PayloadRow

__all__ = ["AuditLog", "witness_dir"]

logger = logging.getLogger(__name__)

CHECKPOINT_INTERVAL = 1.0
DEFERRED_FLUSH = 0.01
"""The longest an entry recorded without waiting (a call's outcome) stays in memory."""


def witness_dir(home: Path, store: AuditStore) -> Path:
    """Where the last signed checkpoint of each of this store's logs is kept, outside the store."""
    digest = hashlib.sha256(store.identity.encode("utf-8")).hexdigest()[:16]
    return home / "audit" / "witness" / digest


@dataclass(slots=True)
class _Waiting:
    sealed: SealedRecord
    index_fields: Mapping[str, Any]
    done: anyio.Event = field(default_factory=anyio.Event)
    index: int | None = None
    error: Exception | None = None


class AuditLog:
    def __init__(
        self,
        store: AuditStore,
        signer: Signer,
        cipher: PayloadCipher | None,
        clock: Clock,
        home: Path,
        *,
        instance: str,
    ) -> None:
        self.store = store
        self.signer = signer
        self.cipher = cipher
        self.clock = clock
        self.home = home
        self.instance = instance
        self.log_id = secrets.token_hex(8)
        self.origin = f"bastion/{instance}/{self.log_id}"
        self._edge = CompactRange()
        self._queue: list[_Waiting] = []
        self._wake = anyio.Event()
        self._signed = 0
        self._last_time = 0.0
        self._data_keys: dict[str, bytes] = {}
        self._failed: Exception | None = None
        self._tasks: anyio.abc.TaskGroup | None = None
        self._flush_scheduled = False

    # -- lifecycle ---------------------------------------------------------------------------------------------

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        await anyio.to_thread.run_sync(
            self.store.create_log, LogRow(self.log_id, self.origin, self.instance, _pid(), self.clock.now())
        )
        try:
            async with anyio.create_task_group() as tasks:
                self._tasks = tasks
                tasks.start_soon(self._write_loop)
                tasks.start_soon(self._checkpoint_loop)
                task_status.started()
        finally:
            with anyio.CancelScope(shield=True):
                await self._flush_and_sign()

    # -- appending ---------------------------------------------------------------------------------------------

    async def append(self, record: Record) -> int:
        """Record an event; returns its index once it is durable. Raises StoreError if it cannot be."""
        if self._failed is not None:
            raise StoreError(f"the audit log is not writable: {self._failed}")
        waiting = _Waiting(seal(record), record.fields)
        self._queue.append(waiting)
        self._wake.set()
        await waiting.done.wait()
        if waiting.error is not None:
            raise StoreError(f"the audit entry was not recorded: {waiting.error}") from waiting.error
        assert waiting.index is not None
        return waiting.index

    def submit(self, record: Record) -> None:
        """Record an event without waiting for it.

        It rides along with the next durable append's batch, or is written at most
        DEFERRED_FLUSH seconds later, whichever comes first (a failure is logged). Used for
        outcomes: their call's intent is durable already.
        """
        if self._failed is not None:
            logger.error("audit log %s is not writable; dropped a %s entry", self.log_id, record.kind.value)
            return
        self._queue.append(_Waiting(seal(record), record.fields))
        if not self._flush_scheduled and self._tasks is not None:
            self._flush_scheduled = True
            self._tasks.start_soon(self._flush_later)

    async def _flush_later(self) -> None:
        await anyio.sleep(DEFERRED_FLUSH)
        self._flush_scheduled = False
        self._wake.set()

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            await self._write_batch()

    async def _write_batch(self) -> None:
        batch, self._queue = self._queue, []
        if not batch:
            return
        if self._failed is not None:  # nothing is written until the log has resumed where the store has it
            for waiting in batch:
                waiting.error = self._failed
                waiting.done.set()
            return
        start = self._edge.size
        edge = CompactRange(self._edge.size, list(self._edge.hashes or []))
        entries: list[EntryRow] = []
        nodes: list[NodeRow] = []
        payloads: list[PayloadRow] = []
        try:
            moment = max(self.clock.now(), self._last_time)
            epoch = epoch_of(moment)
            for offset, waiting in enumerate(batch):
                index = start + offset
                raw = encode_entry(index, moment, self.log_id, waiting.sealed)
                leaf = leaf_hash(raw)
                completed = edge.append(leaf)
                nodes += [NodeRow(level, idx, value) for level, idx, value in completed if level >= STORED_NODE_LEVEL]
                entries.append(_row(index, leaf, raw, moment, waiting))
                if waiting.sealed.payload is not None and self.cipher is not None:
                    key = await self._data_key(epoch)
                    payloads.append(
                        PayloadRow(index, epoch, self.cipher.seal(key, self.log_id, index, waiting.sealed.payload))
                    )
            await anyio.to_thread.run_sync(self.store.append_batch, self.log_id, entries, nodes, payloads)
        except Exception as exc:  # the store failed: every waiter learns it, nothing is half-recorded
            logger.exception("audit log %s: a batch of %d entries could not be written", self.log_id, len(batch))
            self._failed = exc
            for waiting in batch:
                waiting.error = exc
                waiting.done.set()
            return
        self._edge = edge
        self._last_time = moment
        for offset, waiting in enumerate(batch):
            waiting.index = start + offset
            waiting.done.set()

    async def _data_key(self, epoch: str) -> bytes:
        key = self._data_keys.get(epoch)
        if key is None:
            assert self.cipher is not None
            wrapped = await anyio.to_thread.run_sync(self.store.data_key, epoch)
            if wrapped is None:
                wrapped = await anyio.to_thread.run_sync(
                    self.store.put_data_key, epoch, self.cipher.wrap(epoch, self.cipher.new_data_key())
                )
            key = self.cipher.unwrap(epoch, wrapped)
            self._data_keys = {epoch: key}
        return key

    # -- checkpoints -------------------------------------------------------------------------------------------

    last_checkpoint_at: float | None = None
    """When this process last signed a checkpoint (for the metrics)."""

    @property
    def size(self) -> int:
        return self._edge.size

    async def _checkpoint_loop(self) -> None:
        while True:
            await anyio.sleep(CHECKPOINT_INTERVAL)
            try:  # a store that fails here must not take the gateway down: calls are refused meanwhile
                if self._failed is not None:
                    await self._resume()
                elif self._edge.size > self._signed:
                    await self.checkpoint()
            except (StoreError, OSError):
                logger.warning("audit log %s: the store still fails; trying again", self.log_id, exc_info=True)

    async def _resume(self) -> None:
        """After a failed write, pick up the log where the store has it, once the store answers again.

        A batch whose commit was not acknowledged may have been committed all the same: its entries
        are then part of the log (their callers were refused, which errs on the safe side).
        """
        size = await anyio.to_thread.run_sync(self.store.size, self.log_id)
        if size < self._edge.size:
            raise StoreError(
                f"audit log {self.log_id}: the store holds {size} entries, {self._edge.size} were recorded"
            )
        rows = await anyio.to_thread.run_sync(lambda: list(self.store.entries(self.log_id, self._edge.size, size)))
        for row in rows:
            self._edge.append(row.leaf)
            self._last_time = max(self._last_time, row.time)
        self._failed = None
        logger.warning("audit log %s: the store answers again; recording resumes", self.log_id)

    async def checkpoint(self) -> str:
        """Sign the current tree head, store it, and write it to the witness file."""
        size, root = self._edge.size, self._edge.root()
        note = sign_checkpoint(Checkpoint(self.origin, size, root), self.signer)
        if size == self._signed and size:
            return note
        await anyio.to_thread.run_sync(
            self.store.add_checkpoint, CheckpointRow(self.log_id, size, root, note, self.clock.now())
        )
        path = witness_dir(self.home, self.store) / f"{self.log_id}.checkpoint"
        await anyio.to_thread.run_sync(write_private, path, note.encode("utf-8"))
        self._signed = size
        self.last_checkpoint_at = self.clock.now()
        return note

    async def _flush_and_sign(self) -> None:
        if self._queue and self._failed is None:
            await self._write_batch()
        if self._edge.size > self._signed and self._failed is None:
            try:
                await self.checkpoint()
            except Exception:
                logger.exception("audit log %s: the final checkpoint could not be signed", self.log_id)


def _row(index: int, leaf: bytes, raw: bytes, moment: float, waiting: _Waiting) -> EntryRow:
    return EntryRow(index, leaf, raw, moment, waiting.sealed.kind.value, *index_columns(waiting.index_fields))


def _pid() -> int:
    return os.getpid()
