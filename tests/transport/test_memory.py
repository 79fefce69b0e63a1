"""In-memory channels: a connected pair passes frames both ways in order, and a closed end reads as the end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bastion.transport.lines import EndOfStream
from bastion.transport.memory import MemoryChannel, memory_pair

pytestmark = pytest.mark.anyio

PING: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
PONG: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "result": {}}


@pytest.fixture
async def pair() -> AsyncIterator[tuple[MemoryChannel, MemoryChannel]]:
    left, right = memory_pair()
    yield left, right
    await left.aclose()
    await right.aclose()


async def test_frames_cross_the_pair_both_ways_in_order(pair: tuple[MemoryChannel, MemoryChannel]) -> None:
    left, right = pair
    await left.send(PING)
    await left.send({**PING, "id": 2})
    await right.send(PONG)
    assert [await right.receive(), await right.receive()] == [PING, {**PING, "id": 2}]
    assert await left.receive() == PONG


async def test_when_one_end_closes_the_other_reads_the_end_of_the_stream(
    pair: tuple[MemoryChannel, MemoryChannel],
) -> None:
    left, right = pair
    await left.send(PING)
    await left.aclose()
    assert await right.receive() == PING  # what was sent before the close still arrives
    assert isinstance(await right.receive(), EndOfStream)


async def test_a_closed_end_reads_the_end_of_its_own_stream_instead_of_raising(
    pair: tuple[MemoryChannel, MemoryChannel],
) -> None:
    left, _ = pair
    await left.aclose()
    assert isinstance(await left.receive(), EndOfStream)


async def test_as_a_server_link_it_describes_its_exit_and_never_ends_a_process(
    pair: tuple[MemoryChannel, MemoryChannel],
) -> None:
    left, _ = pair
    assert left.exit_description() == "closed the in-memory channel"
    left.closed_reason = "server crashed"
    assert left.exit_description() == "server crashed"
    assert await left.ended(0.0) is None
