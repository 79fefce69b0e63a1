"""The pipeline: stages with one signature wrap each other, outermost first, and decide with returned values."""

from __future__ import annotations

import pytest

from bastion.proxy.pipeline import STAGE_ORDER, Call, CallNext, ClientInfo, PassThrough, check_order, compose
from bastion.types import Action, Decision, Era, Reply, RpcError

pytestmark = pytest.mark.anyio

REFUSED = RpcError(-32001, "refused by policy")


def a_call() -> Call:
    return Call(ClientInfo("cursor", "session-1"), "git", "tools/call", {"name": "push"})


class Recording:
    """A stage that notes when the call passes in and the reply passes out."""

    def __init__(self, name: str, trail: list[str]) -> None:
        self.name = name
        self.trail = trail

    async def __call__(self, call: Call, call_next: CallNext) -> Reply:
        self.trail.append(f"{self.name} in")
        reply = await call_next(call)
        self.trail.append(f"{self.name} out")
        return reply


class Refusing:
    name = "policy"

    async def __call__(self, call: Call, call_next: CallNext) -> Reply:
        call.decision = Decision(Action.DENY, "no-push", "pushing is off")
        return REFUSED


async def test_stages_run_outermost_first_and_the_reply_unwinds_through_them() -> None:
    trail: list[str] = []

    async def forward(call: Call) -> Reply:
        trail.append("forward")
        return {"content": []}

    chain = compose([Recording("identify", trail), Recording("policy", trail), Recording("audit", trail)], forward)
    assert await chain(a_call()) == {"content": []}
    assert trail == ["identify in", "policy in", "audit in", "forward", "audit out", "policy out", "identify out"]


async def test_a_stage_refuses_with_a_value_and_nothing_after_it_runs() -> None:
    trail: list[str] = []
    forwarded: list[Call] = []

    async def forward(call: Call) -> Reply:
        forwarded.append(call)
        return {"content": []}

    chain = compose([Recording("identify", trail), Refusing(), Recording("audit", trail)], forward)
    call = a_call()
    assert await chain(call) == REFUSED
    assert trail == ["identify in", "identify out"]
    assert forwarded == []
    assert call.decision is not None, "what it decided travels on the call"
    assert call.decision.action is Action.DENY


async def test_a_pass_through_stage_forwards_the_very_call_and_its_reply() -> None:
    seen: list[Call] = []

    async def forward(call: Call) -> Reply:
        seen.append(call)
        return {"content": [{"type": "text", "text": "ok"}]}

    stage = PassThrough("watch")
    call = a_call()
    assert stage.name == "watch"
    assert await compose([stage], forward)(call) == {"content": [{"type": "text", "text": "ok"}]}
    assert seen == [call]
    assert seen[0] is call


async def test_with_no_stages_the_chain_is_forward_itself() -> None:
    async def forward(call: Call) -> Reply:
        return {"server": call.server}

    assert await compose([], forward)(a_call()) == {"server": "git"}


def test_a_stage_that_is_not_in_the_order_is_refused() -> None:
    with pytest.raises(ValueError, match="must be among") as refused:
        check_order("stages", ["identify", "telemetry"], STAGE_ORDER)
    assert "telemetry" in str(refused.value)
    with pytest.raises(ValueError, match="must be among"):
        check_order("stages", ["forward"], STAGE_ORDER)


@pytest.mark.parametrize(
    "names",
    [["policy", "identify"], ["identify", "identify"], ["audit", "policy", "screen"], ["admit", "policy", "admit"]],
)
def test_a_repeated_or_out_of_order_stage_is_refused_by_check_and_compose(names: list[str]) -> None:
    with pytest.raises(ValueError, match="once each in the order"):
        check_order("stages", names, STAGE_ORDER)

    async def forward(call: Call) -> Reply:
        return {}

    with pytest.raises(ValueError, match="once each in the order"):
        compose([PassThrough(name) for name in names], forward)


def test_any_subset_of_the_stages_in_order_is_accepted() -> None:
    check_order("stages", list(STAGE_ORDER), STAGE_ORDER)
    check_order("stages", ["identify", "audit", "screen"], STAGE_ORDER)
    check_order("stages", [], STAGE_ORDER)
    check_order("sinks", ["b", "c"], ("a", "b", "c"))


def test_a_call_starts_undecided_with_nothing_known_beyond_its_target() -> None:
    call = a_call()
    assert (call.tool, call.request_id, call.server_version, call.definition, call.exposed) == (
        None,
        None,
        "",
        None,
        None,
    )
    assert (call.decision, call.screening, call.ask) == (None, (), None)
    assert call.client == ClientInfo("cursor", "session-1", Era.HANDSHAKE, "", "", None)
