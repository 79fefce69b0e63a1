"""One error boundary per request in each front: a stage that raises fails that request alone
with -32603 and a `call.error` record, while the calls in flight and the session go on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import mcp_types as mt
import pytest
import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from tests.e2e.support import free_port, wait_for_port
from tests.proxy.fakes import FakeServer, fake_connector

from bastion.clock import SystemClock
from bastion.codes import INTERNAL_ERROR
from bastion.config.model import BastionConfig, GatewayConfig, HttpConfig, ServerConfig
from bastion.proxy.http_front import HttpFront
from bastion.proxy.pipeline import Call, CallNext, ClientInfo, Stage
from bastion.proxy.session import ClientPeer, Session
from bastion.proxy.stdio_front import StdioFront
from bastion.runtime_http import build_http_app
from bastion.transport.jsonrpc import Frame
from bastion.transport.memory import memory_pair
from bastion.types import Reply

pytestmark = pytest.mark.anyio


class Faulty:
    """A stage with a bug: it raises for `boom`, and holds `slow` calls until released."""

    name = "policy"  # in the policy stage's place

    def __init__(self) -> None:
        self.release = anyio.Event()
        self.both_held = anyio.Event()
        self.held = 0

    async def __call__(self, call: Call, call_next: CallNext) -> Reply:
        if call.tool == "boom":
            raise RuntimeError("a bug in a stage")
        if call.tool == "slow":
            self.held += 1
            if self.held == 2:
                self.both_held.set()
            await self.release.wait()
        return await call_next(call)


class Events:
    def __init__(self) -> None:
        self.failures: list[tuple[str, str | None, str]] = []

    async def refused(self, call: Call, reply: Reply) -> None:
        return None

    async def failed(self, call: Call, error: BaseException) -> None:
        self.failures.append((call.method, call.tool, type(error).__name__))

    async def listed(self, client: ClientInfo, server: str, kind: str, items: list[dict[str, Any]]) -> None:
        return None


def factory(stage: Stage, events: Events) -> Any:
    server = FakeServer("s", ["boom", "slow", "ok"])

    def make(client: ClientInfo, peer: ClientPeer, capabilities: dict[str, Any]) -> Session:
        return Session(
            {"s": ServerConfig(command="unused")},
            GatewayConfig(),
            client,
            peer,
            fake_connector({"s": server}),
            client_capabilities=capabilities,
            stages=[stage],
            events=events,
        )

    return make


def call(request_id: int, tool: str) -> Frame:
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": {"name": tool, "arguments": {}}}


async def test_the_stdio_front_fails_one_request_and_answers_the_others() -> None:
    stage, events = Faulty(), Events()
    client, gateway_side = memory_pair()
    front = StdioFront(gateway_side, factory(stage, events), instance="t")
    initialize = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "c", "version": "1"}}
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(front.serve)
        with anyio.fail_after(10):
            await client.send({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": initialize})
            assert "result" in await client.receive()  # pyright: ignore[reportOperatorIssue]
            await client.send(call(1, "slow"))
            await client.send(call(2, "slow"))
            await stage.both_held.wait()
            await client.send(call(3, "boom"))
            failed = await client.receive()
            assert isinstance(failed, dict)
            assert failed["id"] == 3
            assert failed["error"]["code"] == INTERNAL_ERROR
            stage.release.set()
            answered = {}
            for _ in range(2):
                frame = await client.receive()
                assert isinstance(frame, dict)
                answered[frame["id"]] = frame
            assert set(answered) == {1, 2}
            assert all("result" in frame for frame in answered.values())
            await client.send(call(4, "ok"))
            after = await client.receive()
            assert isinstance(after, dict)
            assert "result" in after
        assert events.failures == [("tools/call", "boom", "RuntimeError")]
        await client.aclose()
        await gateway_side.aclose()


@asynccontextmanager
async def http_gateway(stage: Faulty, events: Events) -> AsyncIterator[str]:
    port = free_port()
    config = BastionConfig(http=HttpConfig(listen=f"127.0.0.1:{port}", open=True))
    front = HttpFront(factory(stage, events), instance="t", instructions=None)
    app = build_http_app(config, front, None, SystemClock())
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    async with anyio.create_task_group() as hosting:
        await hosting.start(front.run)
        async with anyio.create_task_group() as serving:
            serving.start_soon(server.serve)
            await wait_for_port(port)
            yield f"http://127.0.0.1:{port}/mcp"
            server.should_exit = True  # uvicorn closes its sockets and returns
        hosting.cancel_scope.cancel()


async def test_the_http_front_fails_one_request_and_answers_the_others() -> None:
    stage, events = Faulty(), Events()
    async with http_gateway(stage, events) as url, httpx2.AsyncClient(timeout=30) as http:
        async with Client(streamable_http_client(url, http_client=http), mode="legacy") as client:
            results: dict[str, mt.CallToolResult] = {}

            async def slow(key: str) -> None:
                results[key] = await client.call_tool("slow", {})

            with anyio.fail_after(20):
                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(slow, "a")
                    tasks.start_soon(slow, "b")
                    await stage.both_held.wait()
                    with pytest.raises(MCPError) as caught:
                        await client.call_tool("boom", {})
                    assert caught.value.error.code == INTERNAL_ERROR
                    stage.release.set()
                assert set(results) == {"a", "b"}
                assert not any(result.is_error for result in results.values())
                assert not (await client.call_tool("ok", {})).is_error
    assert events.failures == [("tools/call", "boom", "RuntimeError")]
