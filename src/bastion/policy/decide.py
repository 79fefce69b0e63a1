"""Policy evaluation: a pure function from (policy, client, server, tool, arguments) to a Decision.

Tool level (also decides what a client is shown in `tools/list`), first match wins:

    server.unconfigured   the server is not named in config: nothing is allowed
    client.servers        the client's identity is limited to other servers
    tools.allow/deny      the server's tool lists; client deny_tools
    kill                  a tool switched off (config `tools.disabled` or `bastion policy kill`)
    capability.<class>    the tool's risk class above read is not granted to this client

Call level, for a tool that passed the above:

    arguments.*           not an object, too large, too deep, not declared by the tool's schema,
                          or against it (`arguments.schema`; `schema.py`)
    paths.* urls.* sql.* commands.*   the argument constraints, on every string at any depth:
                          by the name it sits under, else by its content (`leaves.py`); the
                          schema the server declares never decides that a string goes unchecked
    tools.approve         the call waits for a person (the approval gate)

Anything that passes is allowed, and the decision says which grant allowed it. Every
tool-level denial is `hidden`: the client sees the same error as for a tool that does not
exist. Call-level denials say what was refused and why.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bastion.config.model import ArgumentKinds, Capability, SqlConfig, ToolRules
from bastion.inventory.risk import RiskClass
from bastion.policy.commands import CommandRules, check_command
from bastion.policy.leaves import MAX_DEPTH, Leaf, as_url, content_kind, string_leaves
from bastion.policy.paths import PathRules, check_path, check_paths
from bastion.policy.profile import ArgKind, ToolProfile, profile_tool, recognise
from bastion.policy.refusal import Refusal
from bastion.policy.urls import Resolver, UrlRules, check_url, check_url_resolved
from bastion.types import Action, Decision

__all__ = [
    "ApprovalRule",
    "ClientPolicy",
    "Policy",
    "ServerPolicy",
    "SqlCheck",
    "argument_refusal",
    "leaf_kind",
    "needs_resolution",
    "profile_for",
    "unknown_profile",
    "write_access",
]

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
    sampling: str = "allow"
    """allow, approve or deny: what the server's sampling requests to the client get."""

    def profile(self, definition: Mapping[str, Any]) -> ToolProfile:
        name = definition.get("name")
        override = self.tools.risk.get(name) if isinstance(name, str) else None
        configured_sql = self.sql != SqlConfig()
        return profile_tool(definition, self.kinds, override, sql_server=configured_sql)


@dataclass(frozen=True, slots=True)
class ClientPolicy:
    servers: frozenset[str] | None = None
    grants: Mapping[str, frozenset[Capability]] | None = None
    deny_tools: frozenset[str] = frozenset()


OPEN_CLIENT = ClientPolicy()


@dataclass(frozen=True, slots=True)
class Policy:
    servers: Mapping[str, ServerPolicy]
    clients: Mapping[str, ClientPolicy]

    def decide_tool(
        self, client: str, server: str, profile: ToolProfile, kills: frozenset[tuple[str, str]] = frozenset()
    ) -> Decision:
        """Whether `client` may see and call this tool at all (arguments aside)."""
        rules = self.servers.get(server)
        tool = profile.name
        risk = profile.risk.value
        if rules is None:
            return _hidden("server.unconfigured", f"server {server!r} is not configured", risk)
        who = self.clients.get(client, OPEN_CLIENT)
        if who.servers is not None and server not in who.servers:
            return _hidden("client.servers", f"client {client!r} may use only {sorted(who.servers)}", risk)
        if tool in rules.tools.deny:
            return _hidden("tools.deny", f"{tool!r} is in servers.{server}.tools.deny", risk)
        if rules.tools.allow and tool not in rules.tools.allow:
            return _hidden("tools.allow", f"{tool!r} is not in servers.{server}.tools.allow", risk)
        if f"{server}.{tool}" in who.deny_tools:
            return _hidden("client.deny_tools", f"{server}.{tool} is in clients.{client}.deny_tools", risk)
        if tool in rules.tools.disabled or (server, tool) in kills:
            return _hidden("kill", f"{tool!r} on {server!r} is switched off (kill switch)", risk)
        if profile.risk is RiskClass.READ:
            return Decision(Action.ALLOW, "read", f"{tool!r} is classified read", risk)
        if tool in rules.tools.grant:
            return Decision(Action.ALLOW, "tools.grant", f"{tool!r} is in servers.{server}.tools.grant", risk)
        capability = _capability(profile.risk)
        if capability in rules.capabilities:
            return Decision(Action.ALLOW, f"grant.{capability}", f"server {server!r} grants {capability}", risk)
        if who.grants is not None and capability in who.grants.get(server, frozenset()):
            reason = f"client {client!r} is granted {capability} on {server!r}"
            return Decision(Action.ALLOW, f"client.grant.{capability}", reason, risk)
        reason = (
            f"{tool!r} is classified {risk} ({', '.join(profile.risk_reasons[:2])}) and server {server!r} "
            f'does not grant {capability}; add grants = ["{capability}"] or tools.grant = ["{tool}"] to [servers.{server}]'
        )
        return _hidden(f"capability.{capability}", reason, risk)

    def decide_call(
        self,
        client: str,
        server: str,
        profile: ToolProfile,
        arguments: object,
        *,
        kills: frozenset[tuple[str, str]] = frozenset(),
        size: int = 0,
        sql_check: SqlCheck | None = None,
        resolve: Resolver | None = None,
    ) -> Decision:
        """The whole decision for one call; `size` is the arguments' encoded length in bytes.

        `resolve` (DNS) is the one input that is not a value; without it URL hosts are checked
        as written only.
        """
        decision = self.decide_tool(client, server, profile, kills)
        if decision.action is Action.DENY:
            return decision
        rules = self.servers[server]
        risk = decision.risk
        refusal = argument_refusal(rules, profile, arguments, size, sql_check, resolve)
        if refusal is not None:
            return Decision(Action.DENY, refusal.rule, refusal.reason, risk)
        return _approval(rules, profile, arguments) or decision


def argument_refusal(
    rules: ServerPolicy,
    profile: ToolProfile,
    arguments: object,
    size: int,
    sql_check: SqlCheck | None,
    resolve: Resolver | None,
) -> Refusal | None:
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        return Refusal("arguments.not_object", "the arguments are not a JSON object")
    if size > rules.max_argument_bytes:
        return Refusal(
            "arguments.size", f"the arguments are {size} bytes; the limit is {rules.max_argument_bytes} bytes"
        )
    values: dict[str, Any] = {str(key): value for key, value in arguments.items()}  # pyright: ignore[reportUnknownVariableType]
    if rules.strict_arguments and not profile.open_schema:
        undeclared = sorted(name for name in values if profile.declared is None or name not in profile.declared)
        if undeclared:
            names = ", ".join(repr(name[:40]) for name in undeclared[:5])
            return Refusal("arguments.undeclared", f"{profile.name!r} does not declare the argument(s) {names}")
    if profile.schema is not None:
        refusal = profile.schema.refusal(values)
        if refusal is not None:
            return refusal
    argv = next((values[a] for a, k in profile.kinds.items() if k is ArgKind.ARGV and a in values), None)
    write = write_access(profile.risk)
    for leaf in string_leaves(values):
        if leaf is None:
            return Refusal("arguments.too_deep", f"the arguments nest deeper than {MAX_DEPTH} levels")
        if leaf.argument in profile.plain:
            continue
        refusal = _leaf_refusal(rules, profile, leaf, argv, write, sql_check, resolve)
        if refusal is not None:
            where = leaf.argument if leaf.key == leaf.argument else f"{leaf.argument}…{leaf.key}"
            return Refusal(refusal.rule, f"argument {where!r}: {refusal.reason}")
    return None


def leaf_kind(profile: ToolProfile, leaf: Leaf) -> tuple[ArgKind | None, bool]:
    """What a string is checked as, and whether its content (not a name) said so.

    A name the server declared or config named decides first; an undeclared or nested key is
    recognised by its name too; otherwise the content decides. Commands and SQL keep their own
    parsers; every other string that looks like a path or URL is checked as one."""
    if leaf.key == leaf.argument and leaf.key in profile.kinds:
        named: ArgKind | None = profile.kinds[leaf.key]
    else:
        named = recognise(leaf.key, None, speaks_sql=profile.speaks_sql)
    if named is not None and named is not ArgKind.ARGV:
        return named, False
    return content_kind(leaf.value), True


def needs_resolution(profile: ToolProfile, arguments: object) -> bool:
    """Whether deciding this call checks a URL, so DNS answers matter (the caller resolves in a worker thread)."""
    if not isinstance(arguments, dict):
        return False
    values: dict[str, object] = {str(k): v for k, v in arguments.items()}  # pyright: ignore[reportUnknownVariableType]
    return any(
        leaf is not None and leaf.argument not in profile.plain and leaf_kind(profile, leaf)[0] is ArgKind.URL
        for leaf in string_leaves(values)
    )


def _leaf_refusal(
    rules: ServerPolicy,
    profile: ToolProfile,
    leaf: Leaf,
    argv: object,
    write: bool,
    sql_check: SqlCheck | None,
    resolve: Resolver | None,
) -> Refusal | None:
    kind, by_content = leaf_kind(profile, leaf)
    if kind is ArgKind.PATH:
        return check_path(leaf.value, rules.paths, write=write)
    if kind is ArgKind.URL:
        url = as_url(leaf.value) if by_content else leaf.value
        return check_url(url, rules.urls) if resolve is None else check_url_resolved(url, rules.urls, resolve)
    if kind is ArgKind.SQL:
        return sql_check(leaf.value, rules.sql) if sql_check is not None else _no_sql_check()
    if kind is ArgKind.COMMAND:
        # A top-level command is judged with its argv list; one nested elsewhere on its own.
        return check_command(leaf.value, argv if leaf.key == leaf.argument else None, rules.commands)
    return None


def _approval(rules: ServerPolicy, profile: ToolProfile, arguments: object) -> Decision | None:
    """Whether an allowed call must still wait for a person, and by which rule."""
    risk = profile.risk.value
    tool = profile.name
    if tool in rules.tools.approve:
        return Decision(Action.APPROVE, "tools.approve", f"{tool!r} is in servers.{rules.name}.tools.approve", risk)
    if profile.risk in rules.approve_classes:
        reason = f"every {risk} tool of {rules.name!r} needs approval ({tool!r} is classified {risk})"
        return Decision(Action.APPROVE, f"approval.class.{risk}", reason, risk)
    values: Mapping[str, Any] = arguments if isinstance(arguments, dict) else {}  # pyright: ignore[reportUnknownVariableType]
    for rule in rules.approve_when:
        if rule.applies(tool, values):
            reason = f"argument {rule.argument!r} meets servers.{rules.name}.approval.when[{rule.index}]"
            return Decision(Action.APPROVE, f"approval.when[{rule.index}]", reason, risk)
    return None


def _no_sql_check() -> Refusal:
    return Refusal("sql.unavailable", "the SQL checker is not loaded, so the statement cannot be checked")


CAPABILITY_OF: Mapping[RiskClass, Capability] = {
    RiskClass.WRITE: "write",
    RiskClass.NETWORK: "network",
    RiskClass.DESTRUCTIVE: "destructive",
    RiskClass.EXEC: "exec",
}


def _capability(risk: RiskClass) -> Capability:
    return CAPABILITY_OF[risk]


def _hidden(rule: str, reason: str, risk: str) -> Decision:
    return Decision(Action.DENY, rule, reason, risk, hidden=True)


def unknown_profile(tool: str) -> ToolProfile:
    """The profile of a tool on no configured server: write, nothing declared (fail closed)."""
    return ToolProfile(tool, RiskClass.WRITE, ("the server is not configured",), None, False, {})


def profile_for(rules: ServerPolicy, definition: Mapping[str, Any] | None, tool: str) -> ToolProfile:
    """A profile for a tool the server listed, or a fail-closed one for a tool it did not."""
    return rules.profile(definition if definition is not None else {"name": tool})
