"""A handshake-era server's question asked mid-call becomes an input-required result for a 2026-07-28
client, and the client's retry carries the answer back to the waiting server."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from bastion.codes import INVALID_PARAMS
from bastion.proxy.bridge import STATE_PREFIX, ParkedCalls
from bastion.types import Reply, RpcError

pytestmark = pytest.mark.anyio


async def test_a_call_without_questions_returns_the_servers_reply() -> None:
    parked = ParkedCalls()

    async def send(params: dict[str, Any] | None) -> Reply:
        return {"content": [], "echo": params}

    async with anyio.create_task_group() as tasks:
        reply = await parked.call(tasks, "srv", {"name": "t"}, send)
        assert reply == {"content": [], "echo": {"name": "t"}}


async def test_a_question_parks_the_call_and_the_retry_answers_it() -> None:
    parked = ParkedCalls()

    async def send(params: dict[str, Any] | None) -> Reply:
        answer = await parked.ask("srv", "sampling/createMessage", {"messages": ["hi"]})
        return {"content": answer}

    async with anyio.create_task_group() as tasks:
        first = await parked.call(tasks, "srv", {"name": "t"}, send)
        assert isinstance(first, dict)
        assert first["resultType"] == "input_required"
        [(key, request)] = first["inputRequests"].items()
        assert request == {"method": "sampling/createMessage", "params": {"messages": ["hi"]}}
        state = first["requestState"]
        assert state.startswith(STATE_PREFIX)
        retry = {"name": "t", "requestState": state, "inputResponses": {key: {"text": "42"}}}
        assert parked.is_retry(retry)
        second = await parked.call(tasks, "srv", retry, send)
        assert second == {"content": {"text": "42"}}


async def test_a_state_is_good_for_one_retry_only() -> None:
    parked = ParkedCalls()

    async def send(params: dict[str, Any] | None) -> Reply:
        return {"content": await parked.ask("srv", "roots/list", None)}

    async with anyio.create_task_group() as tasks:
        first = await parked.call(tasks, "srv", None, send)
        assert isinstance(first, dict)
        retry: dict[str, Any] = {"requestState": first["requestState"], "inputResponses": {"q1": {"roots": []}}}
        assert await parked.call(tasks, "srv", retry, send) == {"content": {"roots": []}}
        again = await parked.call(tasks, "srv", retry, send)
        assert isinstance(again, RpcError)
        assert again.code == INVALID_PARAMS


async def test_an_unknown_state_is_invalid_params() -> None:
    parked = ParkedCalls()

    async def send(params: dict[str, Any] | None) -> Reply:
        raise AssertionError("a retry with an unknown state must not reach the server")

    async with anyio.create_task_group() as tasks:
        reply = await parked.call(tasks, "srv", {"requestState": STATE_PREFIX + "forged"}, send)
        assert isinstance(reply, RpcError)
        assert reply.code == INVALID_PARAMS


async def test_a_question_outside_any_parked_call_has_nowhere_to_go() -> None:
    assert await ParkedCalls().ask("srv", "roots/list", None) is None


def test_only_a_bastion_state_marks_a_retry() -> None:
    parked = ParkedCalls()
    assert not parked.is_retry(None)
    assert not parked.is_retry({"requestState": "someone-elses"})
    assert parked.is_retry({"requestState": STATE_PREFIX + "x"})
