"""Server-to-client traffic at the HTTP front: a reply alone is JSON, anything before it opens an SSE stream,
changes for a 2026-07-28 client reach only its own listen streams, and a server's request finds a stream."""

from __future__ import annotations

from typing import Any

import anyio
import orjson
import pytest
from mcp.shared.subscriptions import ServerEvent, ToolsListChanged
from starlette.types import Message

from bastion.codes import SERVER_UNAVAILABLE
from bastion.proxy.http_streams import ClientBus, Exchange, HttpPeer, Standalone, sse_event
from bastion.types import Era, Reply, RpcError

pytestmark = pytest.mark.anyio

REPLY: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "result": {}}
PROGRESS: dict[str, Any] = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}}


class Wire:
    """What the ASGI server was sent."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def __call__(self, message: Message) -> None:
        self.messages.append(message)

    def content_type(self) -> bytes:
        return dict(self.messages[0]["headers"])[b"content-type"]

    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages[1:])


def test_an_sse_event_is_one_message_event_with_the_frame_as_data() -> None:
    assert sse_event(REPLY) == b'event: message\r\ndata: {"jsonrpc":"2.0","id":1,"result":{}}\r\n\r\n'


async def test_a_reply_with_nothing_before_it_is_plain_json_and_a_client_without_sse_gets_only_that() -> None:
    wire = Wire()
    exchange = Exchange(wire, [], json_ok=True, sse_ok=False)
    assert not await exchange.emit(PROGRESS)
    await exchange.finish(REPLY)
    assert wire.content_type() == b"application/json"
    assert orjson.loads(wire.body()) == REPLY


async def test_a_notification_opens_a_stream_that_the_reply_ends() -> None:
    wire = Wire()
    exchange = Exchange(wire, [(b"mcp-session-id", b"s1")], json_ok=True, sse_ok=True)
    assert await exchange.emit(PROGRESS)
    await exchange.finish(REPLY)
    assert wire.content_type() == b"text/event-stream"
    assert (b"mcp-session-id", b"s1") in wire.messages[0]["headers"]
    assert wire.body() == sse_event(PROGRESS) + sse_event(REPLY)
    assert wire.messages[-1]["more_body"] is False
    assert not await exchange.emit(PROGRESS)  # finished: nothing more rides on it


async def test_a_standalone_stream_takes_frames_until_it_is_closed() -> None:
    feed, out = anyio.create_memory_object_stream[dict[str, Any]](1)
    stream = Standalone(feed)
    assert await stream.emit(PROGRESS)
    assert not await stream.emit(PROGRESS)  # full: dropped, never waited for
    stream.close()
    assert not await stream.emit(PROGRESS)
    assert out.receive_nowait() == PROGRESS
    out.close()


async def test_the_bus_delivers_a_clients_changes_only_to_its_own_listeners_until_they_leave() -> None:
    bus = ClientBus()
    alice: list[ServerEvent] = []
    bob: list[ServerEvent] = []
    leave = bus.subscribe("alice", alice.append, _never_ended)
    bus.subscribe("bob", bob.append, _never_ended)
    await bus.publish("alice", ToolsListChanged())
    leave()
    await bus.publish("alice", ToolsListChanged())
    assert (alice, bob) == ([ToolsListChanged()], [])


async def test_closing_the_bus_ends_every_listeners_stream_and_only_theirs() -> None:
    bus = ClientBus()
    ended: list[str] = []
    bus.subscribe("alice", _ignore, lambda: ended.append("alice 1"))
    bus.subscribe("alice", _ignore, lambda: ended.append("alice 2"))
    bus.subscribe("bob", _ignore, lambda: ended.append("bob"))
    leave = bus.subscribe("carol", _ignore, lambda: ended.append("carol"))
    leave()
    bus.close()
    assert sorted(ended) == ["alice 1", "alice 2", "bob"]


def _ignore(_event: ServerEvent) -> None:
    pass


def _never_ended() -> None:
    raise AssertionError("the stream was ended")


async def test_a_modern_clients_list_change_goes_to_the_bus_not_to_a_request() -> None:
    bus = ClientBus()
    heard: list[ServerEvent] = []
    bus.subscribe("key", heard.append, _never_ended)
    peer = HttpPeer(Era.MODERN, bus, "key")
    await peer.notify("notifications/tools/list_changed", None, None)
    assert heard == [ToolsListChanged()]
    assert not peer.can_request


async def test_a_servers_request_rides_an_open_request_stream_and_the_posted_answer_returns() -> None:
    wire = Wire()
    peer = HttpPeer(Era.HANDSHAKE, ClientBus(), "key")
    peer.exchanges[7] = Exchange(wire, [], json_ok=True, sse_ok=True)
    answers: list[Reply] = []
    async with anyio.create_task_group() as tasks:

        async def ask() -> None:
            answers.append(await peer.request("roots/list", None, None))

        tasks.start_soon(ask)
        await anyio.wait_all_tasks_blocked()
        [asked] = [orjson.loads(m["body"].split(b"data: ")[1]) for m in wire.messages[1:]]
        assert asked["method"] == "roots/list"
        assert peer.resolve({"jsonrpc": "2.0", "id": asked["id"], "result": {"roots": []}})
    assert answers == [{"roots": []}]


async def test_a_servers_request_with_no_stream_to_ride_is_refused() -> None:
    reply = await HttpPeer(Era.HANDSHAKE, ClientBus(), "key").request("roots/list", None, None)
    assert isinstance(reply, RpcError)
    assert reply.code == SERVER_UNAVAILABLE
