"""Telling the person who runs a gateway why a tool is hidden from a client (the client is told nothing)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from bastion.proxy.catalog import Hide

__all__ = ["told_once"]

logger = logging.getLogger(__name__)


def told_once(hide: Hide, told: set[tuple[str, str]]) -> Hide:
    """`hide`, and the person running the gateway is told once on stderr of each tool a missing
    grant hides, with the grant that would show it (the client is told nothing: invariant 5).
    `told` is shared by every session of the gateway, so each tool is named once per process."""

    def tell(server: str, item: Mapping[str, Any]) -> Mapping[str, str] | None:
        why = hide(server, item)
        rule = why.get("rule", "") if why is not None else ""
        name = str(item.get("name"))
        if why is not None and rule.startswith("capability.") and (server, name) not in told:
            told.add((server, name))
            capability = rule.removeprefix("capability.")
            logger.warning(
                "server %s: tool %r is hidden: %s (with `bastion wrap`: --grant %s, or --grant-tool %s)",
                server, name, why.get("reason", ""), capability, name,
            )  # fmt: skip
        return why

    return tell
