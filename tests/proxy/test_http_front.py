"""The HTTP front before any session: requests that name no session, an unknown one or a foreign version are
refused with their status, methods it does not serve get 405, and admission says when to come back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

import orjson
import pytest
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import Message, Scope

from bastion.codes import INVALID_PARAMS, INVALID_REQUEST
from bastion.errors import GatewayFull
from bastion.proxy.http_front import HttpFront
from bastion.transport.http_front_app import CLIENT_SCOPE_KEY
from bastion.transport.http_guard import FRAME_SCOPE_KEY

pytestmark = pytest.mark.anyio

LIST: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
INITIALIZE: dict[str, Any] = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "c", "version": "1"}},
}


def no_session(*_args: object) -> NoReturn:
    raise AssertionError("no session may start here")


def front(admit_session: Callable[[str], None] | None = None) -> HttpFront:
    return HttpFront(no_session, instance="test", instructions=None, admit_session=admit_session)


def scope(method: str = "POST", frame: dict[str, Any] | None = None, **headers: str) -> Scope:
    sent = {"content_type": "application/json", "accept": "application/json, text/event-stream", **headers}
    encoded = [(name.replace("_", "-").encode(), value.encode()) for name, value in sent.items()]
    found: Scope = {"type": "http", "method": method, "path": "/mcp", "headers": encoded, CLIENT_SCOPE_KEY: "alice"}
    if frame is not None:
        found[FRAME_SCOPE_KEY] = frame
    return found


async def exchange(app: HttpFront, request: Scope) -> list[Message]:
    """What the front sends back for one request with an empty body."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(request, receive, send)
    return sent


async def call(app: HttpFront, request: Scope) -> tuple[int, dict[bytes, bytes], Any]:
    sent = await exchange(app, request)
    body = sent[1].get("body", b"")
    return sent[0]["status"], dict(sent[0]["headers"]), orjson.loads(body) if body else None


async def test_the_dns_rebinding_check_refuses_a_foreign_host_origin_or_type_every_time() -> None:
    """A combination of headers the check let through is remembered; one it refused never is."""
    app = front()
    settings = TransportSecuritySettings(allowed_hosts=["127.0.0.1:*"], allowed_origins=["http://127.0.0.1:*"])
    app.app(settings, "127.0.0.1")
    good = {"host": "127.0.0.1:8765", "origin": "http://127.0.0.1:8765"}
    past = (400, b'{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Bad Request: Missing session ID"}}')
    for _ in range(3):
        assert await answered(app, scope(frame=LIST, **good)) == past  # past the check, to the missing session id
        assert await answered(app, scope(frame=LIST, host="evil.example:8765")) == (421, b"Invalid Host header")
        foreign = scope(frame=LIST, **{**good, "origin": "http://evil.example"})
        assert await answered(app, foreign) == (403, b"Invalid Origin header")
        text = scope(frame=LIST, **{**good, "content_type": "text/plain"})
        assert await answered(app, text) == (400, b"Invalid Content-Type header")
        assert (await answered(app, scope(frame=LIST, origin="http://127.0.0.1:8765")))[0] == 421  # no Host


async def answered(app: HttpFront, request: Scope) -> tuple[int, bytes]:
    sent = await exchange(app, request)
    return int(sent[0]["status"]), bytes(sent[1].get("body", b""))


async def test_a_request_without_a_session_id_is_400_and_an_unknown_session_404() -> None:
    app = front()
    missing, _, answer = await call(app, scope(frame=LIST))
    unknown, _, _ = await call(app, scope(frame=LIST, mcp_session_id="nope"))
    assert (missing, answer["error"]["code"]) == (400, INVALID_REQUEST)
    assert unknown == 404


async def test_a_modern_client_may_only_post() -> None:
    status, headers, _ = await call(front(), scope("GET", mcp_protocol_version="2026-07-28"))
    assert (status, headers[b"allow"]) == (405, b"POST")


async def test_a_malformed_initialize_is_refused_without_opening_a_session() -> None:
    app = front()
    bad = {**INITIALIZE, "params": {"protocolVersion": 3}}
    status, _, answer = await call(app, scope(frame=bad))
    assert (status, answer["id"], answer["error"]["code"]) == (400, 1, INVALID_PARAMS)
    assert app.session_count() == 0


async def test_methods_the_front_does_not_serve_are_405_with_what_it_allows() -> None:
    status, headers, _ = await call(front(), scope("PUT"))
    assert (status, headers[b"allow"]) == (405, b"GET, POST, DELETE")


def test_notifications_and_requests_inside_a_session_need_no_admission() -> None:
    def never(_client: str) -> None:
        raise AssertionError("admission is asked only for a request that opens a session")

    app = front(admit_session=never)
    assert app.admit(scope(), {"jsonrpc": "2.0", "method": "notifications/initialized"}) is None
    assert app.admit(scope(), LIST) is None


def test_a_new_session_a_full_pool_cannot_take_is_told_when_to_retry() -> None:
    def full(client: str) -> None:
        assert client == "alice"
        raise GatewayFull("git", "4 processes", 9)

    assert front(admit_session=full).admit(scope(), INITIALIZE) == 9
    assert front().admit(scope(), INITIALIZE) is None


async def test_the_lifespan_protocol_is_completed() -> None:
    messages: list[Message] = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await front()({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
