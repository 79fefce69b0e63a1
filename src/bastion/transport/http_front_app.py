"""The ASGI edge of the HTTP front: bearer-token authentication in front of the SDK's app.

Who a token is (Bastion's own token, looked up by its SHA-256 hash, or an OAuth access
token) is decided by the `Authenticate` handed in. Without a valid token a request gets 401
(with `WWW-Authenticate` pointing at the protected resource metadata when OAuth is on), a
token without a required scope 403, and neither reaches MCP handling, unless the gateway is
explicitly configured open on loopback. The client's name, and the capabilities its token
carries, are left in the ASGI scope for the MCP layer; the token itself goes no further.

The request's headers are read into one map per request (`header_map`), which every layer
behind shares, instead of each scanning the header list for the one it wants.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Awaitable, Callable
from typing import Any, Final

from starlette.types import ASGIApp, Receive, Scope, Send

from bastion.config.model import is_loopback
from bastion.errors import ListenError
from bastion.identity.oauth import Denial, Principal, bastion_principal, challenge

__all__ = [
    "CLIENT_SCOPE_KEY",
    "GRANTS_SCOPE_KEY",
    "Authenticate",
    "BearerAuth",
    "OnDenied",
    "describe",
    "header_map",
    "is_loopback",
    "listening_socket",
    "lookup_only",
    "repeats_a_header",
    "split_listen",
]

CLIENT_SCOPE_KEY = "bastion.client"
"""Where authentication leaves the client id in the ASGI scope for the MCP layer."""
GRANTS_SCOPE_KEY = "bastion.grants"
"""… and the capabilities the client's token carries (a ceiling; None: not limited by the token)."""
HEADERS_SCOPE_KEY: Final = "bastion.headers"
"""Where `header_map` keeps the request's headers by name."""

Authenticate = Callable[[str], Awaitable[Principal | Denial]]
OnDenied = Callable[[Denial, Scope], Awaitable[None]]


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound and listening on `host:port` (handed to uvicorn), or ListenError saying why not.

    Bound before anything announces the address, so a taken port is one clear error, not a
    traceback after "serving at …". Made with its protocol named (IPPROTO_TCP), which the
    connections it accepts inherit: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on
    sockets that say they are TCP. `socket.create_server` leaves it 0, and every reply then
    waited out the client's delayed acknowledgement (about 40 ms a request)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(socket.SOMAXCONN)
    except OSError as exc:
        sock.close()
        raise ListenError(host, port, exc.strerror or str(exc)) from exc
    return sock


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"listen address {listen!r} must be HOST:PORT, e.g. 127.0.0.1:8765")
    return host, int(port)


class BearerAuth:
    def __init__(
        self,
        app: ASGIApp,
        authenticate: Authenticate,
        *,
        open_access: bool,
        path: str = "/mcp",
        metadata_url: str | None = None,
        scope_hint: str | None = None,
        on_denied: OnDenied | None = None,
    ) -> None:
        self._app = app
        self._authenticate = authenticate
        self._open = open_access
        self._path = path
        self._metadata_url = metadata_url
        """The protected resource metadata (RFC 9728) a 401 points at; None without OAuth."""
        self._scope_hint = scope_hint
        self._on_denied = on_denied

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(self._path):
            await self._app(scope, receive, send)
            return
        token = _bearer(scope)
        verdict = await self._authenticate(token) if token is not None else None
        if isinstance(verdict, Principal):
            # The token itself is deliberately not kept: the front binds sessions to these (`_owner`).
            scope[CLIENT_SCOPE_KEY] = verdict.client
            scope[GRANTS_SCOPE_KEY] = verdict.grants
        elif self._open:
            scope[CLIENT_SCOPE_KEY] = "anonymous"
        elif verdict is None:
            await self._refuse(send, 401, challenge(self._metadata_url, None, self._scope_hint), _NO_CREDENTIALS)
            return
        else:
            if self._on_denied is not None:
                await self._on_denied(verdict, scope)
            header = challenge(self._metadata_url, verdict) if verdict.status in (401, 403) else None
            await self._refuse(send, verdict.status, header, verdict.description)
            return
        await self._app(scope, receive, send)

    @staticmethod
    async def _refuse(send: Send, status: int, header: str | None, message: str) -> None:
        body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": -32001, "message": message}}).encode()
        headers: list[tuple[bytes, bytes]] = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        if header is not None:
            headers.append((b"www-authenticate", header.encode("latin-1")))
        if status == 503:
            headers.append((b"retry-after", b"5"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


_NO_CREDENTIALS = "a valid bearer token is required"


def lookup_only(lookup: Callable[[str], str | None]) -> Authenticate:
    """Bastion's own tokens only (heartbeats, metrics, and the MCP endpoint without `[auth]`)."""

    async def authenticate(token: str) -> Principal | Denial:
        client = lookup(token)
        if client is not None:
            return bastion_principal(client)
        return Denial("token.unknown", "invalid bearer token", facts={"credential": "bastion"})

    return authenticate


def header_map(scope: Scope) -> dict[bytes, bytes]:
    """The request's headers by (raw, lowercase) name, the first copy of each, as a scan for the
    first match would find it; read once per request and kept in the scope for the layers behind.
    Fewer entries than header lines means some name came more than once (`repeats_a_header`)."""
    found: dict[bytes, bytes] | None = scope.get(HEADERS_SCOPE_KEY)
    if found is None:
        raw: list[tuple[bytes, bytes]] = list(scope.get("headers", ()))
        found = scope[HEADERS_SCOPE_KEY] = dict(reversed(raw))
    return found


def repeats_a_header(scope: Scope) -> bool:
    """Whether a header name appears more than once (then a first-copy map hides the rest)."""
    return len(header_map(scope)) != len(scope.get("headers", ()))


def _bearer(scope: Scope) -> str | None:
    """The token of the first `Authorization: Bearer …` line."""
    first = header_map(scope).get(b"authorization")
    token = _bearer_of(first) if first is not None else None
    if token is not None or first is None or not repeats_a_header(scope):
        return token
    candidates = (_bearer_of(value) for name, value in scope.get("headers", []) if name == b"authorization")
    return next((token for token in candidates if token is not None), None)


def _bearer_of(value: bytes) -> str | None:
    scheme, _, token = value.decode("latin-1").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def describe(scope: Scope) -> dict[str, Any]:
    """Where a refused request came from, for its audit entry: path and peer address, nothing it carried."""
    peer = scope.get("client")
    return {"path": str(scope.get("path", "")), "remote": str(peer[0]) if peer else ""}
