"""Fail closed: no durable intent, no call; a store behind its witness, no start."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import pytest

from bastion.audit.entry import Kind, Record
from bastion.audit.keys import Keyring
from bastion.audit.log import AuditLog
from bastion.audit.payload import PayloadCipher
from bastion.audit.service import open_audit
from bastion.audit.stage import AuditStage
from bastion.clock import SystemClock
from bastion.codes import AUDIT_UNAVAILABLE
from bastion.config.model import BastionConfig
from bastion.errors import AuditIntegrityError, StoreError
from bastion.proxy.pipeline import Call, ClientInfo
from bastion.store.audit import EntryRow, NodeRow, PayloadRow
from bastion.store.audit_open import open_store
from bastion.store.audit_sqlite import SqliteAuditStore
from bastion.types import Reply, RpcError

pytestmark = pytest.mark.anyio


class BrokenDisk(SqliteAuditStore):
    """A store whose writes fail, as with a full or read-only disk."""

    def append_batch(
        self, log_id: str, entries: list[EntryRow], nodes: list[NodeRow], payloads: list[PayloadRow]
    ) -> None:
        raise StoreError("disk I/O error")


async def test_a_call_whose_intent_cannot_be_made_durable_is_refused_and_never_forwarded(tmp_path: Path) -> None:
    log = AuditLog(
        BrokenDisk(tmp_path / "a.db"),
        Keyring(tmp_path, "k").signer(),
        PayloadCipher(bytes(32)),
        SystemClock(),
        tmp_path,
        instance="t",
    )
    forwarded: list[Call] = []

    async def forward(call: Call) -> Reply:
        forwarded.append(call)
        return {"content": []}

    call = Call(ClientInfo("c", "s"), "fs", "tools/call", {"name": "write_file", "arguments": {}}, "write_file", 1)
    reply: Reply = {}
    again: Reply = {}
    async with anyio.create_task_group() as tasks:
        await tasks.start(log.run)
        reply = await AuditStage(log)(call, forward)
        again = await AuditStage(log)(call, forward)
        tasks.cancel_scope.cancel()
    assert isinstance(reply, RpcError)
    assert reply.code == AUDIT_UNAVAILABLE
    assert isinstance(again, RpcError)
    assert forwarded == []


async def write_some(home: Path, count: int) -> None:
    log = open_audit(BastionConfig(), home, {}, SystemClock(), open_store(home, None))
    async with anyio.create_task_group() as tasks:
        await tasks.start(log.run)
        for i in range(count):
            await log.append(Record(Kind.CALL_INTENT, {"tool": f"t{i}"}))
        tasks.cancel_scope.cancel()


def test_a_gateway_refuses_to_start_on_a_store_rolled_back_behind_its_witness(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    anyio.run(write_some, home, 3)
    database = home / "audit.db"
    copy = tmp_path / "old.db"
    with sqlite3.connect(database) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    anyio.run(write_some, home, 3)  # a second log, whose witness is written
    with sqlite3.connect(copy) as source, sqlite3.connect(database) as target:
        source.backup(target)  # the store is rolled back to the older copy
    with pytest.raises(AuditIntegrityError):
        open_audit(BastionConfig(), home, {}, SystemClock(), open_store(home, None))
