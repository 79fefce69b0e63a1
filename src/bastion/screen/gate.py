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
from typing import Any

from bastion.config.model import ServerConfig
from bastion.proxy.pipeline import Call, CallNext
from bastion.screen.listing import screen_instructions, screen_prompt, screen_tool
from bastion.screen.results import ResultPolicy, screen_result
from bastion.screen.text import Finding, Severity
from bastion.transport.jsonrpc import DENIED
from bastion.types import Reply, RpcError

__all__ = ["ListingScreen", "Report", "ResultScreen"]

logger = logging.getLogger(__name__)

Report = Callable[[str, str, str, Sequence[Finding]], Awaitable[None]]
"""(server, what: "tool"/"prompt"/"instructions"/"result", name, findings) -> recorded."""


def _worst(findings: Sequence[Finding]) -> str:
    return max((f.severity for f in findings), key=lambda s: s.rank, default=Severity.LOW).value


class ListingScreen:
    """Screens each server's tools and prompts as listed; the session keeps what this returns."""

    def __init__(self, servers: Mapping[str, ServerConfig], report: Report) -> None:
        self._servers = servers
        self._report = report

    async def __call__(
        self, server: str, kind: str, items: list[dict[str, Any]], other_tools: frozenset[str]
    ) -> list[dict[str, Any]]:
        config = self._servers.get(server)
        if config is None or kind not in ("tools", "prompts"):
            return items
        action = config.screen.listing
        kept: list[dict[str, Any]] = []
        for item in items:
            verdict = screen_tool(item, action, other_tools) if kind == "tools" else screen_prompt(item, action)
            if verdict.findings:
                await self._report(server, kind[:-1], str(item.get("name")), verdict.findings)
            if verdict.item is not None:
                kept.append(dict(verdict.item))
        return kept

    async def instructions(self, server: str, text: str | None) -> str | None:
        config = self._servers.get(server)
        if config is None or text is None:
            return text
        screened, findings = screen_instructions(text, config.screen.listing)
        if findings:
            await self._report(server, "instructions", server, findings)
        return screened


class ResultScreen:
    """The `screen` stage: a tool's result is screened before anything else sees it."""

    name = "screen"

    def __init__(self, servers: Mapping[str, ServerConfig], report: Report) -> None:
        self._policies = {
            name: ResultPolicy(s.screen.injections, s.screen.exfiltration, s.screen.secrets, s.screen.invisible)
            for name, s in servers.items()
        }
        self._report = report

    async def __call__(self, call: Call, call_next: CallNext) -> Reply:
        reply = await call_next(call)
        policy = self._policies.get(call.server)
        if call.method != "tools/call" or isinstance(reply, RpcError) or policy is None:
            return reply
        verdict = screen_result(reply, policy)
        if verdict.findings:
            await self._report(call.server, "result", str(call.tool), verdict.findings)
            call.notes["screening"] = sorted({f.rule for f in verdict.findings})
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
