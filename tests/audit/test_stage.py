"""The audit stage: every call's intent is answered by an outcome, a cancelled call's included."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

from bastion.audit.service import open_audit
from bastion.audit.stage import AuditStage
from bastion.clock import SystemClock
from bastion.config.model import BastionConfig
from bastion.proxy.pipeline import Call, ClientInfo
from bastion.store.audit_open import open_store
from bastion.types import Reply

pytestmark = pytest.mark.anyio


def call(request_id: int) -> Call:
    return Call(ClientInfo("c", "s"), "notes", "tools/call", {"name": "wait", "arguments": {}}, "wait", request_id)


async def test_a_call_cancelled_in_flight_gets_a_cancelled_outcome_naming_its_intent(tmp_path: Path) -> None:
    store = open_store(tmp_path, None)
    log = open_audit(BastionConfig(), tmp_path, {}, SystemClock(), store)
    forwarded = anyio.Event()

    async def hang(_call: Call) -> Reply:
        forwarded.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def answer(_call: Call) -> Reply:
        return {"content": [], "isError": False}

    async with anyio.create_task_group() as tasks:
        await tasks.start(log.run)
        async with anyio.create_task_group() as calls:
            calls.start_soon(AuditStage(log), call(1), hang)
            await forwarded.wait()
            calls.cancel_scope.cancel()
        await AuditStage(log)(call(2), answer)
        tasks.cancel_scope.cancel()

    entries: list[dict[str, Any]] = [orjson.loads(row.entry) for row in store.entries(log.log_id)]
    intents = {entry["request"]: entry["i"] for entry in entries if entry["kind"] == "call.intent"}
    outcomes = {entry["request"]: entry for entry in entries if entry["kind"] == "call.outcome"}
    assert outcomes["1"]["status"] == "cancelled"
    assert outcomes["1"]["intent"] == intents["1"]
    assert outcomes["2"]["status"] == "ok"
    assert outcomes["2"]["intent"] == intents["2"]
