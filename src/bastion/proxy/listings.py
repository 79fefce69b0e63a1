"""The listing pipeline: what a server offers passes small stages before a session's catalog holds it.

    screen → record → admit → catalog

Listings get the same shape as calls (`bastion.proxy.pipeline`): each stage receives the offer
and the rest of the chain, and returns the offer as it goes on (possibly with items dropped or
replaced). The session runs the chain each time a server comes up or says one of its lists
changed; the composition root decides which stages there are, and `compose_listings` holds
them to `LISTING_ORDER`, so screening always sees a definition before pins judge the server and
before anything is recorded as shown. The proxy knows only this protocol, never the packages
that implement it.

Hiding a listed tool from one client (policy, unreviewed pins) is not a stage: it is asked of
every tool each time the catalog is built (`bastion.proxy.catalog.Hide`), because a kill switch
can hide a tool between two listings. `either` joins several such answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bastion.proxy.catalog import Hide
from bastion.proxy.pipeline import ClientInfo, SessionEvents, check_order

__all__ = [
    "INSTRUCTIONS",
    "LISTING_ORDER",
    "ListingStage",
    "Offer",
    "OfferNext",
    "RecordListings",
    "compose_listings",
    "either",
]

LISTING_ORDER = ("screen", "record", "admit")
"""Where each listing stage sits, outermost (first to see an offer) first; the catalog is always last."""

INSTRUCTIONS = "instructions"
"""In `Offer.relisted`: the server's instructions are new too (it has just come up)."""

Items = Sequence[Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Offer:
    """One server's offer to one session, as it changed: what the server said, and what will be shown.

    `said` holds every kind the server offers (tools, prompts, resources, resourceTemplates) as it
    listed them, the whole picture pins compare; `shown` holds only the kinds in `relisted`, as
    the client will see them once every stage has had its say."""

    client: ClientInfo
    server: str
    version: str
    said_instructions: str | None
    said: Mapping[str, Items]
    relisted: tuple[str, ...]
    """The kinds listed anew, in the order they were listed; `INSTRUCTIONS` first when the server came up."""
    shown: Mapping[str, Items]
    instructions: str | None
    """The instructions as the client will see them (None: none, or withheld)."""
    other_tools: frozenset[str] = frozenset()
    """The tools other servers of the session list (as shown), as each server names them."""


OfferNext = Callable[[Offer], Awaitable[Offer]]


class ListingStage(Protocol):
    name: str

    async def __call__(self, offer: Offer, offer_next: OfferNext) -> Offer: ...


async def _settle(offer: Offer) -> Offer:
    return offer


def compose_listings(stages: Sequence[ListingStage]) -> OfferNext:
    """The chain of `stages`, first stage outermost; order must follow LISTING_ORDER."""
    check_order("listing stages", [stage.name for stage in stages], LISTING_ORDER)
    chain: OfferNext = _settle
    for stage in reversed(stages):
        chain = _bind(stage, chain)
    return chain


def _bind(stage: ListingStage, offer_next: OfferNext) -> OfferNext:
    async def run(offer: Offer) -> Offer:
        return await stage(offer, offer_next)

    return run


class RecordListings:
    """The `record` stage: the session's events are told which tools its client is now offered
    (the audit log's listing entry), as the screen stage left them."""

    name = "record"

    def __init__(self, events: SessionEvents) -> None:
        self._events = events

    async def __call__(self, offer: Offer, offer_next: OfferNext) -> Offer:
        if "tools" in offer.relisted:
            tools = [dict(item) for item in offer.shown["tools"]]
            await self._events.listed(offer.client, offer.server, "tools", tools)
        return await offer_next(offer)


def either(*hides: Hide) -> Hide:
    """The first reason any of `hides` gives to hide a tool, asked in order (later ones are not asked)."""

    def hide(server: str, item: Mapping[str, Any]) -> Mapping[str, str] | None:
        why = None
        for one in hides:
            why = one(server, item)
            if why:
                return why
        return why

    return hide
