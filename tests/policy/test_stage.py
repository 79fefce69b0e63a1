"""The policy stage in a pipeline: denials are recorded and never forwarded, rate limits and the
live kill switch apply, allowed calls carry their rule on to the audit stage."""

from __future__ import annotations

from typing import Any

import pytest

import bastion.policy.arguments as arguments_module
from bastion.clock import FakeClock
from bastion.codes import DENIED, INVALID_PARAMS
from bastion.config.load import parse_config
from bastion.policy.compile import compile_policy
from bastion.policy.leaves import Leaf
from bastion.policy.rate import RateLimiter
from bastion.policy.stage import Limits, PolicyStage
from bastion.proxy.pipeline import Call, ClientInfo
from bastion.types import Reply, RpcError

pytestmark = pytest.mark.anyio

ECHO = {"name": "echo", "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}}
WIPE = {"name": "wipe_disk", "inputSchema": {"type": "object", "properties": {}}}
CONFIG = """
[servers.s]
command = "x"
[servers.s.tools]
rate = { echo = "2/minute" }
[clients.greedy]
rate = "3/hour"
"""


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[Call, Reply]] = []

    async def refused(self, call: Call, reply: Reply) -> None:
        self.seen.append((call, reply))

    async def failed(self, call: Call, error: BaseException) -> None:
        raise AssertionError(f"the policy stage failed on {call.method}: {error!r}")

    async def listed(self, client: ClientInfo, server: str, kind: str, items: list[dict[str, Any]]) -> None:
        return None


def make(kills: frozenset[tuple[str, str]] = frozenset()) -> tuple[PolicyStage, Events, FakeClock, list[Call]]:
    config = parse_config(CONFIG)
    events = Events()
    clock = FakeClock()
    stage = PolicyStage(compile_policy(config), Limits(config), clock, events, lambda: kills)
    return stage, events, clock, []


def call(tool: dict[str, Any], arguments: dict[str, Any], client: str = "local") -> Call:
    name = str(tool["name"])
    params = {"name": name, "arguments": arguments}
    made = Call(ClientInfo(client, "s1"), "s", "tools/call", params, name, 1, definition=tool)
    made.exposed = name
    return made


def record(made: Call) -> dict[str, Any]:
    """The decision the call carries, as its audit entries record it."""
    assert made.decision is not None
    return made.decision.to_record()


async def run(stage: PolicyStage, forwarded: list[Call], made: Call) -> Reply:
    async def forward(c: Call) -> Reply:
        forwarded.append(c)
        return {"content": []}

    return await stage(made, forward)


async def test_an_allowed_call_is_forwarded_carrying_its_rule() -> None:
    stage, events, _clock, forwarded = make()
    made = call(ECHO, {"text": "hi"})
    assert await run(stage, forwarded, made) == {"content": []}
    assert forwarded == [made]
    assert record(made)["rule"] == "read"
    assert events.seen == []


async def test_a_hidden_tool_is_refused_as_unknown_and_recorded_with_its_real_rule() -> None:
    stage, events, _clock, forwarded = make()
    reply = await run(stage, forwarded, call(WIPE, {}))
    assert isinstance(reply, RpcError)
    assert (reply.code, reply.message) == (INVALID_PARAMS, "Unknown tool: wipe_disk")
    assert forwarded == []
    [(recorded, _)] = events.seen
    assert record(recorded)["rule"] == "capability.destructive"


async def test_an_argument_denial_says_why_and_is_recorded() -> None:
    stage, events, _clock, forwarded = make()
    reply = await run(stage, forwarded, call(ECHO, {"text": "hi", "extra": 1}))
    assert isinstance(reply, RpcError)
    assert reply.code == DENIED
    assert reply.data == {"rule": "arguments.undeclared"}
    assert "extra" in reply.message
    assert len(events.seen) == 1
    assert forwarded == []


async def test_a_tool_rate_limit_refuses_until_tokens_refill() -> None:
    stage, _events, clock, forwarded = make()
    replies = [await run(stage, forwarded, call(ECHO, {"text": str(i)})) for i in range(3)]
    assert [isinstance(r, RpcError) for r in replies] == [False, False, True]
    assert isinstance(replies[2], RpcError)
    assert replies[2].data == {"rule": "rate.tool"}
    clock.advance(30)
    assert not isinstance(await run(stage, forwarded, call(ECHO, {"text": "later"})), RpcError)


async def test_a_client_rate_limit_is_per_client() -> None:
    stage, _events, clock, forwarded = make()
    for i in range(3):
        clock.advance(60)
        assert not isinstance(await run(stage, forwarded, call(ECHO, {"text": str(i)}, "greedy")), RpcError)
    clock.advance(60)
    limited = await run(stage, forwarded, call(ECHO, {"text": "x"}, "greedy"))
    assert isinstance(limited, RpcError)
    assert limited.data == {"rule": "rate.client"}
    assert not isinstance(await run(stage, forwarded, call(ECHO, {"text": "x"}, "other")), RpcError)


async def test_a_live_kill_switch_hides_and_refuses_the_tool() -> None:
    stage, events, _clock, forwarded = make(frozenset({("s", "echo")}))
    assert stage.hide("local", "s", ECHO) == {
        "action": "deny",
        "rule": "kill",
        "reason": "'echo' on 's' is switched off (kill switch)",
        "risk": "read",
    }
    reply = await run(stage, forwarded, call(ECHO, {"text": "x"}))
    assert isinstance(reply, RpcError)
    assert reply.code == INVALID_PARAMS
    assert record(events.seen[0][0])["rule"] == "kill"


async def test_approval_without_a_channel_fails_closed() -> None:
    config = parse_config('[servers.s]\ncommand = "x"\n[servers.s.tools]\napprove = ["echo"]')
    events = Events()
    stage = PolicyStage(compile_policy(config), Limits(config), FakeClock(), events)
    reply = await run(stage, [], call(ECHO, {"text": "x"}))
    assert isinstance(reply, RpcError)
    assert reply.data == {"rule": "approval.unavailable"}


def test_the_rate_limiter_forgets_full_buckets_only() -> None:
    limiter = RateLimiter()
    for key in range(10_001):
        assert limiter.take((str(key),), (5, 1.0), 0.0)
    assert limiter.take(("busy",), (1, 60.0), 0.0)
    assert limiter.take(("trigger",), (5, 1.0), 10.0)
    assert not limiter.take(("busy",), (1, 60.0), 10.0)


async def test_a_call_is_walked_once_to_ask_for_dns_and_to_decide(monkeypatch: pytest.MonkeyPatch) -> None:
    walks: list[object] = []
    real = arguments_module.strings_of

    def counted(values: dict[str, object]) -> tuple[list[Leaf], bool]:
        walks.append(values)
        return real(values)

    monkeypatch.setattr(arguments_module, "strings_of", counted)
    config = parse_config('[servers.s]\ncommand = "x"\ngrants = ["network"]\n')
    asked: list[str] = []

    def resolve(host: str) -> list[str]:
        asked.append(host)
        return ["10.0.0.5"]

    stage = PolicyStage(compile_policy(config), Limits(config), FakeClock(), Events(), resolve=resolve)
    fetch = {"name": "fetch", "inputSchema": {"type": "object", "properties": {"url": {"type": "string"}}}}
    reply = await run(stage, [], call(fetch, {"url": "https://rebind.example/"}))
    assert isinstance(reply, RpcError)
    assert reply.data == {"rule": "urls.private_address"}  # the walk said DNS matters, and the answer was checked
    assert asked == ["rebind.example"]
    assert len(walks) == 1
    walks.clear()
    assert not isinstance(await run(stage, [], call(ECHO, {"text": "hi"})), RpcError)
    assert len(walks) == 1
