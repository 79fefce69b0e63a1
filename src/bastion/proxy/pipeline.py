"""The pipeline: small stages with one signature, each wrapping the next, like ASGI middleware.

    identify → admit → policy → approval → watch → audit → screen → forward

A stage receives the call and the rest of the chain, and decides with a returned value:
either the reply of `call_next(call)` (possibly transformed) or a refusal of its own.
Stages never raise to decide. Later features plug in here without touching the relay.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bastion.types import Decision, Era, Reply

__all__ = [
    "STAGE_ORDER",
    "Ask",
    "Call",
    "CallNext",
    "ClientInfo",
    "NoEvents",
    "PassThrough",
    "SessionEvents",
    "Stage",
    "check_order",
    "compose",
]

STAGE_ORDER = ("identify", "admit", "policy", "approval", "watch", "audit", "screen")
"""Where each stage sits, outermost first; `forward` is always last."""


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """Who is calling: the authenticated client identity and the session it belongs to."""

    client_id: str
    session_id: str
    era: Era = Era.HANDSHAKE
    name: str = ""
    version: str = ""
    grants: frozenset[str] | None = None
    """Capabilities the client's credential carries (OAuth scopes mapped by `[auth.scopes]`): a ceiling
    on what its configuration grants. None: the credential does not limit them (Bastion's own tokens)."""


@dataclass(slots=True)
class Call:
    """One request on its way to a server (or, for server-to-client requests, to the client)."""

    client: ClientInfo
    server: str
    method: str
    params: dict[str, Any] | None
    tool: str | None = None
    """The server's own name for the tool, prompt or resource addressed (after namespacing is undone)."""
    request_id: int | str | None = None
    server_version: str = ""
    definition: Mapping[str, Any] | None = None
    """The tool's definition as the server listed it (for tools/call), for the stages that judge it."""
    exposed: str | None = None
    """The name the client called the tool by (namespaced), for a refusal that must echo it."""
    decision: Decision | None = None
    """What the stages decided so far: policy's decision, as admit, approval and policy's rollout
    aids shape it. The audit stage records it; None when no stage judged the call."""
    screening: tuple[str, ...] = ()
    """The screening rules the server's answer met (sorted), for the outcome entry."""
    ask: Ask | None = None
    """Sends a request back to the calling client (elicitation), where its connection allows it."""


CallNext = Callable[[Call], Awaitable[Reply]]
Ask = Callable[[str, dict[str, Any]], Awaitable[Reply]]


class Stage(Protocol):
    name: str

    async def __call__(self, call: Call, call_next: CallNext) -> Reply: ...


class SessionEvents(Protocol):
    """What a session reports besides calls: refusals before the pipeline, and what servers list."""

    async def refused(self, call: Call, reply: Reply) -> None: ...

    async def failed(self, call: Call, error: BaseException) -> None: ...

    async def listed(self, client: ClientInfo, server: str, kind: str, items: list[dict[str, Any]]) -> None: ...


class NoEvents:
    async def refused(self, call: Call, reply: Reply) -> None:
        return None

    async def failed(self, call: Call, error: BaseException) -> None:
        return None

    async def listed(self, client: ClientInfo, server: str, kind: str, items: list[dict[str, Any]]) -> None:
        return None


class PassThrough:
    """A stage that is in its place but has nothing to decide yet."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def __call__(self, call: Call, call_next: CallNext) -> Reply:
        return await call_next(call)


def compose(stages: Sequence[Stage], forward: CallNext) -> CallNext:
    """Wrap `forward` in the stages, first stage outermost; order must follow STAGE_ORDER.

    Each stage is bound to the rest of the chain with `functools.partial`, so calling the chain is
    calling the first stage itself (no wrapper coroutine per stage); a `PassThrough` is left out,
    since it would only pass the call on."""
    check_order("stages", [stage.name for stage in stages], STAGE_ORDER)
    chain = forward
    for stage in reversed(stages):
        if not isinstance(stage, PassThrough):
            chain = functools.partial(stage, call_next=chain)
    return chain


def check_order(what: str, names: Sequence[str], order: tuple[str, ...]) -> None:
    """Refuse a chain whose `names` are not each in `order`, once, in that order (a ValueError)."""
    if any(name not in order for name in names):
        raise ValueError(f"{what} must be among {order}, got {list(names)}")
    ranks = [order.index(name) for name in names]
    if ranks != sorted(ranks) or len(set(names)) != len(names):
        raise ValueError(f"{what} must appear once each in the order {order}, got {list(names)}")
