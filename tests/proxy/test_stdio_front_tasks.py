"""The stdio front runs each request in a task of its own and reuses a task once its request is
answered: a call cancelled by the client leaves the calls after it unharmed, and bursts wider
than the tasks kept waiting are all answered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from tests.proxy.test_error_boundary import Events, call, factory

from bastion.proxy.pipeline import Call, CallNext
from bastion.proxy.stdio_front import IDLE_WORKERS, StdioFront
from bastion.transport.channel import FrameChannel
from bastion.transport.memory import memory_pair
from bastion.types import Reply

pytestmark = pytest.mark.anyio

INITIALIZE = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "c", "version": "1"}}


class Holding:
    """Holds `slow` calls until released; counts how many it holds."""

    name = "policy"

    def __init__(self, hold: int) -> None:
        self.release = anyio.Event()
        self.all_held = anyio.Event()
        self._hold = hold
        self.held = 0

    async def __call__(self, call: Call, call_next: CallNext) -> Reply:
        if call.tool == "slow":
            self.held += 1
            if self.held == self._hold:
                self.all_held.set()
            await self.release.wait()
        return await call_next(call)


@asynccontextmanager
async def serving(stage: Holding) -> AsyncIterator[FrameChannel]:
    """A stdio front with `stage` in its pipeline, initialized: the client's side of it."""
    client, gateway_side = memory_pair()
    front = StdioFront(gateway_side, factory(stage, Events()), instance="t")
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(front.serve)
        with anyio.fail_after(10):
            await client.send({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": INITIALIZE})
            assert 0 in await answers(client, 1)
            yield client
        await client.aclose()
        await gateway_side.aclose()


async def answers(client: FrameChannel, count: int) -> dict[int, dict[str, Any]]:
    found: dict[int, dict[str, Any]] = {}
    for _ in range(count):
        frame = await client.receive()
        assert isinstance(frame, dict)
        found[frame["id"]] = frame
    return found


async def test_a_cancelled_call_is_not_answered_and_the_calls_after_it_are() -> None:
    stage = Holding(1)
    async with serving(stage) as client:
        await client.send(call(1, "slow"))
        await stage.all_held.wait()
        cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}}
        await client.send(cancel)
        for request_id in range(2, 6):
            await client.send(call(request_id, "ok"))
            answered = await answers(client, 1)
            assert list(answered) == [request_id]
            assert "result" in answered[request_id]


async def test_a_burst_wider_than_the_waiting_tasks_is_answered_and_so_is_what_follows() -> None:
    wide = IDLE_WORKERS * 2 + 1
    stage = Holding(wide)
    async with serving(stage) as client:
        for request_id in range(1, wide + 1):
            await client.send(call(request_id, "slow"))
        await stage.all_held.wait()
        stage.release.set()
        burst = await answers(client, wide)
        assert set(burst) == set(range(1, wide + 1))
        assert all("result" in frame for frame in burst.values())
        for request_id in range(100, 100 + wide):
            await client.send(call(request_id, "ok"))
        after = await answers(client, wide)
        assert set(after) == set(range(100, 100 + wide))
