"""The HTTP front's edge: a valid bearer token names the client in the scope, anything else is refused
before MCP handling, unless the gateway is configured open; listen addresses are parsed strictly."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from bastion.errors import ListenError
from bastion.identity.oauth import Denial, Principal
from bastion.transport.http_front_app import (
    CLIENT_SCOPE_KEY,
    GRANTS_SCOPE_KEY,
    HEADERS_SCOPE_KEY,
    BearerAuth,
    describe,
    header_map,
    listening_socket,
    lookup_only,
    split_listen,
)

pytestmark = pytest.mark.anyio

TOKENS = {"good-token": "alice"}


class App:
    def __init__(self) -> None:
        self.scope: Scope | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def request(token: str | None = None, path: str = "/mcp") -> Scope:
    headers = [(b"authorization", f"Bearer {token}".encode())] if token is not None else []
    return {"type": "http", "method": "POST", "path": path, "headers": headers, "client": ("10.0.0.5", 4242)}


async def run(auth: BearerAuth, scope: Scope) -> tuple[int, dict[bytes, bytes], Any]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await auth(scope, receive, send)
    body = sent[1]["body"]
    return sent[0]["status"], dict(sent[0]["headers"]), json.loads(body) if body != b"ok" else body


async def test_a_known_token_names_its_client_in_the_scope_and_reaches_the_app() -> None:
    app = App()
    scope = request("good-token")
    status, _, _ = await run(BearerAuth(app, lookup_only(TOKENS.get), open_access=False), scope)
    assert status == 200
    assert (scope[CLIENT_SCOPE_KEY], scope[GRANTS_SCOPE_KEY]) == ("alice", None)


async def test_no_token_is_401_with_a_challenge_pointing_at_the_metadata() -> None:
    app = App()
    auth = BearerAuth(app, lookup_only(TOKENS.get), open_access=False, metadata_url="https://gw/.well-known/x")
    status, headers, answer = await run(auth, request())
    assert status == 401
    assert headers[b"www-authenticate"] == b'Bearer resource_metadata="https://gw/.well-known/x"'
    assert answer["error"]["code"] == -32001
    assert app.scope is None


async def test_an_unknown_token_is_refused_and_the_refusal_is_reported() -> None:
    denied: list[str] = []

    async def on_denied(denial: Denial, _scope: Scope) -> None:
        denied.append(denial.reason)

    auth = BearerAuth(App(), lookup_only(TOKENS.get), open_access=False, on_denied=on_denied)
    status, headers, _ = await run(auth, request("wrong"))
    assert status == 401
    assert headers[b"www-authenticate"].startswith(b'Bearer error="invalid_token"')
    assert denied == ["token.unknown"]


async def test_a_token_with_limited_grants_carries_them_into_the_scope() -> None:
    async def authenticate(token: str) -> Principal | Denial:
        return Principal("bot", grants=frozenset({"read"}), credential="jwt", issuer="https://idp", subject="s")

    scope = request("tok-3c1f9e")
    status, _, _ = await run(BearerAuth(App(), authenticate, open_access=False), scope)
    assert status == 200
    assert (scope[CLIENT_SCOPE_KEY], scope[GRANTS_SCOPE_KEY]) == ("bot", frozenset({"read"}))
    # The token itself goes no further than the request's own headers.
    added = {key: value for key, value in scope.items() if key not in ("headers", HEADERS_SCOPE_KEY)}
    assert "tok-3c1f9e" not in repr(added)


async def test_a_later_authorization_line_is_still_read_when_the_first_is_not_a_bearer_token() -> None:
    scope = request("good-token")
    scope["headers"] = [(b"authorization", b"Basic YTpi"), *scope["headers"]]
    assert (await run(BearerAuth(App(), lookup_only(TOKENS.get), open_access=False), scope))[0] == 200
    assert scope[CLIENT_SCOPE_KEY] == "alice"


def test_the_header_map_is_read_once_and_keeps_the_first_copy_of_each_header() -> None:
    scope: Scope = {"type": "http", "headers": [(b"accept", b"a"), (b"host", b"h"), (b"accept", b"b")]}
    headers = header_map(scope)
    assert headers == {b"accept": b"a", b"host": b"h"}
    scope["headers"] = []
    assert header_map(scope) is headers


async def test_an_open_gateway_lets_anonymous_requests_in_and_other_paths_are_not_guarded() -> None:
    scope = request()
    assert (await run(BearerAuth(App(), lookup_only(TOKENS.get), open_access=True), scope))[0] == 200
    assert scope[CLIENT_SCOPE_KEY] == "anonymous"
    health = request(path="/healthz")
    assert (await run(BearerAuth(App(), lookup_only(TOKENS.get), open_access=False), health))[0] == 200


def test_listen_addresses_are_host_and_port_and_anything_else_is_refused() -> None:
    assert split_listen("127.0.0.1:8765") == ("127.0.0.1", 8765)
    assert split_listen("[::1]:80") == ("::1", 80)
    for bad in ("8765", "host:", "host:0", "host:65536", ":80"):
        with pytest.raises(ValueError, match="listen address"):
            split_listen(bad)


def test_a_taken_port_is_one_listen_error() -> None:
    with listening_socket("127.0.0.1", 0) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(ListenError):
            listening_socket("127.0.0.1", port).close()


async def test_the_connections_it_accepts_send_at_once_without_nagle() -> None:
    """Each reply leaves at once: with Nagle's algorithm on, a reply written in two parts waited
    for the client's delayed acknowledgement, about 40 ms a request."""
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[int] = loop.create_future()

    async def on_connect(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set_result(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    with listening_socket("127.0.0.1", 0) as sock:
        assert sock.proto == socket.IPPROTO_TCP
        server = await asyncio.start_server(on_connect, sock=sock)
        async with server:
            _reader, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            assert await asyncio.wait_for(accepted, 5) != 0
            writer.close()


def test_a_refusal_is_described_by_path_and_peer_only() -> None:
    assert describe(request("secret")) == {"path": "/mcp", "remote": "10.0.0.5"}
