"""A server's and a client's compiled rules, as values: what `compile.py` builds from
`bastion.toml` and every decision reads. No logic beyond small lookups."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bastion.config.model import ArgumentKinds, Capability, SqlConfig, ToolRules
from bastion.policy.commands import CommandRules
from bastion.policy.paths import PathRules, check_paths
from bastion.policy.profile import ToolProfile, profile_tool
from bastion.policy.refusal import Refusal
from bastion.policy.urls import UrlRules
from bastion.types import RiskClass

__all__ = ["OPEN_CLIENT", "ApprovalRule", "ClientPolicy", "ServerPolicy", "SqlCheck", "write_access"]

SqlCheck = Callable[[object, SqlConfig], Refusal | None]
"""The SQL constraint, handed in so that sqlglot loads only where SQL is configured or met."""

WRITE_ACCESS = frozenset({RiskClass.WRITE, RiskClass.DESTRUCTIVE, RiskClass.EXEC})


def write_access(risk: RiskClass) -> bool:
    """Whether a tool of this class uses its paths for writing (so they must be in writable roots)."""
    return risk in WRITE_ACCESS


@dataclass(frozen=True, slots=True)
class ApprovalRule:
    """`[[servers.NAME.approval.when]]` compiled: roots resolved, patterns compiled."""

    index: int
    tool: str | None
    argument: str
    outside: PathRules | None = None
    matching: re.Pattern[str] | None = None
    not_matching: re.Pattern[str] | None = None

    def applies(self, tool: str, arguments: Mapping[str, Any]) -> bool:
        if self.tool not in (None, tool) or self.argument not in arguments:
            return False
        value = arguments[self.argument]
        if self.outside is not None:
            return check_paths(value, self.outside, write=True) is not None
        text = value if isinstance(value, str) else str(value)
        if self.matching is not None:
            return self.matching.search(text) is not None
        assert self.not_matching is not None
        return self.not_matching.fullmatch(text) is None


@dataclass(frozen=True, slots=True)
class ServerPolicy:
    name: str
    capabilities: frozenset[Capability]
    tools: ToolRules
    kinds: ArgumentKinds
    paths: PathRules
    urls: UrlRules
    sql: SqlConfig
    commands: CommandRules
    strict_arguments: bool = True
    max_argument_bytes: int = 1024 * 1024
    approve_classes: frozenset[RiskClass] = frozenset()
    approve_when: tuple[ApprovalRule, ...] = ()
    outbound_secrets: str = "deny"
    """deny, approve or allow: what a call whose arguments carry a secret gets."""
    sampling: str = "allow"
    """allow, approve or deny: what the server's sampling requests to the client get."""

    def profile(self, definition: Mapping[str, Any]) -> ToolProfile:
        name = definition.get("name")
        override = self.tools.risk.get(name) if isinstance(name, str) else None
        configured_sql = self.sql != SqlConfig()
        return profile_tool(
            definition, self.kinds, override, sql_server=configured_sql, shell_server=self.commands.shell
        )


@dataclass(frozen=True, slots=True)
class ClientPolicy:
    servers: frozenset[str] | None = None
    grants: Mapping[str, frozenset[Capability]] | None = None
    deny_tools: frozenset[str] = frozenset()


OPEN_CLIENT = ClientPolicy()
