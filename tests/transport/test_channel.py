"""The frame channel contract: every transport end receives frames or a reason there are none, and never
raises for what its peer does; code written against the protocol runs on any end."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.codes import PARSE_ERROR
from bastion.transport.channel import FrameChannel, Received
from bastion.transport.jsonrpc import FrameError
from bastion.transport.lines import EndOfStream, Oversized
from bastion.transport.memory import memory_pair

pytestmark = pytest.mark.anyio


async def relay(source: FrameChannel, sink: FrameChannel) -> list[Received]:
    """What a proxy does with any channel: pass frames on until there are none, keeping what it saw."""
    seen: list[Received] = []
    while True:
        item = await source.receive()
        seen.append(item)
        if not isinstance(item, dict):
            return seen
        await sink.send(item)


async def test_a_relay_written_against_the_protocol_passes_frames_until_the_end() -> None:
    client, front = memory_pair()
    back, server = memory_pair()
    frame = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    await client.send(frame)
    await client.aclose()
    seen = await relay(front, back)
    assert seen[0] == frame
    assert isinstance(seen[1], EndOfStream)
    assert await server.receive() == frame
    for end in (front, back, server):
        await end.aclose()


async def test_the_end_of_input_is_a_value_not_an_exception() -> None:
    one, other = memory_pair()
    await other.aclose()
    channel: FrameChannel = one
    assert isinstance(await channel.receive(), EndOfStream)
    await channel.aclose()


class Scripted:
    """A channel end written by hand: the protocol is structural, so any class with its methods is one."""

    def __init__(self, *items: Received) -> None:
        self.items = list(items)
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> Received:
        return self.items.pop(0) if self.items else EndOfStream()

    async def send(self, frame: dict[str, Any]) -> None:
        self.sent.append(frame)

    async def aclose(self) -> None:
        self.items.clear()


async def test_a_bad_or_oversized_frame_is_a_value_a_relay_stops_at_and_never_forwards() -> None:
    frame = {"jsonrpc": "2.0", "method": "ping", "id": 1}
    for bad in (FrameError(PARSE_ERROR, "Parse error"), Oversized(10_000, 2)):
        source, sink = Scripted(frame, bad, frame), Scripted()
        seen = await relay(source, sink)
        assert seen == [frame, bad]
        assert sink.sent == [frame]
