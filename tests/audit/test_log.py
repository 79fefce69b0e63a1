"""The log writer: small batches committed on the event loop when the store can start at once,
everything else on the log's own thread; both durable before append returns, in one order."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import anyio
import pytest

from bastion.audit import log as audit_log
from bastion.audit.entry import Kind, Record
from bastion.audit.keys import Keyring
from bastion.audit.log import INLINE_BATCH, AuditLog
from bastion.audit.payload import DayEpochs, PayloadCipher, epoch_of
from bastion.audit.randomness import random_bytes
from bastion.audit.verify import verify_log
from bastion.clock import SystemClock
from bastion.errors import StoreError
from bastion.store.audit import EntryRow, NodeRow, PayloadRow
from bastion.store.audit_sqlite import SqliteAuditStore

pytestmark = pytest.mark.anyio


class Counting(SqliteAuditStore):
    """Counts which way each batch went, and says when one is first handed to the log's thread."""

    inline = 0
    threaded = 0

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.handed_over = threading.Event()

    def try_append_batch(
        self, log_id: str, entries: list[EntryRow], nodes: list[NodeRow], payloads: list[PayloadRow]
    ) -> bool:
        done = super().try_append_batch(log_id, entries, nodes, payloads)
        self.inline += done
        return done

    def append_batch(
        self, log_id: str, entries: list[EntryRow], nodes: list[NodeRow], payloads: list[PayloadRow]
    ) -> None:
        self.threaded += 1
        self.handed_over.set()
        super().append_batch(log_id, entries, nodes, payloads)


def make_log(tmp_path: Path, store: Counting) -> AuditLog:
    return AuditLog(
        store,
        Keyring(tmp_path, "k").signer(),
        PayloadCipher(bytes(32)),
        SystemClock(),
        tmp_path,
        instance="t",
        inline=store.try_append_batch,
    )


async def test_a_sequential_caller_commits_on_the_loop_and_concurrent_callers_share_the_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The held rows' commit on the writer thread holds the store for a moment, and an inline append
    # that meets it goes to the thread: put that commit off, this test is about the loop's side.
    monkeypatch.setattr(audit_log, "COMMIT_HELD", 60.0)
    store = Counting(tmp_path / "a.db")
    log = make_log(tmp_path, store)
    async with anyio.create_task_group() as tasks:
        await tasks.start(log.run)
        for number in range(20):  # one call at a time: its intent, then its outcome rides along
            index = await log.append(Record(Kind.CALL_INTENT, {"tool": "t"}, {"arguments": {"n": number}}))
            log.submit(Record(Kind.CALL_OUTCOME, {"intent": index}, {"result": {"n": number}}))
        assert store.inline >= 20
        assert store.threaded == 0

        async def one(number: int) -> None:
            await log.append(Record(Kind.CALL_INTENT, {"tool": "t"}, {"arguments": {"n": number}}))

        async with anyio.create_task_group() as callers:
            for number in range(4 * INLINE_BATCH):
                callers.start_soon(one, number)
        assert store.threaded >= 1, "a batch larger than INLINE_BATCH goes to the log's thread"
        tasks.cancel_scope.cancel()
    assert log.size == 20 * 2 + 4 * INLINE_BATCH
    row = next(found for found in store.logs() if found.log_id == log.log_id)
    report = verify_log(
        row, store.raw_entries(log.log_id), store.checkpoints(log.log_id), [Keyring(tmp_path, "k").signer().verifier]
    )
    assert report.ok, report.problems
    assert report.size == log.size


async def test_the_appends_made_in_one_turn_of_the_loop_share_one_commit(tmp_path: Path) -> None:
    store = Counting(tmp_path / "a.db")
    log = make_log(tmp_path, store)
    async with anyio.create_task_group() as tasks:
        await tasks.start(log.run)
        await log.append(Record(Kind.CALL_INTENT, {"tool": "t"}, {"arguments": {}}))  # the day's key is made
        commits = store.inline + store.threaded

        async def one(number: int) -> None:
            await log.append(Record(Kind.CALL_INTENT, {"tool": "t"}, {"arguments": {"n": number}}))

        async with anyio.create_task_group() as callers:  # both callers append on the same turn
            for number in range(INLINE_BATCH):
                callers.start_soon(one, number)
        assert store.inline + store.threaded == commits + 1
        tasks.cancel_scope.cancel()
    assert log.size == 1 + INLINE_BATCH


async def test_a_store_locked_by_another_gateway_never_blocks_the_loop_the_batch_goes_to_the_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Counting(tmp_path / "a.db")
    log = make_log(tmp_path, store)
    other = sqlite3.connect(tmp_path / "a.db", isolation_level=None)
    async with anyio.create_task_group() as tasks:
        await tasks.start(log.run)
        other.execute("BEGIN IMMEDIATE")  # another process is committing
        with anyio.fail_after(5):  # the intent journal needs no database lock
            await log.append(Record(Kind.CALL_INTENT, {"tool": "t"}))
        assert (store.inline, store.threaded) == (1, 0)

        monkeypatch.setattr(store._journal, "size", 0)  # pyright: ignore[reportPrivateUsage]  # full: commit instead
        appended = anyio.Event()

        async def append() -> None:
            await log.append(Record(Kind.CALL_INTENT, {"tool": "t"}))
            appended.set()

        tasks.start_soon(append)
        with anyio.fail_after(5):  # the loop stays free while the thread waits for the lock
            assert await anyio.to_thread.run_sync(store.handed_over.wait, 5), "the batch went to the log's thread"
        assert not appended.is_set()
        other.execute("COMMIT")
        with anyio.fail_after(30):
            await appended.wait()
        assert store.threaded == 1
        assert other.execute("SELECT COUNT(*) FROM audit_entries").fetchone()[0] == 2, (
            "held and new, committed together"
        )
        tasks.cancel_scope.cancel()
    other.close()


async def test_what_the_write_loop_journals_is_committed_soon_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_log, "COMMIT_HELD", 0.0)
    store = Counting(tmp_path / "a.db")
    log = make_log(tmp_path, store)
    reader = sqlite3.connect(tmp_path / "a.db")
    async with anyio.create_task_group() as tasks:
        await tasks.start(log.run)
        # The day's first payload needs its data key from the writer thread: the write loop journals it.
        await log.append(Record(Kind.CALL_INTENT, {"tool": "t"}, {"arguments": {}}))
        assert (store.inline, store.threaded) == (1, 0)
        for _ in range(50):  # well before the first checkpoint, CHECKPOINT_INTERVAL later, would commit it
            if reader.execute("SELECT COUNT(*) FROM audit_entries").fetchone()[0]:
                break
            await anyio.sleep(0.01)
        else:
            pytest.fail("the journaled entry was not committed within 0.5 s")
        tasks.cancel_scope.cancel()
    reader.close()
    store.close()


class Unflushable(Counting):
    """Journals as usual, but cannot commit what it holds while `full` is set (a full disk)."""

    full = False

    def commit_held(self) -> None:
        if self.full:
            raise StoreError("audit store: database or disk is full")
        super().commit_held()


async def test_when_the_held_entries_cannot_be_committed_new_calls_are_refused_and_outcomes_still_recorded(
    tmp_path: Path,
) -> None:
    store = Unflushable(tmp_path / "a.db")
    log = make_log(tmp_path, store)
    async with anyio.create_task_group() as tasks:
        await tasks.start(log.run)
        store.full = True
        await log.append(Record(Kind.CALL_INTENT, {"tool": "t"}))  # durable in the journal
        with anyio.fail_after(5):
            while True:  # the writer thread's commit, COMMIT_HELD later, fails
                try:
                    await log.append(Record(Kind.CALL_INTENT, {"tool": "t"}))
                except StoreError:
                    break
                await anyio.sleep(0.01)
        log.submit(Record(Kind.CALL_OUTCOME, {"tool": "t"}))  # a forwarded call's outcome: still recorded
        await anyio.sleep(0.05)
        with pytest.raises(StoreError):
            await log.append(Record(Kind.CALL_INTENT, {"tool": "t"}))
        store.full = False
        with anyio.fail_after(5):  # the checkpoint loop commits once a second and recording resumes
            while True:
                try:
                    await log.append(Record(Kind.CALL_INTENT, {"tool": "t"}))
                    break
                except StoreError:
                    await anyio.sleep(0.1)
        tasks.cancel_scope.cancel()
    kinds = [row.kind for row in store.entries(log.log_id)]
    assert kinds[-2:] == ["call.outcome", "call.intent"], kinds
    assert kinds.count("call.outcome") == 1
    row = next(found for found in store.logs() if found.log_id == log.log_id)
    report = verify_log(
        row, store.raw_entries(log.log_id), store.checkpoints(log.log_id), [Keyring(tmp_path, "k").signer().verifier]
    )
    assert report.ok, report.problems
    store.close()


def test_random_bytes_are_never_handed_out_twice() -> None:
    drawn = [random_bytes(16) for _ in range(1000)]
    assert len(set(drawn)) == 1000
    assert all(len(salt) == 16 for salt in drawn)
    assert len(random_bytes(10_000)) == 10_000


def test_day_epochs_agree_with_epoch_of_across_midnight() -> None:
    days = DayEpochs()
    for moment in (86400 * 20000 - 1.5, 86400 * 20000 - 0.001, 86400 * 20000, 86400 * 20000 + 3600, 1.0e9):
        assert days.of(moment) == epoch_of(moment)
