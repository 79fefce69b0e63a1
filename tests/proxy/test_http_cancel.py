"""A handshake-era client's `notifications/cancelled` over HTTP stops that request alone: it is answered
"Request cancelled" (-32800), the client's other requests are answered as usual, and the session goes on."""

from __future__ import annotations

from typing import Any

import anyio
import httpx2
import orjson
import pytest
from tests.proxy.test_error_boundary import Events, Faulty, call, http_gateway

pytestmark = pytest.mark.anyio

INIT: dict[str, Any] = {
    "protocolVersion": "2025-11-25",
    "capabilities": {},
    "clientInfo": {"name": "c", "version": "1"},
}


async def test_a_cancelled_request_is_answered_cancelled_and_the_others_go_on() -> None:
    stage = Faulty()
    async with http_gateway(stage, Events()) as url, httpx2.AsyncClient(timeout=30) as http:
        headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}

        async def post(frame: dict[str, Any]) -> httpx2.Response:
            return await http.post(url, content=orjson.dumps(frame), headers=headers)

        opened = await post({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": INIT})
        headers |= {"mcp-session-id": opened.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
        assert (await post({"jsonrpc": "2.0", "method": "notifications/initialized"})).status_code == 202
        answers: dict[int, Any] = {}
        first_answered = anyio.Event()

        async def ask(request_id: int, tool: str) -> None:
            answers[request_id] = (await post(call(request_id, tool))).json()
            if request_id == 1:
                first_answered.set()

        with anyio.fail_after(20):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(ask, 1, "slow")
                tasks.start_soon(ask, 2, "slow")
                await stage.both_held.wait()
                cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}}
                assert (await post(cancel)).status_code == 202
                await first_answered.wait()  # answered while request 2 is still held
                assert 2 not in answers
                stage.release.set()
            await ask(3, "ok")
    assert answers[1]["error"]["code"] == -32800
    assert "result" in answers[2]
    assert "result" in answers[3]
