"""Opening the transport to a configured server: a stdio child process or a remote HTTP endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager

import anyio

from bastion.config.model import ServerConfig
from bastion.transport.link import Connector, ServerLink
from bastion.transport.stdio_back import Launch, StdioServer, plain_launch, server_environment

__all__ = ["Prepare", "make_connector"]

Prepare = Callable[[str, ServerConfig], Awaitable[Launch]]
"""How a stdio server is launched: the runtime's answer sandboxes it and adds its secrets."""


def make_connector(
    environ: Mapping[str, str], *, max_bytes: int, max_depth: int, prepare: Prepare | None = None
) -> Connector:
    async def unconfined(name: str, server: ServerConfig) -> Launch:
        return plain_launch(server, server_environment(server, environ))

    launcher = prepare or unconfined

    @asynccontextmanager
    async def connect(name: str, server: ServerConfig) -> AsyncIterator[ServerLink]:
        if server.transport == "http":
            # Imported here, not at the top: it pulls in the SDK's HTTP client, about 30 MB that
            # every `bastion wrap` process (one per stdio server in a client config) would carry.
            from bastion.transport.http_back import open_http_server

            async with open_http_server(name, server, environ) as link:
                yield link
            return
        child = await StdioServer.start(name, await launcher(name, server), max_bytes=max_bytes, max_depth=max_depth)
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(child.drain_stderr)
                try:
                    yield child
                finally:
                    tasks.cancel_scope.cancel()
        finally:
            await child.aclose()

    return connect
