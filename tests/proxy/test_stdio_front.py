"""The stdio front before any session: it answers ping, insists on a handshake first, turns bad and oversized
frames into JSON-RPC errors, and drops what nobody asked for; it never crashes and never forwards."""

from __future__ import annotations

from typing import Any, NoReturn

import mcp_types as mt
import pytest

from bastion.codes import INVALID_PARAMS, INVALID_REQUEST, PARSE_ERROR
from bastion.proxy.stdio_front import StdioFront
from bastion.transport.channel import Received
from bastion.transport.jsonrpc import FrameError
from bastion.transport.lines import EndOfStream, Oversized

pytestmark = pytest.mark.anyio


class Script:
    """A client that sends the given items, then closes its side; what the front answered is in `sent`."""

    def __init__(self, *items: Received) -> None:
        self._items = list(items)
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> Received:
        return self._items.pop(0) if self._items else EndOfStream()

    async def send(self, frame: dict[str, Any]) -> None:
        self.sent.append(frame)

    async def aclose(self) -> None:
        pass


def no_session(*_args: object) -> NoReturn:
    raise AssertionError("no session may start before a valid handshake")


async def serve(*items: Received) -> list[dict[str, Any]]:
    client = Script(*items)
    front = StdioFront(client, no_session, instance="test")
    await front.serve()
    assert front.failed is None
    return client.sent


def request(method: str, params: dict[str, Any] | None = None, request_id: int = 1) -> dict[str, Any]:
    frame: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        frame["params"] = params
    return frame


def codes(sent: list[dict[str, Any]]) -> list[int]:
    return [frame["error"]["code"] for frame in sent]


async def test_ping_is_answered_before_the_handshake() -> None:
    assert await serve(request("ping", request_id=9)) == [{"jsonrpc": "2.0", "id": 9, "result": {}}]


async def test_any_other_request_before_initialize_is_an_invalid_request() -> None:
    sent = await serve(request("tools/list"))
    assert codes(sent) == [INVALID_REQUEST]
    assert sent[0]["id"] == 1


async def test_a_malformed_handshake_is_refused_without_starting_a_session() -> None:
    modern: dict[str, Any] = {
        "_meta": {mt.PROTOCOL_VERSION_META_KEY: "1999-01-01", mt.CLIENT_CAPABILITIES_META_KEY: {}}
    }
    sent = await serve(request("initialize", {"protocolVersion": 3}), request("tools/list", modern, 2))
    assert codes(sent) == [INVALID_PARAMS, mt.UNSUPPORTED_PROTOCOL_VERSION]


async def test_bad_and_oversized_frames_get_errors_with_their_ids_and_serving_goes_on() -> None:
    sent = await serve(
        FrameError(PARSE_ERROR, "Parse error"), Oversized(10_000_000, request_id=4), request("ping", request_id=5)
    )
    assert [(frame.get("id"), frame.get("error", {}).get("code")) for frame in sent] == [
        (None, PARSE_ERROR),
        (4, INVALID_REQUEST),
        (5, None),
    ]


async def test_responses_nobody_asked_for_and_early_notifications_are_dropped_silently() -> None:
    sent = await serve(
        {"jsonrpc": "2.0", "id": "bastion-1", "result": {}},
        {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
    )
    assert sent == []
