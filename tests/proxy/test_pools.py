"""Pooled server processes over in-memory transports: who shares, limits, release, restarts."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncGenerator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio
import pytest
from tests.proxy.fakes import FakeServer, RecordingClient, fake_connector

from bastion.codes import METHOD_NOT_FOUND
from bastion.config.model import GatewayConfig, Isolation, PoolConfig, ServerConfig
from bastion.errors import GatewayFull
from bastion.proxy.pipeline import ClientInfo
from bastion.proxy.pools import Pools, gateway_full
from bastion.proxy.session import Session
from bastion.proxy.supervisor import ServerState, StateChange, StateListener
from bastion.transport.jsonrpc import Frame
from bastion.transport.lines import EndOfStream
from bastion.transport.link import Connector, ServerLink
from bastion.transport.memory import MemoryChannel, memory_pair
from bastion.types import RpcError

pytestmark = pytest.mark.anyio


class Counted:
    """A connector that counts the connections (server processes) open at once, and every one opened."""

    def __init__(self, server: FakeServer | AskingServer) -> None:
        self.open = 0
        self.opened = 0
        self.changed = anyio.Event()
        self._inner = fake_connector({server.name: server}) if isinstance(server, FakeServer) else fake_asking(server)

    def connector(self) -> Connector:
        @asynccontextmanager
        async def connect(name: str, config: ServerConfig) -> AsyncGenerator[ServerLink]:
            self._moved(+1)
            try:
                async with self._inner(name, config) as link:
                    yield link
            finally:
                self._moved(-1)

        return connect

    def _moved(self, step: int) -> None:
        self.open += step
        self.opened += max(step, 0)
        self.changed.set()
        self.changed = anyio.Event()

    async def until(self, count: int) -> None:
        with anyio.fail_after(5):
            while self.open != count:
                await self.changed.wait()


def server(isolation: Isolation, **pool: float) -> dict[str, ServerConfig]:
    return {"s": ServerConfig(command="unused", isolation=isolation, pool=PoolConfig.model_validate(pool))}


@asynccontextmanager
async def gateway(
    configs: dict[str, ServerConfig], counted: Counted, on_state: StateListener = lambda _change: None
) -> AsyncGenerator[Pools]:
    pools = Pools(configs, counted.connector(), on_state=on_state, backoff_max=1.0)
    async with anyio.create_task_group() as tasks:
        await tasks.start(pools.run)
        yield pools
        tasks.cancel_scope.cancel()


def session_of(client: str, pools: Pools, configs: dict[str, ServerConfig], counted: Counted) -> Session:
    return Session(
        configs,
        GatewayConfig(),
        ClientInfo(client, f"{client}-session"),
        RecordingClient(),
        counted.connector(),
        client_capabilities={},
        pools=pools,
    )


@asynccontextmanager
async def sessions(*sessions: Session) -> AsyncGenerator[list[Session]]:
    """Run sessions until the block ends (each ends as an MCP session ends: cancelled)."""
    async with anyio.create_task_group() as tasks:
        with anyio.fail_after(5):
            for session in sessions:
                await tasks.start(session.run)
        yield list(sessions)
        tasks.cancel_scope.cancel()


def running(*items: Session) -> AbstractAsyncContextManager[list[Session]]:
    return sessions(*items)


async def call(session: Session, request_id: int = 1) -> str:
    reply = await session.handle("tools/call", {"name": "t", "arguments": {}}, request_id)
    assert not isinstance(reply, RpcError), reply
    return str(reply["content"][0]["text"])


async def test_sessions_of_one_client_share_its_process_and_another_client_gets_its_own() -> None:
    counted, configs = Counted(FakeServer("s", ["t"])), server("client")
    async with gateway(configs, counted) as pools:
        a1, a2, b = (session_of(name, pools, configs, counted) for name in ("alice", "alice", "bob"))
        async with running(a1, a2, b):
            for session in (a1, a2, b):
                await call(session)
            assert counted.open == 2
            assert pools.processes() == {"s": 2}


async def test_a_shared_pool_fills_its_processes_then_refuses_with_gateway_full() -> None:
    counted, configs = Counted(FakeServer("s", ["t"])), server("shared", max_processes=2, sessions_per_process=2)
    async with gateway(configs, counted) as pools:
        four = [session_of(f"c{i}", pools, configs, counted) for i in range(4)]
        async with running(*four):
            assert counted.open == 2
            with pytest.raises(GatewayFull) as full:
                pools.admit("c5")
            assert full.value.retry_after > 0
            with pytest.RaisesGroup(GatewayFull):
                async with running(session_of("c5", pools, configs, counted)):
                    pass
            assert pools.processes() == {"s": 2}  # the refused session took no place


async def test_one_client_past_its_sessions_per_process_is_refused() -> None:
    counted, configs = Counted(FakeServer("s", ["t"])), server("client", sessions_per_process=1)
    async with gateway(configs, counted) as pools:
        async with running(session_of("alice", pools, configs, counted)):
            with pytest.raises(GatewayFull):
                pools.admit("alice")
            pools.admit("bob")


async def test_an_ended_session_releases_its_process_after_the_idle_timeout_and_a_new_one_reuses_it() -> None:
    counted, configs = Counted(FakeServer("s", ["t"])), server("client", idle_timeout=0.3)
    async with gateway(configs, counted) as pools:
        async with running(session_of("alice", pools, configs, counted)):
            assert counted.open == 1
        async with running(session_of("alice", pools, configs, counted)) as (again,):
            await call(again)
        assert counted.opened == 1  # the second session came back within the idle time: same process
        await counted.until(0)
        assert pools.processes() == {"s": 0}


async def test_with_no_idle_timeout_the_process_stops_when_its_last_session_ends() -> None:
    counted, configs = Counted(FakeServer("s", ["t"])), server("shared", idle_timeout=0)
    async with gateway(configs, counted) as pools:
        async with running(session_of("alice", pools, configs, counted), session_of("bob", pools, configs, counted)):
            assert counted.open == 1
        await counted.until(0)


async def test_a_crashed_shared_process_restarts_and_every_session_on_it_works_again() -> None:
    fake = FakeServer("s", ["t"])
    counted, configs = Counted(fake), server("shared")
    ups: list[StateChange] = []
    again = anyio.Event()

    def on_state(change: StateChange) -> None:
        if change.state is ServerState.UP:
            ups.append(change)
            if len(ups) == 2:
                again.set()

    async with gateway(configs, counted, on_state) as pools:
        alice, bob = session_of("alice", pools, configs, counted), session_of("bob", pools, configs, counted)
        async with running(alice, bob):
            fake.crash_next_call = True
            crashed = await alice.handle("tools/call", {"name": "t", "arguments": {}}, 1)
            assert isinstance(crashed, RpcError)
            with anyio.fail_after(5):
                await again.wait()  # up again (after its backoff), every session re-listed what it offers
            assert (await call(alice, 2)).startswith("s:")
            assert (await call(bob, 2)).startswith("s:")
            assert counted.open == 1


async def test_session_isolation_takes_no_pool() -> None:
    counted, configs = Counted(FakeServer("s", ["t"])), server("session")
    async with gateway(configs, counted) as pools:
        assert pools.get("s") is None
        async with running(session_of("alice", pools, configs, counted), session_of("alice", pools, configs, counted)):
            assert counted.open == 2


def test_a_full_pool_is_told_apart_from_other_start_failures_through_task_groups() -> None:
    full = GatewayFull("s", "2 processes, all in use", 5)
    wrapped = BaseExceptionGroup("outer", [ValueError("other"), ExceptionGroup("inner", [full])])
    assert gateway_full(wrapped) is full
    assert gateway_full(ExceptionGroup("only others", [ValueError("x")])) is None


class AskingServer:
    """`ask` asks the client back (`method`, the call's own progress token in `_meta` if `tell`) and
    answers with what came back; `hold` stays in flight until `release` is set."""

    name = "s"

    def __init__(self) -> None:
        self.calls: list[Frame] = []
        self.release = anyio.Event()
        self.holding = anyio.Event()
        self._asked = itertools.count(1)
        self._waiting: dict[str, tuple[anyio.Event, list[Frame]]] = {}

    async def serve(self, channel: MemoryChannel) -> None:
        async with anyio.create_task_group() as tasks:
            while True:
                frame = await channel.receive()
                if isinstance(frame, EndOfStream):
                    tasks.cancel_scope.cancel()
                    return
                assert isinstance(frame, dict)
                if "method" not in frame:
                    done, box = self._waiting.pop(str(frame["id"]))
                    box.append(frame)
                    done.set()
                elif "id" in frame:
                    tasks.start_soon(self._answer, channel, frame)

    async def _answer(self, channel: MemoryChannel, frame: Frame) -> None:
        method = frame["method"]
        params: dict[str, Any] = frame.get("params") or {}
        result: Any
        if method == "initialize":
            result = {
                "protocolVersion": "2025-11-25",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "s", "version": "1"},
            }
        elif method == "tools/list":
            result = {"tools": [{"name": n, "inputSchema": {"type": "object"}} for n in ("ask", "hold")]}
        elif params.get("name") == "hold":
            self.calls.append(frame)
            self.holding.set()
            await self.release.wait()
            result = {"content": [{"type": "text", "text": "held"}]}
        else:
            self.calls.append(frame)
            arguments: dict[str, Any] = params.get("arguments", {})
            meta = {"progressToken": params["_meta"]["progressToken"]} if arguments.get("tell") else None
            answer = await self._ask(channel, arguments["method"], {"_meta": meta} if meta else {})
            result = {"content": [{"type": "text", "text": json.dumps(answer)}]}
        await channel.send({"jsonrpc": "2.0", "id": frame["id"], "result": result})

    async def _ask(self, channel: MemoryChannel, method: str, params: dict[str, Any]) -> Frame:
        ident = f"asked-{next(self._asked)}"
        done, box = anyio.Event(), list[Frame]()
        self._waiting[ident] = (done, box)
        await channel.send({"jsonrpc": "2.0", "id": ident, "method": method, "params": params})
        await done.wait()
        return box[0]


def asking(fake: AskingServer, isolation: Isolation = "shared") -> tuple[Counted, dict[str, ServerConfig]]:
    return Counted(fake), server(isolation)


def fake_asking(fake: AskingServer) -> Connector:
    @asynccontextmanager
    async def connect(_name: str, _config: ServerConfig) -> AsyncGenerator[ServerLink]:
        proxy_side, server_side = memory_pair()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(fake.serve, server_side)
            try:
                yield proxy_side
            finally:
                tasks.cancel_scope.cancel()
                await proxy_side.aclose()
                await server_side.aclose()

    return connect


def client_session(client: str, pools: Pools, configs: dict[str, ServerConfig], offers: dict[str, Any]) -> Session:
    return Session(
        configs,
        GatewayConfig(),
        ClientInfo(client, f"{client}-session"),
        RecordingClient(),
        fake_asking(AskingServer()),  # unused: every server here is pooled
        client_capabilities=offers,
        pools=pools,
    )


def asked(session: Session) -> list[str]:
    peer = session.peer
    assert isinstance(peer, RecordingClient)
    return [method for method, _params, _related in peer.requests]


async def ask(session: Session, request_id: int, method: str, *, token: str | None = None, tell: bool = False) -> Any:
    params: dict[str, Any] = {"name": "ask", "arguments": {"method": method, "tell": tell}}
    if token is not None:
        params["_meta"] = {"progressToken": token}
    reply = await session.handle("tools/call", params, request_id)
    assert not isinstance(reply, RpcError), reply
    return json.loads(reply["content"][0]["text"])


SAMPLING: dict[str, Any] = {"sampling": {}, "roots": {}}


async def test_a_request_during_one_sessions_call_reaches_that_session_alone() -> None:
    fake = AskingServer()
    counted, configs = asking(fake)
    async with gateway(configs, counted) as pools:
        alice, bob = (client_session(name, pools, configs, SAMPLING) for name in ("alice", "bob"))
        async with running(alice, bob):
            assert (await ask(alice, 1, "sampling/createMessage"))["result"] == {"answered": "sampling/createMessage"}
            assert (await ask(bob, 1, "roots/list"))["result"] == {"answered": "roots/list"}
        assert asked(alice) == ["sampling/createMessage"]
        assert asked(bob) == ["roots/list"]


async def test_with_several_calls_in_flight_only_the_rewritten_progress_token_tells_whose_request_it_is() -> None:
    fake = AskingServer()
    counted, configs = asking(fake)
    async with gateway(configs, counted) as pools:
        alice, bob = (client_session(name, pools, configs, SAMPLING) for name in ("alice", "bob"))
        async with running(alice, bob), anyio.create_task_group() as tasks:
            tasks.start_soon(
                bob.handle, "tools/call", {"name": "hold", "arguments": {}, "_meta": {"progressToken": 7}}, 1
            )
            with anyio.fail_after(5):
                await fake.holding.wait()  # bob's call is in flight on the process
            told = await ask(alice, 1, "sampling/createMessage", token="mine", tell=True)
            assert told["result"] == {"answered": "sampling/createMessage"}
            untold = await ask(alice, 2, "sampling/createMessage", token="mine")
            assert untold["error"]["code"] == METHOD_NOT_FOUND  # refused: either call could have caused it
            fake.release.set()
        assert asked(alice) == ["sampling/createMessage"]
        assert asked(bob) == []
        peer = alice.peer
        assert isinstance(peer, RecordingClient)
        assert peer.requests[0][1] == {"_meta": {"progressToken": "mine"}}  # alice sees her own token, not ours
        # The server saw tokens unique on its connection, never the clients' own (bob's 7, alice's "mine").
        tokens = [frame["params"]["_meta"]["progressToken"] for frame in fake.calls]
        assert all(str(token).startswith("bastion-") for token in tokens)
        assert len(set(tokens)) == len(tokens)


async def test_a_request_for_what_the_causing_client_does_not_offer_is_refused_on_its_behalf() -> None:
    fake = AskingServer()
    counted, configs = asking(fake)
    async with gateway(configs, counted) as pools:
        alice, bob = client_session("alice", pools, configs, SAMPLING), client_session("bob", pools, configs, {})
        async with running(alice, bob):
            refused = await ask(bob, 1, "sampling/createMessage")
        assert refused["error"]["code"] == METHOD_NOT_FOUND
        assert asked(alice) == asked(bob) == []
