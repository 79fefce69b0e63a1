"""A remote server over Streamable HTTP: the SDK's typed messages become plain frames and back, transport
errors are remembered rather than raised, and a missing bearer token stops the connection before it starts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio
import pytest
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.shared.message import SessionMessage
from mcp_types import jsonrpc_message_adapter

from bastion.config.model import ServerConfig
from bastion.errors import ServerUnavailable
from bastion.transport.http_back import HttpServer, open_http_server
from bastion.transport.lines import EndOfStream

pytestmark = pytest.mark.anyio

PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}


@dataclass
class Wire:
    """The SDK's side of the adapter: what it delivers and what it is sent."""

    server: HttpServer
    deliver: MemoryObjectSendStream[SessionMessage | Exception]
    sent: MemoryObjectReceiveStream[SessionMessage]


@pytest.fixture
async def wire() -> AsyncIterator[Wire]:
    deliver, read = anyio.create_memory_object_stream[SessionMessage | Exception](8)
    write, sent = anyio.create_memory_object_stream[SessionMessage](8)
    yield Wire(HttpServer("remote", "https://mcp.example/mcp", read, write), deliver, sent)
    for stream in (deliver, read, write, sent):
        await stream.aclose()


async def test_a_message_from_the_server_is_received_as_a_plain_frame(wire: Wire) -> None:
    await wire.deliver.send(SessionMessage(jsonrpc_message_adapter.validate_python(PING)))
    assert await wire.server.receive() == PING


async def test_a_transport_error_is_remembered_for_the_exit_description_and_reading_goes_on(wire: Wire) -> None:
    assert wire.server.exit_description() == "closed the connection"
    await wire.deliver.send(RuntimeError("502 from the proxy"))
    await wire.deliver.send(SessionMessage(jsonrpc_message_adapter.validate_python(PING)))
    assert await wire.server.receive() == PING
    assert wire.server.exit_description() == "closed the connection (502 from the proxy)"


async def test_the_end_of_the_sdks_stream_is_the_end_of_the_channel(wire: Wire) -> None:
    await wire.deliver.aclose()
    assert isinstance(await wire.server.receive(), EndOfStream)
    assert await wire.server.ended(1.0) is None


async def test_a_frame_sent_reaches_the_sdk_as_its_typed_message(wire: Wire) -> None:
    await wire.server.send(PING)
    message = await wire.sent.receive()
    assert message.message.model_dump(by_alias=True, mode="json", exclude_none=True) == PING


async def test_a_frame_the_sdk_cannot_type_is_refused_as_a_broken_resource(wire: Wire) -> None:
    with pytest.raises(anyio.BrokenResourceError):
        await wire.server.send({"jsonrpc": "2.0", "id": 1})


async def test_a_bearer_token_variable_that_is_not_set_stops_the_server_before_connecting() -> None:
    server = ServerConfig(url="http://127.0.0.1:9/mcp", bearer_token_env="REMOTE_TOKEN")
    with pytest.raises(ServerUnavailable) as refused:
        async with open_http_server("remote", server, {}):
            pass
    assert refused.value.server == "remote"
