"""FdStream keeps a pipe registered with the event loop between reads: no read is ever missed,
a descriptor number reused after a close is watched afresh, and closing wakes a waiting reader."""

from __future__ import annotations

import os

import anyio
import anyio.lowlevel
import pytest
from anyio import wait_all_tasks_blocked

from bastion.transport.lines import FdStream

pytestmark = pytest.mark.anyio


async def test_every_write_is_read_whether_the_reader_waits_or_is_busy() -> None:
    read, write = os.pipe()
    stream = FdStream(read, owned=True)
    received = bytearray()

    async def reader() -> None:
        while len(received) < 300:
            received.extend(await stream.receive())
            if len(received) % 7 == 0:
                await anyio.sleep(0.001)  # busy now and then: the pipe turns readable with nobody waiting

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(reader)
        for _ in range(100):
            os.write(write, b"abc")
            await anyio.lowlevel.checkpoint()
    assert bytes(received) == b"abc" * 100
    await stream.aclose()
    os.close(write)


async def test_a_descriptor_number_closed_behind_the_streams_back_and_reused_is_watched_afresh() -> None:
    read, write = os.pipe()
    first = FdStream(read, owned=True)
    os.write(write, b"one")
    with anyio.fail_after(5):
        assert await first.receive() == b"one"
    # the first reader waits once more, so its pipe stays registered; then the pipe is closed under it
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(first.receive)
        await wait_all_tasks_blocked()
        tasks.cancel_scope.cancel()
    os.close(read)
    os.close(write)
    again, write_again = os.pipe()
    assert again == read, "the kernel hands out the lowest free number"
    second = FdStream(again, owned=True)
    got: list[bytes] = []

    async def read_second() -> None:
        got.append(await second.receive())

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(read_second)
            await wait_all_tasks_blocked()  # the second reader waits on the reused number
            os.write(write_again, b"two")
    assert got == [b"two"]
    await second.aclose()
    os.close(write_again)


async def test_closing_the_stream_wakes_a_waiting_reader() -> None:
    read, write = os.pipe()
    stream = FdStream(read, owned=True)
    outcome: list[str] = []

    async def reader() -> None:
        try:
            await stream.receive()
        except anyio.ClosedResourceError:
            outcome.append("closed")

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(reader)
        await wait_all_tasks_blocked()
        await stream.aclose()
    assert outcome == ["closed"]
    os.close(write)
