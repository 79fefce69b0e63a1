"""Keeps one server of a session running: start, handshake, watch, restart with backoff.

A server that crashes, hangs on start or exits mid-call fails its waiting calls with an
error naming it (the upstream does that), and is started again after a growing delay.
Every change of state is reported, so `bastion status` can show it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

import anyio

from bastion.config.model import ServerConfig
from bastion.errors import ServerUnavailable
from bastion.proxy.upstream import Upstream, UpstreamHandler
from bastion.transport.link import Connector
from bastion.types import Era

__all__ = ["ServerState", "StateListener", "Supervisor"]

logger = logging.getLogger(__name__)

INITIAL_BACKOFF = 0.5
EXIT_GRACE = 1.0
"""How long a server whose handshake failed is given to finish exiting, so its exit code can be told."""
STABLE_AFTER = 30.0
"""A server that stayed up this long has its backoff reset."""


class ServerState(StrEnum):
    STARTING = "starting"
    UP = "up"
    RESTARTING = "restarting"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class StateChange:
    server: str
    state: ServerState
    detail: str
    restarts: int


StateListener = Callable[[StateChange], None]


class Supervisor:
    def __init__(
        self,
        name: str,
        config: ServerConfig,
        connector: Connector,
        handler: UpstreamHandler,
        *,
        client_capabilities: dict[str, object],
        on_up: Callable[[Upstream], Awaitable[None]],
        on_state: StateListener,
        backoff_max: float,
        prefer: Era = Era.MODERN,
    ) -> None:
        self._prefer = prefer
        self.name = name
        self.config = config
        self._connector = connector
        self._handler = handler
        self._capabilities = client_capabilities
        self._on_up = on_up
        self._on_state = on_state
        self._backoff_max = backoff_max
        self.upstream: Upstream | None = None
        self.state = ServerState.STARTING
        self.detail = ""
        self.restarts = 0
        self.first_attempt = anyio.Event()

    async def run(self) -> None:
        backoff = INITIAL_BACKOFF
        while True:
            started = anyio.current_time()
            try:
                await self._run_once()
            except* ServerUnavailable as group:
                self._set(ServerState.RESTARTING, _reason(group))
            finally:
                self.upstream = None
                self.first_attempt.set()
            if anyio.current_time() - started > STABLE_AFTER:
                backoff = INITIAL_BACKOFF
            logger.warning(
                "server %s: %s; restarting in %.1fs", self.name, self.detail, backoff, extra={"server": self.name}
            )
            await anyio.sleep(backoff)
            backoff = min(backoff * 2, self._backoff_max)
            self.restarts += 1

    async def _run_once(self) -> None:
        """One life of the server; always ends by raising why it ended."""
        async with self._connector(self.name, self.config) as link:
            upstream = Upstream(
                self.name,
                link,
                self._handler,
                client_capabilities=self._capabilities,
                protocol=self.config.protocol,
                request_timeout=self.config.request_timeout,
            )
            async with anyio.create_task_group() as tasks:
                await tasks.start(upstream.run)
                try:
                    await upstream.handshake(self.config.startup_timeout, self._prefer)
                    await self._on_up(upstream)
                except ServerUnavailable as exc:
                    tasks.cancel_scope.cancel()
                    # A server that exits at start: its exit code and last stderr say more than "stopped answering".
                    ended = await link.ended(EXIT_GRACE)
                    raise ServerUnavailable(self.name, ended or exc.reason) from exc
                except BaseException:
                    tasks.cancel_scope.cancel()
                    raise
                self.upstream = upstream
                self._set(ServerState.UP, f"{upstream.era} era, protocol {upstream.protocol_version}")
                self.first_attempt.set()
            await link.aclose()
            reason = link.exit_description()
        raise ServerUnavailable(self.name, reason)

    def _set(self, state: ServerState, detail: str) -> None:
        self.state = state
        self.detail = detail
        self._on_state(StateChange(self.name, state, detail, self.restarts))

    def unavailable_reason(self) -> str:
        if self.state is ServerState.STARTING:
            return "is still starting"
        return f"is {self.state.value}: {self.detail}"


def _reason(group: BaseExceptionGroup[ServerUnavailable]) -> str:
    """The first reason in a group (task groups wrap what they raise)."""
    first: BaseException = group
    while isinstance(first, BaseExceptionGroup):
        first = first.exceptions[0]  # pyright: ignore[reportUnknownMemberType,reportUnknownVariableType]
    return getattr(first, "reason", str(first))
