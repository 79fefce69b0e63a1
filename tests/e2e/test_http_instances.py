"""The 2026-07-28 rules for intermediaries, with two real `bastion serve` on one PostgreSQL.

A client whose requests a round-robin balancer alternates between the two instances (no
sticky sessions) calls tools, gets a call approved from the CLI, and hears the tool list
change on a `subscriptions/listen` stream; the shared server behind them is remote.
Routing headers that disagree with the body are `HeaderMismatch`; listings, filtered per
identity, are `cacheScope: "private"`.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import httpx2
import mcp_types as mt
import psycopg
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from psycopg import sql as pgsql

from bastion.audit.payload import MASTER_KEY_ENV
from tests.conftest import BASTION, child_env
from tests.e2e.support import free_port, wait_for, wait_for_port

pytestmark = [pytest.mark.e2e]

POSTGRES_URL = os.environ.get("BASTION_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
CHANGING = Path(__file__).parents[1] / "servers" / "changing_http.py"
MODERN = "2026-07-28"
ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
}


FLEET_KEY = base64.b64encode(secrets.token_bytes(32)).decode()
"""The audit master key the instances share (their data keys live in the one database)."""


def fleet_env(home: Path) -> dict[str, str]:
    return {**child_env(home), MASTER_KEY_ENV: FLEET_KEY}


@dataclass
class Pair:
    ports: tuple[int, int]
    store: str
    homes: tuple[Path, Path]


@pytest.fixture
def store() -> Iterator[str]:
    schema = f"bastion_test_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as db:
            db.execute(pgsql.SQL("CREATE SCHEMA {}").format(pgsql.Identifier(schema)))
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL} (set BASTION_TEST_POSTGRES_URL): {exc}")
    try:
        yield f"{POSTGRES_URL}?options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as db:
            db.execute(pgsql.SQL("DROP SCHEMA {} CASCADE").format(pgsql.Identifier(schema)))


@pytest.fixture
def pair(tmp_path: Path, store: str) -> Iterator[Pair]:
    upstream_port = free_port()
    upstream = subprocess.Popen(
        [sys.executable, str(CHANGING), f"127.0.0.1:{upstream_port}"], stderr=subprocess.DEVNULL
    )
    processes: list[subprocess.Popen[bytes]] = []
    ports = (free_port(), free_port())
    homes = (tmp_path / "home-a", tmp_path / "home-b")
    try:
        anyio.run(wait_for_port, upstream_port)
        for name, port, home in zip("ab", ports, homes, strict=True):
            config = tmp_path / f"bastion-{name}.toml"
            config.write_text(
                f'[gateway]\ninstance = "gw-{name}"\n'
                f'[http]\nlisten = "127.0.0.1:{port}"\nopen = true\n'
                f"[audit]\nstore = {json.dumps(store)}\n"
                '[approvals]\nchannels = ["cli"]\ntimeout = 60\n'
                f'[servers.shared]\nurl = "http://127.0.0.1:{upstream_port}/mcp"\nread_only = false\n'
                '[servers.shared.tools]\napprove = ["add_tool"]\n',
                encoding="utf-8",
            )
            home.mkdir(mode=0o700)
            processes.append(subprocess.Popen([*BASTION, "serve", "--config", str(config)], env=fleet_env(home)))
            # One after the other: two first starts racing to create the shared schema is not what this tests.
            anyio.run(wait_for_port, port)
        yield Pair(ports, store, homes)
        assert all(process.poll() is None for process in processes), "an instance died"
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=15)
        upstream.terminate()
        upstream.wait(timeout=10)


class RoundRobin(httpx2.AsyncBaseTransport):
    """A load balancer without sticky sessions: each request goes to the next instance in turn."""

    def __init__(self, ports: tuple[int, ...]) -> None:
        self._inner = httpx2.AsyncHTTPTransport()
        self._ports = ports
        self._turn = 0
        self.served: Counter[int] = Counter()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        port = self._ports[self._turn % len(self._ports)]
        self._turn += 1
        self.served[port] += 1
        request.url = request.url.copy_with(port=port)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def text(result: mt.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, mt.TextContent))


async def pending_approval(store: str, home: Path) -> str:
    async def first() -> str | None:
        listed = await anyio.run_process(
            [*BASTION, "approvals", "list", "--json", "--store", store], env=fleet_env(home)
        )
        pending = json.loads(listed.stdout)
        return str(pending[0]["id"]) if pending else None

    return await wait_for(first, timeout=30, what="a pending approval in the shared store", every=0.2)


async def alternate(pair: Pair) -> tuple[list[str], list[str], Counter[int]]:
    balancer = RoundRobin(pair.ports)
    events: list[str] = []
    async with httpx2.AsyncClient(transport=balancer, timeout=90) as http:
        url = f"http://127.0.0.1:{pair.ports[0]}/mcp"
        async with Client(streamable_http_client(url, http_client=http), mode=MODERN) as client:
            assert client.protocol_version == MODERN
            before = [tool.name for tool in (await client.list_tools()).tools]
            async with client.listen(tools_list_changed=True) as subscription, anyio.create_task_group() as tasks:
                for n in range(6):
                    assert text(await client.call_tool("echo", {"text": f"call {n}"})) == f"call {n}"

                async def add() -> None:
                    assert text(await client.call_tool("add_tool", {"name": "added"})) == "added"

                tasks.start_soon(add)
                approval = await pending_approval(pair.store, pair.homes[1])
                await anyio.run_process(
                    [*BASTION, "approvals", "approve", approval, "--store", pair.store, "--reason", "fine"],
                    env=fleet_env(pair.homes[1]),
                )
                with anyio.fail_after(30):
                    async for event in subscription:
                        events.append(type(event).__name__)
                        break
            after: list[str] = []
            with anyio.fail_after(30):
                while "added" not in after:  # each instance refreshes its listing on the change
                    after = [tool.name for tool in (await client.list_tools(cache_mode="bypass")).tools]
            for n in range(4):
                assert text(await client.call_tool("added", {"text": f"new {n}"})) == f"new {n}"
    assert events == ["ToolsListChanged"]
    return before, after, balancer.served


def test_a_stateless_client_alternating_between_two_instances_calls_is_approved_and_hears_changes(
    pair: Pair,
) -> None:
    before, after, served = anyio.run(alternate, pair)
    assert set(before) == {"echo", "add_tool"}
    assert set(after) == {"echo", "add_tool", "added"}
    assert all(served[port] >= 5 for port in pair.ports), served


def post(port: int, method: str, params: dict[str, Any], **headers: str) -> httpx2.Response:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {**params, "_meta": ENVELOPE}}
    sent = {
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": method,
        **headers,
    }
    return httpx2.post(f"http://127.0.0.1:{port}/mcp", json=body, headers=sent, timeout=30)


def message(response: httpx2.Response) -> dict[str, Any]:
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        data = [line[5:] for line in response.text.splitlines() if line.startswith("data:") and line[5:].strip()]
        return json.loads(data[-1])
    return response.json()


def test_headers_disagreeing_with_the_body_are_refused_and_listings_are_private(pair: Pair) -> None:
    port = pair.ports[1]
    listed = message(post(port, "tools/list", {}))["result"]
    assert (listed["cacheScope"], listed["ttlMs"]) == ("private", 0)
    call = {"name": "echo", "arguments": {"text": "hi"}}
    assert message(post(port, "tools/call", call, **{"Mcp-Name": "echo"}))["result"]["content"][0]["text"] == "hi"
    for headers in ({"Mcp-Method": "tools/list", "Mcp-Name": "echo"}, {"Mcp-Name": "add_tool"}, {}):
        refused = post(port, "tools/call", call, **headers)
        assert refused.status_code == 400, headers
        assert refused.json()["error"]["code"] == -32020, headers
