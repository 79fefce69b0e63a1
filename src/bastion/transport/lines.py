"""Newline-delimited JSON-RPC over byte streams: the stdio transport of MCP, lean.

`FrameReader` splits a byte stream into frames with a hard size limit (an oversized
frame is skipped up to its newline and reported, never buffered whole). `FdStream`
wraps a raw file descriptor (Bastion's own stdin/stdout) without a thread per read, and
keeps a pipe registered with the event loop between reads instead of registering it
again for every frame (two `epoll_ctl` calls and a callback handle less per read).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import stat
from dataclasses import dataclass

import anyio
from anyio.abc import ByteReceiveStream, ByteSendStream

from bastion.transport.jsonrpc import Frame, FrameError, decode, encode

__all__ = ["EndOfStream", "FdStream", "FrameReader", "FrameWriter", "FramedStream", "Oversized"]

_CHUNK = 256 * 1024


@dataclass(frozen=True, slots=True)
class Oversized:
    """A frame longer than the limit was skipped; its id, if its first bytes name one."""

    size: int
    request_id: int | str | None = None


_ID = re.compile(rb'"id"\s*:\s*(-?\d{1,18}|"[^"\\]{0,200}")')


def _head_id(head: bytes) -> int | str | None:
    """The id of a frame whose body was too large to parse, when it appears before the payload."""
    match = _ID.search(head[:512])
    # Only an id at the top level of the object counts; one inside params would answer the wrong request.
    if match is None or head[: match.start()].count(b"{") != 1 or b"[" in head[: match.start()]:
        return None
    raw = match.group(1)
    return raw[1:-1].decode("utf-8", "replace") if raw.startswith(b'"') else int(raw)


class EndOfStream:
    """The peer closed its side."""


class FrameReader:
    def __init__(self, stream: ByteReceiveStream, *, max_bytes: int, max_depth: int = 64) -> None:
        self._stream = stream
        self._max = max_bytes
        self._depth = max_depth
        self._buffer = bytearray()
        self._skipping = 0
        self._head = b""
        self._eof = False

    async def receive(self) -> Frame | FrameError | Oversized | EndOfStream:
        while True:
            newline = self._buffer.find(b"\n")
            if newline >= 0:
                line = bytes(self._buffer[:newline])
                del self._buffer[: newline + 1]
                if self._skipping:
                    size = self._skipping + len(line)
                    self._skipping = 0
                    return Oversized(size, _head_id(self._head))
                if len(line) > self._max:
                    return Oversized(len(line), _head_id(line))
                if not line.strip():
                    continue
                return decode(line, max_depth=self._depth)
            if self._eof:
                if self._buffer.strip() and not self._skipping:
                    line = bytes(self._buffer)
                    self._buffer.clear()
                    return decode(line, max_depth=self._depth)
                return EndOfStream()
            if len(self._buffer) > self._max:
                if not self._skipping:
                    self._head = bytes(self._buffer[:512])
                self._skipping += len(self._buffer)
                self._buffer.clear()
            try:
                self._buffer += await self._stream.receive(_CHUNK)
            except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                self._eof = True

    async def aclose(self) -> None:
        await self._stream.aclose()


class FrameWriter:
    """Serialises writers so frames never interleave."""

    def __init__(self, stream: ByteSendStream) -> None:
        self._stream = stream
        self._lock = asyncio.Lock()  # uncontended, it neither yields nor looks up the current task

    async def send(self, frame: Frame) -> None:
        data = encode(frame)
        async with self._lock:
            await self._stream.send(data)

    async def aclose(self) -> None:
        await self._stream.aclose()


class FdStream(ByteReceiveStream, ByteSendStream):
    """A byte stream over a file descriptor: non-blocking I/O for pipes and sockets, a thread for files."""

    def __init__(self, fd: int, *, owned: bool = False) -> None:
        self._fd = fd
        self._owned = owned
        self._closed = False
        self._pollable = not stat.S_ISREG(os.fstat(fd).st_mode)
        self._was_blocking = os.get_blocking(fd)
        if self._pollable:
            os.set_blocking(fd, False)
        self._loop: asyncio.AbstractEventLoop | None = None
        """The loop the descriptor is registered with for reading, while it is."""
        self._waiter: asyncio.Future[None] | None = None
        self._idle_wakeups = 0

    async def receive(self, max_bytes: int = 65536) -> bytes:
        while True:
            try:
                data = (
                    os.read(self._fd, max_bytes)
                    if self._pollable
                    else await anyio.to_thread.run_sync(os.read, self._fd, max_bytes)
                )
            except BlockingIOError:
                await self._readable()
                continue
            except OSError as exc:
                if exc.errno in (errno.EBADF, errno.EIO):
                    raise anyio.EndOfStream from exc
                raise
            if not data:
                raise anyio.EndOfStream
            return data

    async def _readable(self) -> None:
        if self._closed:
            raise anyio.ClosedResourceError
        if self._waiter is not None:
            raise anyio.BusyResourceError("reading")
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._unwatch()
            # A registration left by a closed descriptor that had this number would swallow the new one's
            # events (the selector would only swap the callback): drop whatever is there, then register.
            loop.remove_reader(self._fd)
            loop.add_reader(self._fd, self._on_readable)
            self._loop = loop
        self._waiter = waiter = loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    def _on_readable(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            self._idle_wakeups = 0
            waiter.set_result(None)
            return
        # Readable with no reader waiting: the reader is about to read, or busy. The descriptor stays
        # registered across one such wakeup (the usual case: the reader runs next); a second in a row
        # means nobody will read soon, and epoll reports a readable descriptor on every turn, so stop.
        self._idle_wakeups += 1
        if self._idle_wakeups > 1:
            self._unwatch()

    def _unwatch(self) -> None:
        if self._loop is not None:
            with contextlib.suppress(RuntimeError, ValueError, OSError):  # loop closed, or fd gone
                self._loop.remove_reader(self._fd)
            self._loop = None
        self._idle_wakeups = 0

    async def send(self, item: bytes) -> None:
        view = memoryview(item)
        while view:
            try:
                written = os.write(self._fd, view)
            except BlockingIOError:
                await anyio.wait_writable(self._fd)
                continue
            except (BrokenPipeError, ConnectionResetError) as exc:
                raise anyio.BrokenResourceError from exc
            view = view[written:]

    async def send_eof(self) -> None:
        return None

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._unwatch()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(anyio.ClosedResourceError())
        if self._owned:
            anyio.notify_closing(self._fd)
            with contextlib.suppress(OSError):
                os.close(self._fd)
        elif self._pollable:
            with contextlib.suppress(OSError):
                os.set_blocking(self._fd, self._was_blocking)


class FramedStream:
    """A frame channel over a pair of byte streams (Bastion's own stdin/stdout, or a pipe pair)."""

    def __init__(
        self, receive: ByteReceiveStream, send: ByteSendStream, *, max_bytes: int, max_depth: int = 64
    ) -> None:
        self._reader = FrameReader(receive, max_bytes=max_bytes, max_depth=max_depth)
        self._writer = FrameWriter(send)
        self._receive_stream = receive

    async def receive(self) -> Frame | FrameError | Oversized | EndOfStream:
        return await self._reader.receive()

    async def send(self, frame: Frame) -> None:
        await self._writer.send(frame)

    async def aclose(self) -> None:
        await self._writer.aclose()
        await self._receive_stream.aclose()
