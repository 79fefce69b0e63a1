"""Pins at a running gateway: which lock is in force, and the listing stage that judges each offer.

The admit stage (`bastion.inventory.admit.PinGuard`) refuses calls to what drifted; it learns
what drifted here, from the `admit` listing stage, each time a server lists. The stage passes
every offer on unchanged: hiding a drifted tool is `PinGuard.hide`, asked when the catalog is
built, after this stage has run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bastion.config.model import BastionConfig
from bastion.inventory.pins import Lock, load_lock
from bastion.proxy.listings import Offer, OfferNext

__all__ = ["Observe", "PinListings", "pins_in_force"]

Observe = Callable[[str, str, str | None, Mapping[str, Sequence[Mapping[str, Any]]]], Awaitable[None]]
"""Told what a server offers each time it lists: (server, version, instructions, listings by kind)."""


def pins_in_force(config: BastionConfig, lock_path: Path | None) -> Lock | None:
    """The lock to enforce: with `auto`, only once `bastion pin` has written one; `enforce` without
    a lock blocks every server (nothing is pinned); a lock that does not load stops start-up."""
    mode = config.gateway.pinning
    if mode == "off" or lock_path is None:
        return None
    if mode == "auto" and not lock_path.exists():
        return None
    return load_lock(lock_path)


class PinListings:
    """The `admit` listing stage: what the server offers, as it said it (before screening), is
    compared with its pin (`PinGuard.observe`) before the catalog is rebuilt."""

    name = "admit"

    def __init__(self, observe: Observe) -> None:
        self._observe = observe

    async def __call__(self, offer: Offer, offer_next: OfferNext) -> Offer:
        await self._observe(offer.server, offer.version, offer.said_instructions, offer.said)
        return await offer_next(offer)
