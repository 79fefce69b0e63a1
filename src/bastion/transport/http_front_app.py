"""The ASGI edge of the HTTP front: bearer-token authentication in front of the SDK's app.

Tokens are looked up by their SHA-256 hash. Without a valid token a request gets 401 and
never reaches MCP handling, unless the gateway is explicitly configured open on loopback.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["CLIENT_SCOPE_KEY", "BearerAuth", "is_loopback", "split_listen"]

CLIENT_SCOPE_KEY = "bastion.client"
"""Where authentication leaves the client id in the ASGI scope for the MCP layer."""

TokenLookup = Callable[[str], str | None]


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"listen address {listen!r} must be HOST:PORT, e.g. 127.0.0.1:8765")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class BearerAuth:
    def __init__(self, app: ASGIApp, lookup: TokenLookup, *, open_access: bool, path: str = "/mcp") -> None:
        self._app = app
        self._lookup = lookup
        self._open = open_access
        self._path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(self._path):
            await self._app(scope, receive, send)
            return
        token = _bearer(scope)
        client = self._lookup(token) if token else None
        if client is None and not self._open:
            await _unauthorized(send, "a valid bearer token is required" if token is None else "invalid bearer token")
            return
        scope[CLIENT_SCOPE_KEY] = client or "anonymous"
        await self._app(scope, receive, send)


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


async def _unauthorized(send: Send, message: str) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": -32001, "message": message}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"www-authenticate", b'Bearer realm="bastion"'),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
