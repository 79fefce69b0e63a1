"""Policy evaluation: a pure function from (policy, client, server, tool, arguments) to a Decision.

Tool level (also decides what a client is shown in `tools/list`), first match wins:

    server.unconfigured   the server is not named in config: nothing is allowed
    client.servers        the client's identity is limited to other servers
    tools.allow/deny      the server's tool lists; client deny_tools
    kill                  a tool switched off (config `tools.disabled` or `bastion policy kill`)
    scope.<class>         the client's OAuth token carries no scope for the tool's class above read
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

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bastion.config.model import Capability
from bastion.policy.arguments import Strings, argument_refusal
from bastion.policy.commands import NeedsApproval
from bastion.policy.profile import ToolProfile
from bastion.policy.rules import OPEN_CLIENT, ApprovalRule, ClientPolicy, ServerPolicy, SqlCheck, write_access
from bastion.policy.urls import Resolver
from bastion.types import Action, Decision, RiskClass

__all__ = [
    "ApprovalRule",
    "ClientPolicy",
    "Policy",
    "ServerPolicy",
    "SqlCheck",
    "profile_for",
    "unknown_profile",
    "write_access",
]


@dataclass(frozen=True, slots=True)
class Policy:
    servers: Mapping[str, ServerPolicy]
    clients: Mapping[str, ClientPolicy]

    def decide_tool(
        self,
        client: str,
        server: str,
        profile: ToolProfile,
        kills: frozenset[tuple[str, str]] = frozenset(),
        *,
        ceiling: frozenset[str] | None = None,
    ) -> Decision:
        """Whether `client` may see and call this tool at all (arguments aside).

        `ceiling` is what the client's credential carries (its OAuth scopes' capabilities): a
        tool above read needs its capability there as well as a grant (None: no ceiling)."""
        rules = self.servers.get(server)
        tool = profile.name
        risk = str(profile.risk)  # the class's value (a StrEnum), without the enum descriptor
        if rules is None:
            return _hidden("server.unconfigured", f"server {server!r} is not configured", risk)
        who = self.clients.get(client, OPEN_CLIENT)
        if who.servers is not None and server not in who.servers:
            return _hidden("client.servers", f"client {client!r} may use only {sorted(who.servers)}", risk)
        if tool in rules.tools.deny:
            return _hidden("tools.deny", f"{tool!r} is in servers.{server}.tools.deny", risk)
        if rules.tools.allow and tool not in rules.tools.allow:
            return _hidden("tools.allow", f"{tool!r} is not in servers.{server}.tools.allow", risk)
        if who.deny_tools and f"{server}.{tool}" in who.deny_tools:
            return _hidden("client.deny_tools", f"{server}.{tool} is in clients.{client}.deny_tools", risk)
        if tool in rules.tools.disabled or (server, tool) in kills:
            return _hidden("kill", f"{tool!r} on {server!r} is switched off (kill switch)", risk)
        if profile.risk is RiskClass.READ:
            return Decision(Action.ALLOW, "read", f"{tool!r} is classified read", risk)
        capability = _capability(profile.risk)
        if ceiling is not None and capability not in ceiling:
            reason = f"{tool!r} is classified {risk}; client {client!r}'s token has no scope granting {capability}"
            return _hidden(f"scope.{capability}", reason, risk)
        if tool in rules.tools.grant:
            return Decision(Action.ALLOW, "tools.grant", f"{tool!r} is in servers.{server}.tools.grant", risk)
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
        ceiling: frozenset[str] | None = None,
        strings: Strings | None = None,
    ) -> Decision:
        """The whole decision for one call; `size` is the arguments' encoded length in bytes.

        `resolve` (DNS) is the one input that is not a value; without it URL hosts are checked
        as written only. `strings` is the call's walk when the caller made it already, to ask
        whether DNS is needed (`read_strings`); without it the arguments are walked here.
        """
        decision = self.decide_tool(client, server, profile, kills, ceiling=ceiling)
        if decision.action is Action.DENY:
            return decision
        rules = self.servers[server]
        risk = decision.risk
        verdict = argument_refusal(rules, profile, arguments, size, sql_check, resolve, strings)
        if isinstance(verdict, NeedsApproval):
            return Decision(Action.APPROVE, verdict.rule, verdict.reason, risk)
        if verdict is not None:
            return Decision(Action.DENY, verdict.rule, verdict.reason, risk)
        return _approval(rules, profile, arguments) or decision


def _approval(rules: ServerPolicy, profile: ToolProfile, arguments: object) -> Decision | None:
    """Whether an allowed call must still wait for a person, and by which rule."""
    risk = str(profile.risk)
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
