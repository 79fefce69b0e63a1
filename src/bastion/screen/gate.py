"""Screening at the gateway: listings are screened as they arrive (before pins, policy and the
client see them), and results on their way back (the innermost stage, `screen`).

The screeners are pure (`listing`, `results`); this module applies each server's
`[servers.NAME.screen]` settings, replaces what was stripped, refuses what was blocked, and
reports every finding: an audit entry naming the rules and places (never the raw text), and a
signal for the watcher.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from bastion.codes import DENIED
from bastion.config.model import ServerConfig
from bastion.proxy.listings import INSTRUCTIONS, Offer, OfferNext
from bastion.proxy.pipeline import Call, CallNext
from bastion.screen.definition import tool_count_findings
from bastion.screen.findings import Finding, Severity
from bastion.screen.listing import (
    InstructionsVerdict,
    screen_prompt,
    screen_resource,
    screen_server_instructions,
    screen_tool,
)
from bastion.screen.results import ResultPolicy, screen_result
from bastion.types import Reply, RpcError

__all__ = ["ListingScreen", "Report", "ResultScreen", "ScreenListings"]

logger = logging.getLogger(__name__)

Report = Callable[[str, str, str, Sequence[Finding]], Awaitable[None]]
"""(server, what: "tool"/"prompt"/"resource"/"resourceTemplate"/"instructions"/"listing"/"result",
name, findings) -> recorded."""


def _worst(findings: Sequence[Finding]) -> str:
    return max((f.severity for f in findings), key=lambda s: s.rank, default=Severity.LOW).value


class ListingScreen:
    """Screens each server's tools, prompts and resources as listed; the session keeps what this
    returns. A server whose instructions were blocked (`listing = "block"`, a finding at
    `block_at`) lists nothing: `blocked(server)` says so, and every later listing is empty."""

    def __init__(self, servers: Mapping[str, ServerConfig], report: Report) -> None:
        self._servers = servers
        self._report = report
        self._blocked: set[str] = set()
        self._listed: dict[str, frozenset[str]] = {}

    def blocked(self, server: str) -> bool:
        """Whether the server's own instructions got it blocked: none of what it offers is listed."""
        return server in self._blocked

    def listed(self, server: str) -> frozenset[str] | None:
        """The names of the tools the server listed last (as it names them, whether or not screening
        kept them), or None before its first listing: result screening calls any other tool named
        in a result a tool transfer."""
        return self._listed.get(server)

    async def __call__(
        self, server: str, kind: str, items: Sequence[Mapping[str, Any]], other_tools: frozenset[str]
    ) -> Sequence[Mapping[str, Any]]:
        config = self._servers.get(server)
        if config is None or kind not in _KINDS:
            return items
        if kind == "tools":
            self._listed[server] = frozenset(str(item.get("name")) for item in items)
        if server in self._blocked:
            return []
        action, block_at = config.screen.listing, config.screen.block_at
        kept: list[dict[str, Any]] = []
        for item in items:
            if kind == "tools":
                verdict = screen_tool(item, action, other_tools, block_at)
            elif kind == "prompts":
                verdict = screen_prompt(item, action, block_at)
            else:
                verdict = screen_resource(item, action, block_at)
            if verdict.findings:
                await self._report(server, _KINDS[kind], str(item.get("name", item.get("uri"))), verdict.findings)
            if verdict.item is not None:
                kept.append(dict(verdict.item))
        if kind == "tools" and (count := tool_count_findings(len(items))):
            await self._report(server, "listing", server, count)
        return kept

    async def instructions(self, server: str, text: str | None) -> str | None:
        """The instructions as the client may see them (None when blocked); see `instructions_verdict`."""
        return (await self.instructions_verdict(server, text)).text

    async def instructions_verdict(self, server: str, text: str | None) -> InstructionsVerdict:
        """Screens the server's instructions and remembers a server-wide block (`blocked`)."""
        config = self._servers.get(server)
        if config is None or text is None:
            return InstructionsVerdict(text, (), block_server=False)
        verdict = screen_server_instructions(text, config.screen.listing, config.screen.block_at)
        if verdict.findings:
            await self._report(server, "instructions", server, verdict.findings)
        if verdict.block_server:
            self._blocked.add(server)
        else:
            self._blocked.discard(server)
        return verdict


_KINDS = {"tools": "tool", "prompts": "prompt", "resources": "resource", "resourceTemplates": "resourceTemplate"}


class ScreenListings:
    """The `screen` listing stage: a server that just came up has its instructions screened first
    (instructions that block the whole server leave every listing of it empty), then each kind
    listed anew, in the order listed; the next stages see the screened items."""

    name = "screen"

    def __init__(self, screen: ListingScreen) -> None:
        self._screen = screen

    async def __call__(self, offer: Offer, offer_next: OfferNext) -> Offer:
        instructions = offer.instructions
        shown = dict(offer.shown)
        for kind in offer.relisted:
            if kind == INSTRUCTIONS:
                instructions = await self._screen.instructions(offer.server, offer.said_instructions)
            else:
                shown[kind] = await self._screen(offer.server, kind, offer.shown[kind], offer.other_tools)
        return await offer_next(replace(offer, shown=shown, instructions=instructions))


class ResultScreen:
    """The `screen` stage: a tool's result is screened before anything else sees it."""

    name = "screen"

    def __init__(
        self,
        servers: Mapping[str, ServerConfig],
        report: Report,
        listed: Callable[[str], frozenset[str] | None] | None = None,
    ) -> None:
        """`listed(server)`: the tools the server lists (`ListingScreen.listed`), for `injection.tool_transfer`."""
        self._policies = {
            name: ResultPolicy(s.screen.injections, s.screen.exfiltration, s.screen.secrets, s.screen.invisible)
            for name, s in servers.items()
        }
        self._report = report
        self._listed = listed

    async def __call__(self, call: Call, call_next: CallNext) -> Reply:
        reply = await call_next(call)
        policy = self._policies.get(call.server)
        if call.method != "tools/call" or isinstance(reply, RpcError) or policy is None:
            return reply
        verdict = screen_result(reply, policy, self._listed(call.server) if self._listed is not None else None)
        if verdict.findings:
            await self._report(call.server, "result", str(call.tool), verdict.findings)
            call.screening = tuple(sorted({f.rule for f in verdict.findings}))
        if verdict.result is None:
            rules = ", ".join(sorted({f.rule for f in verdict.findings}))
            message = f"Refused: the server's answer was blocked by screening ({rules})"
            return RpcError(
                DENIED, message, {"rule": "screen.blocked", "findings": sorted({f.rule for f in verdict.findings})}
            )
        return verdict.result if verdict.changed else reply


def finding_fields(server: str, what: str, name: str, findings: Sequence[Finding]) -> dict[str, Any]:
    """An audit entry's fields for findings: rules, severities and places; excerpts are escaped and short."""
    return {
        "server": {"name": server},
        "what": what,
        "name": name,
        "severity": _worst(findings),
        "findings": [
            {"rule": f.rule, "severity": f.severity.value, "where": f.where, "excerpt": f.excerpt[:120]}
            for f in findings[:20]
        ],
    }
