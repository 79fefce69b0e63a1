"""The admit stage: what a server offers is checked against `bastion.lock` before anyone sees it.

Each time a server lists its tools (at start, after a restart, on `list_changed`), the listing is
compared with its pin (`compare`). A new or changed tool is hidden and refused until reviewed;
changed instructions, a changed launch command or a server with no pin block the whole server.
Every new drift is reported once (an audit entry, and the watch issue's alerts); `bastion review`
shows it and, approved, updates the lock.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from bastion.codes import DENIED
from bastion.config.model import ServerConfig
from bastion.inventory.pins import Drift, Lock, compare
from bastion.proxy.pipeline import Call, CallNext, SessionEvents
from bastion.types import Action, Decision, Reply, RpcError

__all__ = ["PinGuard", "launch_command"]

logger = logging.getLogger(__name__)

Report = Callable[[Drift], Awaitable[None]]


def launch_command(server: ServerConfig) -> tuple[str, ...]:
    """What a pin records as the server's launch command."""
    if server.command is not None:
        return (server.command, *server.args)
    return ("url", str(server.url))


class PinGuard:
    """Pinned definitions enforced for one session's servers (one guard per session)."""

    name = "admit"

    def __init__(self, lock: Lock, servers: Mapping[str, ServerConfig], report: Report, events: SessionEvents) -> None:
        self._lock = lock
        self._servers = servers
        self._report = report
        self._events = events
        self._drift: dict[str, Drift] = {}

    async def observe(
        self, server: str, version: str, instructions: str | None, listings: Mapping[str, Sequence[Mapping[str, Any]]]
    ) -> None:
        """Compare what a server lists now with its pin; report a drift the first time it is seen."""
        drift = compare(
            server,
            self._lock.servers.get(server),
            launch_command(self._servers[server]),
            version,
            instructions,
            listings.get("tools", ()),
            listings.get("prompts", ()),
            listings.get("resourceTemplates", ()),
        )
        previous = self._drift.get(server)
        self._drift[server] = drift
        if not drift.clean and drift != previous:
            for line in drift.describe():
                logger.warning("%s", line)
            await self._report(drift)

    def hide(self, server: str, item: Mapping[str, Any]) -> Mapping[str, str] | None:
        """Why a listed tool is not shown: its server is blocked, or it is new or changed since pinned."""
        decision = self._hidden(server, item.get("name"))
        return decision.to_record() if decision is not None else None

    async def __call__(self, call: Call, call_next: CallNext) -> Reply:
        drift = self._drift.get(call.server)
        decision = None
        if drift is not None and drift.blocks_server:
            decision = _blocked(call.server, drift)
        elif drift is not None and call.method == "tools/call":
            decision = self._hidden(call.server, call.tool)
        if decision is None:
            return await call_next(call)
        call.decision = decision
        reply = RpcError(DENIED, f"Refused: {decision.reason}", {"rule": decision.rule})
        await self._events.refused(call, reply)
        return reply

    def _hidden(self, server: str, name: object) -> Decision | None:
        drift = self._drift.get(server)
        if drift is None:
            return None
        if drift.blocks_server:
            return _blocked(server, drift)
        if name in drift.blocked_tools():
            reason = f"{name!r} is new or changed since {server!r} was pinned; run `bastion review {server}`"
            return Decision(Action.DENY, "pins.unreviewed", reason, hidden=True)
        return None


def _blocked(server: str, drift: Drift) -> Decision:
    why = (
        "it is not pinned"
        if drift.unpinned
        else "its instructions changed"
        if drift.instructions_changed
        else "its launch command changed"
    )
    reason = f"server {server!r} is blocked: {why} since `bastion pin`; run `bastion review {server}`"
    return Decision(Action.DENY, "pins.server_blocked", reason, hidden=True)
