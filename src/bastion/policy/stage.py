"""The policy stage: decide each tool call, record every denial, refuse what is not allowed.

The decision itself is `Policy.decide_call` (pure). Around it this stage does the few things
that are not values: DNS for URL arguments (in a worker thread), rate limits (state and a
clock), the live kill switches, and writing denials to the audit log. An allowed call carries
its decision to the audit stage in `call.notes["decision"]`, so the intent entry names the
rule that let it through.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import orjson

from bastion.clock import Clock
from bastion.config.model import BastionConfig, SqlConfig, parse_rate
from bastion.policy.arguments import needs_resolution
from bastion.policy.decide import Policy, profile_for, unknown_profile
from bastion.policy.profile import ToolProfile
from bastion.policy.rate import RateLimiter
from bastion.policy.refusal import Refusal
from bastion.policy.rules import SqlCheck
from bastion.policy.surfaces import SERVER_REQUESTS, SURFACES, server_request_decision, surface_refusal
from bastion.policy.urls import Resolver, system_resolver
from bastion.proxy.pipeline import Call, CallNext, SessionEvents
from bastion.transport.jsonrpc import DENIED, INVALID_PARAMS
from bastion.types import Action, Decision, Reply, RpcError

__all__ = ["Limits", "PolicyStage", "denial_reply", "evaluate", "lazy_sql_check", "load_sql_check"]

logger = logging.getLogger(__name__)

Kills = Callable[[], frozenset[tuple[str, str]]]
MAX_SQL_CHARS = 100_000
"""Parsing is superlinear in the worst case; a statement longer than this is refused unparsed."""


@functools.cache
def load_sql_check() -> SqlCheck:
    """The SQL constraint, imported on first use: sqlglot costs ~17 MB a gateway without SQL never pays."""
    from bastion.policy.sql import DEFAULT_DENIED_FUNCTIONS, SqlRules, check_sql

    # sqlglot warns on every statement it can only parse opaquely; the refusal already says so.
    logging.getLogger("sqlglot").setLevel(logging.ERROR)

    def check(value: object, config: SqlConfig) -> Refusal | None:
        if isinstance(value, str) and len(value) > MAX_SQL_CHARS:
            return Refusal("sql.too_long", f"the statement is {len(value)} characters; the limit is {MAX_SQL_CHARS}")
        rules = SqlRules(
            dialect=config.dialect,
            tables=config.tables,
            schemas=config.schemas,
            denied_functions=(*DEFAULT_DENIED_FUNCTIONS, *(name.lower() for name in config.deny_functions)),
        )
        return check_sql(value, rules)

    return check


def lazy_sql_check(value: object, config: SqlConfig) -> Refusal | None:
    """The SQL constraint, loading sqlglot only when a statement is met."""
    return load_sql_check()(value, config)


def evaluate(
    policy: Policy,
    client: str,
    server: str,
    tool: str,
    definition: Mapping[str, Any] | None,
    arguments: object,
    *,
    kills: frozenset[tuple[str, str]] = frozenset(),
    resolve: Resolver | None = None,
    profile: ToolProfile | None = None,
    ceiling: frozenset[str] | None = None,
) -> Decision:
    """The decision for one call: the one path both the gateway and `bastion policy explain` take.

    `definition` is the tool as its server listed it (None: not listed, so judged fail-closed);
    `resolve` is DNS for URL hosts (None: hosts as written only); `ceiling` is what the client's
    token carries (None: no limit)."""
    rules = policy.servers.get(server)
    if profile is None:
        profile = unknown_profile(tool) if rules is None else profile_for(rules, definition, tool)
    try:
        size = len(orjson.dumps(arguments)) if arguments is not None else 0
    except TypeError:
        size = 0
    return policy.decide_call(
        client,
        server,
        profile,
        arguments,
        kills=kills,
        size=size,
        sql_check=lazy_sql_check,
        resolve=resolve,
        ceiling=ceiling,
    )


class Limits:
    """The configured rate limits, looked up per call."""

    def __init__(self, config: BastionConfig) -> None:
        self._server = {name: parse_rate(s.rate) for name, s in config.servers.items() if s.rate}
        self._tool = {
            (name, tool): parse_rate(rate) for name, s in config.servers.items() for tool, rate in s.tools.rate.items()
        }
        self._client = {name: parse_rate(c.rate) for name, c in config.clients.items() if c.rate}
        self._limiter = RateLimiter()

    def exceeded(self, client: str, server: str, tool: str, now: float) -> Decision | None:
        checks = (
            ("rate.tool", ("tool", client, server, tool), self._tool.get((server, tool)), f"{server}.{tool}"),
            ("rate.server", ("server", client, server), self._server.get(server), f"server {server!r}"),
            ("rate.client", ("client", client), self._client.get(client), f"client {client!r}"),
        )
        for rule, key, limit, what in checks:
            if limit is not None and not self._limiter.take(key, limit, now):
                count, per = limit
                reason = f"the rate limit for {what} ({count} per {per:g} s) is used up; try again shortly"
                return Decision(Action.DENY, rule, reason)
        return None


class PolicyStage:
    name = "policy"

    def __init__(
        self,
        policy: Policy,
        limits: Limits,
        clock: Clock,
        events: SessionEvents,
        kills: Kills = frozenset,
        *,
        approval_gate: bool = False,
        resolve: Resolver = system_resolver,
    ) -> None:
        self.policy = policy
        self._resolve = resolve
        self._gate = approval_gate
        self._limits = limits
        self._clock = clock
        self._events = events
        self._kills = kills
        self._profiles: dict[tuple[str, str], tuple[Mapping[str, Any] | None, ToolProfile]] = {}

    def hide(
        self, client: str, server: str, definition: Mapping[str, Any], *, ceiling: frozenset[str] | None = None
    ) -> Mapping[str, str] | None:
        """Why a listed tool is not shown to this client (a tool-level denial), or None to show it."""
        name = definition.get("name")
        if not isinstance(name, str):
            return {"action": "deny", "rule": "tools.malformed", "reason": "the tool's name is not text"}
        profile = self._profile(server, name, definition)
        decision = self.policy.decide_tool(client, server, profile, self._kills(), ceiling=ceiling)
        return decision.to_record() if decision.action is Action.DENY else None

    async def __call__(self, call: Call, call_next: CallNext) -> Reply:
        if call.method in SURFACES:
            return await self._surface(call, call_next)
        if call.method in SERVER_REQUESTS:
            return await self._server_request(call, call_next)
        if call.method != "tools/call" or call.tool is None:
            return await call_next(call)
        decision = await self._decide(call)
        if decision.action is Action.ALLOW:
            limited = self._limits.exceeded(call.client.client_id, call.server, call.tool, self._clock.monotonic())
            decision = limited or decision
        elif decision.action is Action.APPROVE and not self._gate:
            reason = f"{decision.reason}, and no approval channel is configured, so it is refused"
            decision = Decision(Action.DENY, "approval.unavailable", reason, decision.risk)
        call.notes["decision"] = decision.to_record()
        if decision.action is not Action.DENY:
            return await call_next(call)  # an APPROVE goes on to the approval stage
        reply = denial_reply(decision, str(call.notes.get("exposed", call.tool)))
        await self._events.refused(call, reply)
        return reply

    async def _surface(self, call: Call, call_next: CallNext) -> Reply:
        """A resource read, prompt or completion: its URI and arguments checked like a tool call's."""
        rules = self.policy.servers.get(call.server)
        if rules is None:
            return await call_next(call)
        refusal = surface_refusal(rules, call.method, call.params, lazy_sql_check)
        if refusal is None:
            return await call_next(call)
        decision = Decision(Action.DENY, refusal.rule, refusal.reason)
        call.notes["decision"] = decision.to_record()
        reply = denial_reply(decision, str(call.tool))
        await self._events.refused(call, reply)
        return reply

    async def _server_request(self, call: Call, call_next: CallNext) -> Reply:
        """A server's sampling or elicitation request to the client: allowed, held for a person, or refused."""
        rules = self.policy.servers.get(call.server)
        decision = server_request_decision(rules, call.method, call.params) if rules is not None else None
        if decision is None:
            return await call_next(call)
        if decision.action is Action.APPROVE and not self._gate:
            reason = f"{decision.reason}, and no approval channel is configured, so it is refused"
            decision = Decision(Action.DENY, "approval.unavailable", reason)
        call.notes["decision"] = decision.to_record()
        if decision.action is not Action.DENY:
            return await call_next(call)
        reply = denial_reply(decision, call.method)
        await self._events.refused(call, reply)
        return reply

    async def _decide(self, call: Call) -> Decision:
        assert call.tool is not None
        profile = self._profile(call.server, call.tool, call.definition)
        arguments = (call.params or {}).get("arguments")
        decide = functools.partial(
            evaluate,
            self.policy,
            call.client.client_id,
            call.server,
            call.tool,
            call.definition,
            arguments,
            kills=self._kills(),
            profile=profile,
            ceiling=call.client.grants,
        )
        if needs_resolution(profile, arguments):
            # Name resolution blocks; it runs in a worker thread, and only for calls that carry a URL.
            return await anyio.to_thread.run_sync(functools.partial(decide, resolve=self._resolve))
        return decide()

    def _profile(self, server: str, tool: str, definition: Mapping[str, Any] | None) -> ToolProfile:
        cached = self._profiles.get((server, tool))
        if cached is not None and cached[0] is definition:
            return cached[1]
        rules = self.policy.servers.get(server)
        if rules is None:
            return unknown_profile(tool)
        profile = profile_for(rules, definition, tool)
        self._profiles[(server, tool)] = (definition, profile)
        return profile


def denial_reply(decision: Decision, exposed_name: str) -> RpcError:
    """The client's error: hidden tools look exactly like tools that do not exist (no hint they do)."""
    if decision.hidden:
        return RpcError(INVALID_PARAMS, f"Unknown tool: {exposed_name}")
    return RpcError(DENIED, f"Refused by policy ({decision.rule}): {decision.reason}", {"rule": decision.rule})
