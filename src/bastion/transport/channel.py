"""The seam between the proxy and a transport: a duplex channel of JSON-RPC frames."""

from __future__ import annotations

from typing import Protocol

from bastion.transport.jsonrpc import Frame, FrameError
from bastion.transport.lines import EndOfStream, Oversized

__all__ = ["FrameChannel", "Received"]

Received = Frame | FrameError | Oversized | EndOfStream


class FrameChannel(Protocol):
    async def receive(self) -> Received:
        """The next frame, or why there is none; never raises for bad input."""
        ...

    async def send(self, frame: Frame) -> None:
        """Write one frame; raises anyio.BrokenResourceError when the peer is gone."""
        ...

    async def aclose(self) -> None: ...
