"""The policy stage: decide each tool call, record every denial, refuse what is not allowed.

The decision itself is `Policy.decide_call` (pure). Around it this stage does the few things
that are not values: DNS for URL arguments (in a worker thread), rate limits (state and a
clock), the live kill switches, and writing denials to the audit log. An allowed call carries
its decision to the audit stage in `call.decision`, so the intent entry names the rule that
let it through.

Two rollout aids ride on the same decision (docs/operations.md). A server in monitor mode has its
refusals recorded with `"enforced": false` and the call let through (a kill switch still applies).
A candidate policy is decided beside the live one on every tool call, and its decision travels in
the same value (`Decision.candidate`, recorded as `"candidate": {...}`), so intent and denial entries
carry both.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import anyio
import orjson

from bastion.clock import Clock
from bastion.codes import DENIED, INVALID_PARAMS
from bastion.config.model import BastionConfig, SqlConfig, parse_rate
from bastion.policy.arguments import Strings, read_strings
from bastion.policy.decide import Policy, profile_for, unknown_profile
from bastion.policy.profile import ToolProfile
from bastion.policy.rate import RateLimiter
from bastion.policy.refusal import Refusal
from bastion.policy.rules import SqlCheck
from bastion.policy.surfaces import SERVER_REQUESTS, SURFACES, server_request_decision, surface_refusal
from bastion.policy.urls import Resolver, system_resolver
from bastion.proxy.pipeline import Call, CallNext, SessionEvents
from bastion.types import Action, Decision, Reply, RpcError

__all__ = ["Candidate", "Limits", "PolicyStage", "denial_reply", "evaluate", "lazy_sql_check", "load_sql_check"]

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
    strings: Strings | None = None,
) -> Decision:
    """The decision for one call: the one path both the gateway and `bastion policy explain` take.

    `definition` is the tool as its server listed it (None: not listed, so judged fail-closed);
    `resolve` is DNS for URL hosts (None: hosts as written only); `ceiling` is what the client's
    token carries (None: no limit); `strings` is the arguments' walk when already made (`read_strings`)."""
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
        strings=strings,
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
        """The first limit used up, tool before server before client; the reason is written only then."""
        limit = self._tool.get((server, tool))
        if limit is not None and not self._limiter.take(("tool", client, server, tool), limit, now):
            return _used_up("rate.tool", limit, f"{server}.{tool}")
        limit = self._server.get(server)
        if limit is not None and not self._limiter.take(("server", client, server), limit, now):
            return _used_up("rate.server", limit, f"server {server!r}")
        limit = self._client.get(client)
        if limit is not None and not self._limiter.take(("client", client), limit, now):
            return _used_up("rate.client", limit, f"client {client!r}")
        return None


def _used_up(rule: str, limit: tuple[int, float], what: str) -> Decision:
    count, per = limit
    return Decision(
        Action.DENY, rule, f"the rate limit for {what} ({count} per {per:g} s) is used up; try again shortly"
    )


@dataclass(frozen=True, slots=True)
class Candidate:
    """A policy decided beside the live one and recorded, never applied (`[policy] candidate`)."""

    policy: Policy
    limits: Limits


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
        monitor: frozenset[str] = frozenset(),
        candidate: Candidate | None = None,
    ) -> None:
        self.policy = policy
        self.monitor = monitor
        """Servers in monitor mode: their refusals are recorded, not applied."""
        self.candidate = candidate
        self._resolve = resolve
        self._gate = approval_gate
        self._limits = limits
        self._clock = clock
        self._events = events
        self._kills = kills
        self._profiles: dict[tuple[str, str], tuple[Mapping[str, Any] | None, ToolProfile]] = {}
        self._candidate_profiles: dict[tuple[str, str], tuple[Mapping[str, Any] | None, ToolProfile]] = {}
        # A decision depends only on the server's rules and the client's: where the candidate's equal the
        # live ones, its decision is the live decision, and is not computed twice.
        other = candidate.policy if candidate is not None else policy
        self._same_servers = frozenset(
            name for name, rules in policy.servers.items() if other.servers.get(name) == rules
        )
        self._changed_clients = frozenset(
            name for name in {*policy.clients, *other.clients} if policy.clients.get(name) != other.clients.get(name)
        )

    def hide(
        self, client: str, server: str, definition: Mapping[str, Any], *, ceiling: frozenset[str] | None = None
    ) -> Mapping[str, str] | None:
        """Why a listed tool is not shown to this client (a tool-level denial), or None to show it."""
        name = definition.get("name")
        if not isinstance(name, str):
            return {"action": "deny", "rule": "tools.malformed", "reason": "the tool's name is not text"}
        profile = self._profile(self.policy, self._profiles, server, name, definition)
        decision = self.policy.decide_tool(client, server, profile, self._kills(), ceiling=ceiling)
        if decision.action is not Action.DENY or self._monitored(server, decision):
            return None  # in monitor mode a tool that would be hidden is listed; a call to it is recorded
        return decision.to_record()

    async def __call__(self, call: Call, call_next: CallNext) -> Reply:
        if call.method in SURFACES:
            return await self._surface(call, call_next)
        if call.method in SERVER_REQUESTS:
            return await self._server_request(call, call_next)
        if call.method != "tools/call" or call.tool is None:
            return await call_next(call)
        live, shadow = await self._decide(call)
        decision = self._applied(live, self._limits, call)
        if shadow is not None and self.candidate is not None:
            decision = replace(decision, candidate=self._applied(shadow, self.candidate.limits, call))
        if self._monitored(call.server, decision):
            # Recorded as decided; neither refused nor held for a person.
            call.decision = replace(decision, enforced=False)
            return await call_next(call)
        call.decision = decision
        if decision.action is not Action.DENY:
            return await call_next(call)  # an APPROVE goes on to the approval stage
        reply = denial_reply(decision, call.exposed if call.exposed is not None else call.tool)
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
        if self._monitored(call.server, decision):
            call.decision = replace(decision, enforced=False)
            return await call_next(call)
        call.decision = decision
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
        if self._monitored(call.server, decision):
            call.decision = replace(decision, enforced=False)
            return await call_next(call)
        call.decision = decision
        if decision.action is not Action.DENY:
            return await call_next(call)
        reply = denial_reply(decision, call.method)
        await self._events.refused(call, reply)
        return reply

    def _monitored(self, server: str, decision: Decision) -> bool:
        """Whether a refusal or approval wait is only recorded: a monitored server, and not a kill switch
        (an operator's explicit stop applies in every mode)."""
        return decision.action is not Action.ALLOW and server in self.monitor and decision.rule != "kill"

    def _applied(self, decision: Decision, limits: Limits, call: Call) -> Decision:
        """The decision with what is not a pure value applied: rate limits, and no approval channel."""
        assert call.tool is not None
        if decision.action is Action.ALLOW:
            limited = limits.exceeded(call.client.client_id, call.server, call.tool, self._clock.monotonic())
            return limited or decision
        if decision.action is Action.APPROVE and not self._gate:
            reason = f"{decision.reason}, and no approval channel is configured, so it is refused"
            return Decision(Action.DENY, "approval.unavailable", reason, decision.risk)
        return decision

    async def _decide(self, call: Call) -> tuple[Decision, Decision | None]:
        """The live policy's decision, and the candidate's (None without one)."""
        assert call.tool is not None
        arguments = (call.params or {}).get("arguments")
        profile = self._profile(self.policy, self._profiles, call.server, call.tool, call.definition)
        shadow: ToolProfile | None = None
        unchanged = call.server in self._same_servers and call.client.client_id not in self._changed_clients
        if self.candidate is not None and not unchanged:
            shadow = self._profile(
                self.candidate.policy, self._candidate_profiles, call.server, call.tool, call.definition
            )
        # One walk of the arguments per policy: it says whether DNS matters, then it is judged.
        strings = read_strings(profile, arguments)
        shadowed = read_strings(shadow, arguments) if shadow is not None else None
        if strings.needs_resolution or (shadowed is not None and shadowed.needs_resolution):
            # Name resolution blocks; it runs in a worker thread, and only for calls that carry a URL.
            return await anyio.to_thread.run_sync(
                functools.partial(
                    self._judge, call, call.tool, arguments, profile, shadow, self._resolve, strings, shadowed
                )
            )
        return self._judge(call, call.tool, arguments, profile, shadow, None, strings, shadowed)

    def _judge(
        self,
        call: Call,
        tool: str,
        arguments: object,
        profile: ToolProfile,
        shadow: ToolProfile | None,
        resolve: Resolver | None,
        strings: Strings | None = None,
        shadowed: Strings | None = None,
    ) -> tuple[Decision, Decision | None]:
        kills = self._kills()
        client, server, definition, ceiling = call.client.client_id, call.server, call.definition, call.client.grants
        live = evaluate(
            self.policy, client, server, tool, definition, arguments,
            kills=kills, profile=profile, ceiling=ceiling, resolve=resolve, strings=strings,
        )  # fmt: skip
        if self.candidate is None:
            return live, None
        if shadow is None:
            return live, live  # the candidate's rules for this server and client are the live ones
        candidate = evaluate(
            self.candidate.policy, client, server, tool, definition, arguments,
            kills=kills, profile=shadow, ceiling=ceiling, resolve=resolve, strings=shadowed,
        )  # fmt: skip
        return live, candidate

    @staticmethod
    def _profile(
        policy: Policy,
        cache: dict[tuple[str, str], tuple[Mapping[str, Any] | None, ToolProfile]],
        server: str,
        tool: str,
        definition: Mapping[str, Any] | None,
    ) -> ToolProfile:
        cached = cache.get((server, tool))
        if cached is not None and cached[0] is definition:
            return cached[1]
        rules = policy.servers.get(server)
        if rules is None:
            return unknown_profile(tool)
        profile = profile_for(rules, definition, tool)
        cache[(server, tool)] = (definition, profile)
        return profile


def denial_reply(decision: Decision, exposed_name: str) -> RpcError:
    """The client's error: hidden tools look exactly like tools that do not exist (no hint they do)."""
    if decision.hidden:
        return RpcError(INVALID_PARAMS, f"Unknown tool: {exposed_name}")
    return RpcError(DENIED, f"Refused by policy ({decision.rule}): {decision.reason}", {"rule": decision.rule})
