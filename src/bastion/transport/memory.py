"""In-memory frame channels: a connected pair, for unit tests of the proxy without processes."""

from __future__ import annotations

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from bastion.transport.channel import Received
from bastion.transport.jsonrpc import Frame
from bastion.transport.lines import EndOfStream

__all__ = ["MemoryChannel", "memory_pair"]


class MemoryChannel:
    """One end of an in-memory pair; also usable as a server link."""

    def __init__(self, send: MemoryObjectSendStream[Frame], receive: MemoryObjectReceiveStream[Frame]) -> None:
        self._send = send
        self._receive = receive
        self.closed_reason = "closed the in-memory channel"

    async def receive(self) -> Received:
        try:
            return await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            return EndOfStream()

    async def send(self, frame: Frame) -> None:
        await self._send.send(frame)

    async def aclose(self) -> None:
        await self._send.aclose()
        await self._receive.aclose()

    def exit_description(self) -> str:
        return self.closed_reason

    async def ended(self, within: float) -> str | None:
        return None


def memory_pair(buffer: int = 64) -> tuple[MemoryChannel, MemoryChannel]:
    a_send, b_receive = anyio.create_memory_object_stream[Frame](buffer)
    b_send, a_receive = anyio.create_memory_object_stream[Frame](buffer)
    return MemoryChannel(a_send, a_receive), MemoryChannel(b_send, b_receive)
