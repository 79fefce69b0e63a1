"""A remote MCP server over Streamable HTTP, through the SDK's client transport.

The SDK owns the HTTP details (sessions, SSE streams, redirects within the origin); this
adapter turns its typed messages into the plain frames the proxy relays.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import anyio
import httpx2
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._stream_protocols import ReadStream, WriteStream
from mcp.shared.message import SessionMessage
from mcp_types import jsonrpc_message_adapter
from pydantic import ValidationError

from bastion.config.model import ServerConfig
from bastion.errors import ServerUnavailable
from bastion.transport.channel import Received
from bastion.transport.jsonrpc import Frame
from bastion.transport.lines import EndOfStream

__all__ = ["HttpServer", "open_http_server"]

logger = logging.getLogger(__name__)


class HttpServer:
    def __init__(
        self, name: str, url: str, read: ReadStream[SessionMessage | Exception], write: WriteStream[SessionMessage]
    ) -> None:
        self.name = name
        self.url = url
        self._read = read
        self._write = write
        self._last_error = ""

    async def receive(self) -> Received:
        while True:
            try:
                item = await self._read.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                return EndOfStream()
            if isinstance(item, Exception):
                self._last_error = str(item) or type(item).__name__
                logger.warning("server %s: transport error: %s", self.name, self._last_error)
                continue
            return item.message.model_dump(by_alias=True, mode="json", exclude_none=True)

    async def send(self, frame: Frame) -> None:
        try:
            message = jsonrpc_message_adapter.validate_python(frame)
        except ValidationError as exc:
            raise anyio.BrokenResourceError(f"unsendable frame: {exc.error_count()} errors") from exc
        await self._write.send(SessionMessage(message))

    async def aclose(self) -> None:
        await self._write.aclose()

    def exit_description(self) -> str:
        return f"closed the connection ({self._last_error})" if self._last_error else "closed the connection"

    async def ended(self, within: float) -> str | None:
        """A remote server has no process to end; its connection's error is in `exit_description`."""
        return None


def _headers(server: ServerConfig, environ: Mapping[str, str], name: str) -> dict[str, str]:
    headers = dict(server.headers)
    if server.bearer_token_env:
        token = environ.get(server.bearer_token_env)
        if not token:
            raise ServerUnavailable(
                name, f"environment variable {server.bearer_token_env} (its bearer token) is not set"
            )
        headers["Authorization"] = f"Bearer {token}"
    return headers


@asynccontextmanager
async def open_http_server(name: str, server: ServerConfig, environ: Mapping[str, str]) -> AsyncIterator[HttpServer]:
    assert server.url is not None
    timeout = httpx2.Timeout(server.startup_timeout, read=server.request_timeout)
    async with httpx2.AsyncClient(headers=_headers(server, environ, name), timeout=timeout) as client:
        async with streamable_http_client(server.url, http_client=client) as (read, write):
            yield HttpServer(name, server.url, read, write)
