"""The audit log writer: one per gateway process, group commit, signed checkpoints.

`append()` returns a durably assigned index or raises. Appends that arrive while a batch is
being written wait for the next batch, so concurrent calls share one transaction (and one
fsync). A checkpoint is signed at least every second while the log grows, at shutdown and
on demand; the last signed checkpoint is also written to a witness file outside the store,
so a store rolled back to an older copy is noticed. After a write fails, every append raises
(its call is refused) until the store answers again; the log then resumes where the store has it.

The store is written from one thread of the log's own, in order; a write, once started, finishes
even if its caller is cancelled (the tree's edge then still matches the store). A small batch
(a sequential caller's intent and the previous call's outcome) may instead be made durable on the
event loop's own thread when the store can do so at once (`InlineAppend`; the SQLite store writes it
to its intent journal and holds the rows, which the writer thread commits `COMMIT_HELD` later): just
as durable, and a sequential call saves two thread hand-offs, which cost more CPU than the
write itself; larger batches, and any batch that would wait for a lock, go to the thread, so
the loop keeps working while they are made durable. The hot path is kept lean: an append waits
on a bare future, the appends of one turn of the loop are written by a plain callback on the next
turn (no task switch, no event) when they can be committed there, entries recorded without waiting
(outcomes) wait on nothing, and the payload cipher is made once per day's key.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.abc
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bastion.audit.checkpoint import Checkpoint, Signer, sign_checkpoint
from bastion.audit.entry import Record, SealedRecord, encode_entry, index_columns, seal
from bastion.audit.merkle import CompactRange, leaf_hash
from bastion.audit.payload import DayEpochs, PayloadCipher
from bastion.clock import Clock
from bastion.errors import StoreError
from bastion.files import write_private
from bastion.store.audit import STORED_NODE_LEVEL, AuditStore, CheckpointRow, EntryRow, LogRow, NodeRow, PayloadRow

__all__ = ["AuditLog", "witness_dir"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

CHECKPOINT_INTERVAL = 1.0
DEFERRED_FLUSH = 0.01
"""The longest an entry recorded without waiting (a call's outcome) stays in memory."""
INLINE_BATCH = 16
"""Batches of at most this many entries may be made durable on the event loop's thread (see `InlineAppend`):
a sequential call's two, and the batches of calls in flight, which the SQLite store journals in one write.
With 16 calls in flight, 8 gave `bastion wrap` 13 % more calls/s than 2, and 16 gave `bastion serve` about
16 % more than 8 (its batches of 9 to 20 had gone to the writer thread, each a commit of its own); 32 and
more raised wrap's peak memory by 1.5 MB."""
COMMIT_HELD = 0.01
"""After an inline append, how soon the store is asked to commit what it holds (`AuditStore.commit_held`).
Short, so that what is held stays small (at 0.05 s, `bastion wrap`'s peak memory was 0.9 MB higher) and
other readers see it soon; a commit of ten milliseconds' rows costs each call about 5 µs."""

InlineAppend = Callable[[str, list[EntryRow], list[NodeRow], list[PayloadRow]], bool]
"""`append_batch` if it can start without waiting for a lock: True once durable, False if nothing was written."""


def witness_dir(home: Path, store: AuditStore) -> Path:
    """Where the last signed checkpoint of each of this store's logs is kept, outside the store."""
    digest = hashlib.sha256(store.identity.encode("utf-8")).hexdigest()[:16]
    return home / "audit" / "witness" / digest


@dataclass(slots=True)
class _Waiting:
    sealed: SealedRecord
    index_fields: Mapping[str, Any]
    done: asyncio.Future[int] | None
    """Resolved with the entry's index once it is durable; None for an entry nobody waits for."""

    def settle(self, index: int) -> None:
        if self.done is not None and not self.done.done():  # done already: its caller was cancelled
            self.done.set_result(index)

    def fail(self, error: Exception) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(error)


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
        inline: InlineAppend | None = None,
    ) -> None:
        self.store = store
        self._inline = inline
        self.signer = signer
        self.cipher = cipher
        self.clock = clock
        self.home = home
        self.instance = instance
        self.log_id = secrets.token_hex(8)
        self.origin = f"bastion/{instance}/{self.log_id}"
        self._edge = CompactRange()
        self._queue: list[_Waiting] = []
        self._wake = asyncio.Event()
        self._signed = 0
        self._stored_checkpoint = -1
        """The size of the last checkpoint stored; read and written only on the writer thread."""
        self._last_time = 0.0
        self._data_keys: dict[str, bytes] = {}
        self._sealers: dict[str, AESGCM] = {}
        self._epochs = DayEpochs()
        self._failed: Exception | None = None
        self._held_back: Exception | None = None
        """Why the store could not commit what it holds: new calls are refused until it can (their
        outcomes, already durable in the store's journal, are still recorded)."""
        self._running = False
        self._flush_scheduled = False
        self._flush_soon = False
        self._commit_scheduled = False
        self._writing = False
        """A batch is being written by the write loop (which may be waiting for the writer thread)."""
        self._writer: ThreadPoolExecutor | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        await self._in_writer(
            self.store.create_log, LogRow(self.log_id, self.origin, self.instance, _pid(), self.clock.now())
        )
        try:
            async with anyio.create_task_group() as tasks:
                self._running = True
                tasks.start_soon(self._write_loop)
                tasks.start_soon(self._checkpoint_loop)
                task_status.started()
        finally:
            self._running = False
            with anyio.CancelScope(shield=True):
                await self._flush_and_sign()
            if self._writer is not None:
                self._writer.shutdown(wait=False)
                self._writer = None

    async def _in_writer(self, call: Callable[..., T], *args: Any) -> T:
        """Run a store call on the log's own thread, in order; once started it finishes even if we are cancelled."""
        future = asyncio.get_running_loop().run_in_executor(self._pool(), call, *args)
        with anyio.CancelScope(shield=True):
            return await future
        raise AssertionError("unreachable: a shielded scope is never cancelled")

    def _pool(self) -> ThreadPoolExecutor:
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bastion-audit")
        return self._writer

    # -- appending ---------------------------------------------------------------------------------------------

    async def append(self, record: Record) -> int:
        """Record an event; returns its index once it is durable. Raises StoreError if it cannot be."""
        if self._failed is not None or self._held_back is not None:
            raise StoreError(f"the audit log is not writable: {self._failed or self._held_back}")
        loop = asyncio.get_running_loop()
        done: asyncio.Future[int] = loop.create_future()
        self._queue.append(_Waiting(seal(record), record.fields, done))
        if not self._flush_soon:  # the appends made before the loop's next turn share one batch
            self._flush_soon = True
            loop.call_soon(self._flush_now)
        try:
            return await done
        except Exception as exc:
            raise StoreError(f"the audit entry was not recorded: {exc}") from exc

    def submit(self, record: Record) -> None:
        """Record an event without waiting for it.

        It rides along with the next durable append's batch, or is written at most
        DEFERRED_FLUSH seconds later, whichever comes first (a failure is logged). Used for
        outcomes: their call's intent is durable already.
        """
        if self._failed is not None:
            logger.error("audit log %s is not writable; dropped a %s entry", self.log_id, record.kind.value)
            return
        self._queue.append(_Waiting(seal(record), record.fields, None))
        if not self._flush_scheduled and self._running:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_later(DEFERRED_FLUSH, self._flush_later)

    def _flush_later(self) -> None:
        self._flush_scheduled = False
        self._flush_now()

    def _flush_now(self) -> None:
        """Write what is queued: a small batch right here on the loop's thread when the store can take it at
        once (`InlineAppend`), anything else on the write loop's turn. A plain callback, not a task: a
        sequential call's intent costs no task switch and no event."""
        self._flush_soon = False
        if not self._queue:
            return
        if self._writing or not self._running or not self._write_inline():
            self._wake.set()

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._write_batch()

    def _write_inline(self) -> bool:
        """Commit the queue on the loop's thread if it is small, its day's cipher is at hand and the store can
        start at once; False (nothing written, the queue as it was) otherwise. Never awaits."""
        batch = self._queue
        if self._inline is None or len(batch) > INLINE_BATCH or self._failed is not None:
            return False
        start = self._edge.size
        try:
            moment = max(self.clock.now(), self._last_time)
            epoch = self._epochs.of(moment)
            sealer = self._sealers.get(epoch)
            if sealer is None and self._needs_sealer(batch):
                return False  # the day's data key may have to be read or made on the writer thread
            edge, entries, nodes, payloads = self._rows(batch, start, moment, epoch, sealer)
            if not self._append_inline(self._inline, entries, nodes, payloads):
                return False
        except Exception as exc:  # the store failed: every waiter learns it, nothing is half-recorded
            self._queue = []
            self._fail(batch, exc)
            return True
        self._queue = []
        self._written(batch, start, edge, moment)
        return True

    def _append_inline(
        self, inline: InlineAppend, entries: list[EntryRow], nodes: list[NodeRow], payloads: list[PayloadRow]
    ) -> bool:
        """`inline`, and once it has taken a batch, the store's commit of what it holds COMMIT_HELD later."""
        if not inline(self.log_id, entries, nodes, payloads):
            return False
        if not self._commit_scheduled:
            self._commit_scheduled = True
            asyncio.get_running_loop().call_later(COMMIT_HELD, self._commit_held)
        return True

    def _commit_held(self) -> None:
        """Have the writer thread commit what inline appends left held in the store (other readers see it
        then), without waiting for it. If that fails, new calls are refused until a commit succeeds (the
        checkpoint loop tries once a second); the held rows stay durable meanwhile."""
        self._commit_scheduled = False
        if self._writer is None and not self._running:
            return
        loop = asyncio.get_running_loop()
        self._pool().submit(self._commit_held_now, loop)

    def _commit_held_now(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            self.store.commit_held()
        except Exception as exc:
            logger.exception("audit log %s: held entries could not be committed", self.log_id)
            with contextlib.suppress(RuntimeError):  # the loop has ended: nothing more is appended anyway
                loop.call_soon_threadsafe(self._held_failed, exc)

    def _held_failed(self, error: Exception) -> None:
        self._held_back = error

    async def _write_batch(self) -> None:
        batch, self._queue = self._queue, []
        if not batch:
            return
        if self._failed is not None:  # nothing is written until the log has resumed where the store has it
            for waiting in batch:
                waiting.fail(self._failed)
            return
        start = self._edge.size
        self._writing = True
        try:
            moment = max(self.clock.now(), self._last_time)
            epoch = self._epochs.of(moment)
            sealer = await self._sealer(epoch) if self._needs_sealer(batch) else None
            edge, entries, nodes, payloads = self._rows(batch, start, moment, epoch, sealer)
            if (
                self._inline is None
                or len(batch) > INLINE_BATCH
                or not self._append_inline(self._inline, entries, nodes, payloads)
            ):
                await self._in_writer(self.store.append_batch, self.log_id, entries, nodes, payloads)
        except Exception as exc:  # the store failed: every waiter learns it, nothing is half-recorded
            self._fail(batch, exc)
            return
        finally:
            self._writing = False
        self._written(batch, start, edge, moment)

    def _needs_sealer(self, batch: list[_Waiting]) -> bool:
        """Whether writing `batch` seals a payload with the day's cipher."""
        return self.cipher is not None and any(w.sealed.payload is not None for w in batch)

    def _rows(
        self, batch: list[_Waiting], start: int, moment: float, epoch: str, sealer: AESGCM | None
    ) -> tuple[CompactRange, list[EntryRow], list[NodeRow], list[PayloadRow]]:
        """The store's rows for `batch` as entries `start`…, and the tree's edge after them (the log's own
        edge is untouched until the rows are durable)."""
        edge = CompactRange(start, list(self._edge.hashes or []))
        entries: list[EntryRow] = []
        nodes: list[NodeRow] = []
        payloads: list[PayloadRow] = []
        for index, waiting in enumerate(batch, start):
            raw = encode_entry(index, moment, self.log_id, waiting.sealed)
            leaf = leaf_hash(raw)
            completed = edge.append(leaf)
            if completed:
                nodes += [NodeRow(lv, idx, value) for lv, idx, value in completed if lv >= STORED_NODE_LEVEL]
            entries.append(_row(index, leaf, raw, moment, waiting))
            if sealer is not None and waiting.sealed.payload is not None:
                sealed = PayloadCipher.seal_with(sealer, self.log_id, index, waiting.sealed.payload)
                payloads.append(PayloadRow(index, epoch, sealed))
        return edge, entries, nodes, payloads

    def _written(self, batch: list[_Waiting], start: int, edge: CompactRange, moment: float) -> None:
        self._edge = edge
        self._last_time = moment
        for index, waiting in enumerate(batch, start):
            waiting.settle(index)

    def _fail(self, batch: list[_Waiting], error: Exception) -> None:
        logger.exception("audit log %s: a batch of %d entries could not be written", self.log_id, len(batch))
        self._failed = error
        for waiting in batch:
            waiting.fail(error)

    async def _sealer(self, epoch: str) -> AESGCM:
        """The cipher of the day's data key, made once a day."""
        sealer = self._sealers.get(epoch)
        if sealer is None:
            sealer = AESGCM(await self._data_key(epoch))
            self._sealers = {epoch: sealer}
        return sealer

    async def _data_key(self, epoch: str) -> bytes:
        key = self._data_keys.get(epoch)
        if key is None:
            assert self.cipher is not None
            wrapped = await self._in_writer(self.store.data_key, epoch)
            if wrapped is None:
                wrapped = await self._in_writer(
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
                elif self._held_back is not None:
                    await self._in_writer(self.store.commit_held)
                    self._held_back = None
                    logger.warning("audit log %s: the store commits again; recording resumes", self.log_id)
                elif self._edge.size > self._signed:
                    await self.checkpoint()
            except (StoreError, OSError):
                logger.warning("audit log %s: the store still fails; trying again", self.log_id, exc_info=True)

    async def _resume(self) -> None:
        """After a failed write, pick up the log where the store has it, once the store answers again.

        A batch whose commit was not acknowledged may have been committed all the same: its entries
        are then part of the log (their callers were refused, which errs on the safe side).
        """
        size = await self._in_writer(self.store.size, self.log_id)
        if size < self._edge.size:
            raise StoreError(
                f"audit log {self.log_id}: the store holds {size} entries, {self._edge.size} were recorded"
            )
        rows = await self._in_writer(lambda: list(self.store.entries(self.log_id, self._edge.size, size)))
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
        row = CheckpointRow(self.log_id, size, root, note, self.clock.now())
        if await self._in_writer(self._store_checkpoint, row):
            self._signed = max(self._signed, size)
            self.last_checkpoint_at = self.clock.now()
        return note

    def _store_checkpoint(self, row: CheckpointRow) -> bool:
        """On the writer thread, so one at a time: store a checkpoint and its witness, unless one of this
        size or larger is stored already (the checkpoint loop and a caller may sign the same head at once)."""
        if row.size <= self._stored_checkpoint:
            return False
        self.store.add_checkpoint(row)
        self._stored_checkpoint = row.size
        write_private(witness_dir(self.home, self.store) / f"{self.log_id}.checkpoint", row.note.encode("utf-8"))
        return True

    async def _flush_and_sign(self) -> None:
        if self._queue and self._failed is None:
            await self._write_batch()
        if self._edge.size > self._signed and self._failed is None:
            try:
                await self.checkpoint()
            except Exception:
                logger.exception("audit log %s: the final checkpoint could not be signed", self.log_id)


def _row(index: int, leaf: bytes, raw: bytes, moment: float, waiting: _Waiting) -> EntryRow:
    return EntryRow(index, leaf, raw, moment, str(waiting.sealed.kind), *index_columns(waiting.index_fields))


def _pid() -> int:
    return os.getpid()
