"""The session core over in-memory transports: routing, namespacing, the pipeline seam, faults."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from tests.proxy.fakes import FakeServer, RecordingClient, fake_connector

from bastion.clock import FakeClock
from bastion.codes import DENIED, INTERNAL_ERROR, INVALID_PARAMS, METHOD_NOT_FOUND, SERVER_UNAVAILABLE
from bastion.config.model import BastionConfig, GatewayConfig, ServerConfig, ToolRules
from bastion.errors import ConfigError
from bastion.policy.compile import compile_policy
from bastion.policy.stage import Limits, PolicyStage
from bastion.proxy.catalog import Hide
from bastion.proxy.pipeline import STAGE_ORDER, Call, CallNext, ClientInfo, NoEvents, Stage
from bastion.proxy.session import Session
from bastion.types import Reply, RpcError

pytestmark = pytest.mark.anyio

CLIENT = ClientInfo("tester", "s1")


def config(**rules: ToolRules) -> dict[str, ServerConfig]:
    return {name: ServerConfig(command="unused", tools=rule) for name, rule in rules.items()}


@asynccontextmanager
async def running(
    servers: dict[str, FakeServer],
    configs: dict[str, ServerConfig] | None = None,
    stages: list[Stage] | None = None,
    gateway: GatewayConfig | None = None,
    hide: Hide = lambda _server, _item: None,
) -> AsyncIterator[tuple[Session, RecordingClient]]:
    client = RecordingClient()
    session = Session(
        configs or {name: ServerConfig(command="unused") for name in servers},
        gateway or GatewayConfig(),
        CLIENT,
        client,
        fake_connector(servers),
        client_capabilities={},
        stages=stages or [],
        hide=hide,
    )
    async with anyio.create_task_group() as tasks:
        with anyio.fail_after(5):
            await tasks.start(session.run)
        yield session, client
        tasks.cancel_scope.cancel()


async def test_one_server_is_wrapped_transparently() -> None:
    server = FakeServer("fs", ["read_file"])
    async with running({"fs": server}) as (session, _client):
        listed = await session.handle("tools/list", None, 1)
        assert isinstance(listed, dict)
        assert [tool["name"] for tool in listed["tools"]] == ["read_file"]
        reply = await session.handle("tools/call", {"name": "read_file", "arguments": {"path": "a"}}, 2)
        assert not isinstance(reply, RpcError)
    assert server.calls()[0]["params"]["name"] == "read_file"


async def test_several_servers_are_namespaced_and_each_call_reaches_its_own_server() -> None:
    alpha, beta = FakeServer("alpha", ["search"]), FakeServer("beta", ["search"])
    async with running({"alpha": alpha, "beta": beta}) as (session, _client):
        listed = await session.handle("tools/list", None, 1)
        assert isinstance(listed, dict)
        assert sorted(tool["name"] for tool in listed["tools"]) == ["alpha__search", "beta__search"]
        await session.handle("tools/call", {"name": "beta__search", "arguments": {}}, 2)
    assert alpha.calls() == []
    assert [call["params"]["name"] for call in beta.calls()] == ["search"]


async def test_a_custom_namespace_scheme_is_used() -> None:
    servers = {"a": FakeServer("a", ["x"]), "b": FakeServer("b", ["y"])}
    async with running(servers, gateway=GatewayConfig(namespace="{server}.{tool}")) as (session, _client):
        listed = await session.handle("tools/list", None, 1)
        assert isinstance(listed, dict)
        assert sorted(tool["name"] for tool in listed["tools"]) == ["a.x", "b.y"]


async def test_names_that_collide_after_namespacing_stop_start_up() -> None:
    servers = {"a": FakeServer("a", ["b__c"]), "a__b": FakeServer("a__b", ["c"])}
    with pytest.raises(ExceptionGroup) as raised:
        async with running(servers):
            pass
    assert raised.group_contains(ConfigError)


async def test_a_denied_tool_is_hidden_and_refused_exactly_like_a_missing_one() -> None:
    server = FakeServer("fs", ["read_file", "delete_file"])
    configs = config(fs=ToolRules(deny=("delete_file",)))
    policy = PolicyStage(
        compile_policy(BastionConfig(servers=configs)), Limits(BastionConfig()), FakeClock(), NoEvents()
    )
    hide = functools.partial(policy.hide, CLIENT.client_id)
    async with running({"fs": server}, configs, [policy], hide=hide) as (session, _client):
        listed = await session.handle("tools/list", None, 1)
        assert isinstance(listed, dict)
        assert [tool["name"] for tool in listed["tools"]] == ["read_file"]
        denied = await session.handle("tools/call", {"name": "delete_file", "arguments": {}}, 2)
        missing = await session.handle("tools/call", {"name": "format_disk", "arguments": {}}, 3)
    assert isinstance(denied, RpcError)
    assert isinstance(missing, RpcError)
    assert denied.code == missing.code == INVALID_PARAMS
    assert denied.message.replace("delete_file", "X") == missing.message.replace("format_disk", "X")
    assert server.calls() == []


class Recorder:
    def __init__(self, name: str, log: list[str], refuse: bool = False) -> None:
        self.name = name
        self._log = log
        self._refuse = refuse

    async def __call__(self, call: Call, call_next: CallNext) -> Reply:
        self._log.append(f"> {self.name}")
        if self._refuse:
            return RpcError(DENIED, f"refused by {self.name}")
        reply = await call_next(call)
        self._log.append(f"< {self.name}")
        return reply


async def test_every_call_runs_through_the_stages_in_order_and_back() -> None:
    log: list[str] = []
    stages: list[Stage] = [Recorder(name, log) for name in STAGE_ORDER]
    async with running({"fs": FakeServer("fs", ["read"])}, stages=stages) as (session, _client):
        await session.handle("tools/call", {"name": "read", "arguments": {}}, 1)
    assert log == [f"> {name}" for name in STAGE_ORDER] + [f"< {name}" for name in reversed(STAGE_ORDER)]


async def test_a_stage_that_refuses_keeps_the_call_from_the_server() -> None:
    log: list[str] = []
    server = FakeServer("fs", ["read"])
    stages: list[Stage] = [Recorder("identify", log), Recorder("policy", log, refuse=True), Recorder("audit", log)]
    async with running({"fs": server}, stages=stages) as (session, _client):
        reply = await session.handle("tools/call", {"name": "read", "arguments": {}}, 1)
    assert isinstance(reply, RpcError)
    assert reply.code == DENIED
    assert server.calls() == []
    assert log == ["> identify", "> policy", "< identify"]


async def test_a_server_that_dies_mid_call_fails_the_call_with_its_name() -> None:
    server = FakeServer("fragile", ["work"])
    async with running({"fragile": server}) as (session, _client):
        server.crash_next_call = True
        reply = await session.handle("tools/call", {"name": "work", "arguments": {}}, 1)
    assert isinstance(reply, RpcError)
    assert reply.code == SERVER_UNAVAILABLE
    assert "fragile" in reply.message


@pytest.mark.parametrize(
    "broken",
    [
        {"jsonrpc": "2.0", "result": "done"},  # a result that is not an object
        {"jsonrpc": "2.0", "result": {}, "error": {"code": 1, "message": "both"}},
        {"jsonrpc": "2.0"},  # neither
    ],
)
async def test_a_malformed_answer_fails_its_call_at_once_naming_the_server(broken: dict[str, Any]) -> None:
    server = FakeServer("sloppy", ["work"])
    async with running({"sloppy": server}) as (session, _client):
        server.answer_next_call_with = broken
        with anyio.fail_after(5):  # not the request timeout
            reply = await session.handle("tools/call", {"name": "work", "arguments": {}}, 1)
        after = await session.handle("tools/call", {"name": "work", "arguments": {}}, 2)
    assert isinstance(reply, RpcError)
    assert reply.code == INTERNAL_ERROR
    assert "sloppy" in reply.message
    assert "malformed" in reply.message
    assert not isinstance(after, RpcError)  # the session goes on


async def test_unknown_methods_and_bad_params_get_json_rpc_errors() -> None:
    async with running({"fs": FakeServer("fs", ["read"])}) as (session, _client):
        unknown = await session.handle("tools/frobnicate", None, 1)
        no_name = await session.handle("tools/call", {"arguments": {}}, 2)
        bad_cursor = await session.handle("tools/list", {"cursor": "not-ours"}, 3)
    assert isinstance(unknown, RpcError)
    assert unknown.code == METHOD_NOT_FOUND
    assert isinstance(no_name, RpcError)
    assert no_name.code == INVALID_PARAMS
    assert isinstance(bad_cursor, RpcError)
    assert bad_cursor.code == INVALID_PARAMS


async def test_listings_paginate_across_servers() -> None:
    servers = {name: FakeServer(name, [f"tool{i}" for i in range(70)]) for name in ("a", "b")}
    async with running(servers) as (session, _client):
        names: list[str] = []
        cursor: Any = None
        for _ in range(10):
            page = await session.handle("tools/list", {"cursor": cursor} if cursor else None, 1)
            assert isinstance(page, dict)
            names += [tool["name"] for tool in page["tools"]]
            cursor = page.get("nextCursor")
            if cursor is None:
                break
    assert len(names) == len(set(names)) == 140
