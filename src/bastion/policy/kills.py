"""The live kill switches (`bastion policy kill`): what the policy stage refuses whatever the rules say.

Another process sets them (the CLI writes the state store), so a gateway re-reads them every
period; a store that cannot be read keeps the last ones known rather than dropping them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

import anyio

from bastion.errors import StoreError

__all__ = ["KillSource", "KillSwitches"]

logger = logging.getLogger(__name__)


class _Kill(Protocol):
    @property
    def server(self) -> str: ...

    @property
    def tool(self) -> str: ...


class KillSource(Protocol):
    """Where kill switches are kept (the state store)."""

    def kills(self) -> Sequence[_Kill]: ...


class KillSwitches:
    """The live kill switches, re-read from their source every `period` seconds by `watch`."""

    def __init__(self, source: KillSource, period: float = 1.0) -> None:
        self._source = source
        self._period = period
        self._current: frozenset[tuple[str, str]] = frozenset()

    def current(self) -> frozenset[tuple[str, str]]:
        return self._current

    def refresh(self) -> None:
        self._current = frozenset((row.server, row.tool) for row in self._source.kills())

    async def watch(self) -> None:
        while True:
            await anyio.sleep(self._period)
            try:
                self.refresh()
            except StoreError:
                logger.exception("kill switches could not be re-read; keeping the last ones known")
