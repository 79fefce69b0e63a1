"""The seam between the proxy and a server's transport: what a link to one server offers, and
how one is opened.

Both are transport's own vocabulary: the stdio and HTTP back ends implement `ServerLink`, and
`transport.connect` builds the `Connector` that opens them. The proxy's upstream and supervisor
only use them, so they import these from here and the arrows run down.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from bastion.config.model import ServerConfig
from bastion.transport.channel import FrameChannel

__all__ = ["Connector", "ServerLink"]


class ServerLink(FrameChannel, Protocol):
    """A transport to one server: a frame channel that can also be closed and described."""

    def exit_description(self) -> str: ...
    async def ended(self, within: float) -> str | None:
        """How the server ended, if it ends by itself within `within` seconds; else None."""
        ...


Connector = Callable[[str, ServerConfig], AbstractAsyncContextManager[ServerLink]]
"""Opens the transport to a server (starts the process, or connects to the URL) for as long as it is entered."""
