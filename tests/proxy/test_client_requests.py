"""Requests Bastion sends a client: each gets its own id, waits for its answer, and gives up in time."""

from __future__ import annotations

import anyio
import pytest

from bastion.codes import REQUEST_TIMEOUT
from bastion.proxy import client_requests
from bastion.proxy.client_requests import ClientRequests
from bastion.types import Reply, RpcError

pytestmark = pytest.mark.anyio


def test_each_request_gets_a_fresh_bastion_id_and_params_only_when_given() -> None:
    requests = ClientRequests()
    first = requests.start("roots/list", None)
    second = requests.start("sampling/createMessage", {"messages": []})
    assert first == {"jsonrpc": "2.0", "id": "bastion-1", "method": "roots/list"}
    assert second == {
        "jsonrpc": "2.0",
        "id": "bastion-2",
        "method": "sampling/createMessage",
        "params": {"messages": []},
    }


async def test_the_clients_result_is_the_answer_its_request_was_waiting_for() -> None:
    requests = ClientRequests()
    frame = requests.start("roots/list", None)
    answers: list[Reply] = []
    async with anyio.create_task_group() as tasks:

        async def wait() -> None:
            answers.append(await requests.answer(frame))

        tasks.start_soon(wait)
        await anyio.wait_all_tasks_blocked()
        assert requests.resolve({"jsonrpc": "2.0", "id": "bastion-1", "result": {"roots": []}})
    assert answers == [{"roots": []}]


async def test_an_error_answer_becomes_an_rpc_error_even_when_it_is_null() -> None:
    requests = ClientRequests()
    one, two = requests.start("a", None), requests.start("b", None)
    assert requests.resolve({"jsonrpc": "2.0", "id": one["id"], "error": {"code": -1, "message": "no"}})
    assert requests.resolve({"jsonrpc": "2.0", "id": two["id"], "error": None})
    assert await requests.answer(one) == RpcError(-1, "no")
    assert await requests.answer(two) == RpcError(-32603, "malformed error object")


def test_an_answer_nobody_asked_for_or_one_forgotten_is_not_taken() -> None:
    requests = ClientRequests()
    frame = requests.start("roots/list", None)
    assert not requests.resolve({"jsonrpc": "2.0", "id": 1, "result": {}})  # a client's own id
    assert not requests.resolve({"jsonrpc": "2.0", "id": "bastion-99", "result": {}})
    requests.forget(frame)
    assert not requests.resolve({"jsonrpc": "2.0", "id": frame["id"], "result": {}})


async def test_a_client_that_never_answers_gets_a_timeout_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_requests, "CLIENT_REQUEST_TIMEOUT", 0.01)
    requests = ClientRequests()
    reply = await requests.answer(requests.start("elicitation/create", {}))
    assert isinstance(reply, RpcError)
    assert reply.code == REQUEST_TIMEOUT
