"""Bastion's Streamable HTTP front end to end: `bastion serve` as a process, real clients with tokens."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as mt
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from bastion.store.sqlite import StateStore
from tests.conftest import BASTION, PYTHON, child_env
from tests.e2e.support import free_port, wait_for_port

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def gateway(home: Path, tmp_path: Path) -> Iterator[tuple[str, str]]:
    port = free_port()
    (tmp_path / "n.txt").write_text("note", encoding="utf-8")
    config = tmp_path / "bastion.toml"
    config.write_text(
        f'[http]\nlisten = "127.0.0.1:{port}"\n'
        f'[servers.notes]\ncommand = "{PYTHON}"\nargs = ["-m", "bastion.demo.server", "{tmp_path}"]\n'
        f'fs_read = ["{tmp_path}"]\n'
        f'[servers.time]\ncommand = "{Path(PYTHON).parent / "mcp-server-time"}"\n',
        encoding="utf-8",
    )
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    store = StateStore.open(home)
    token = store.create_token("agent-1", 0.0, None)
    store.close()
    process = subprocess.Popen([*BASTION, "serve", "--config", str(config)], env=child_env(home))
    try:
        with anyio.from_thread.start_blocking_portal() as portal:
            portal.call(wait_for_port, port)
        yield f"http://127.0.0.1:{port}/mcp", token
    finally:
        process.terminate()
        process.wait(timeout=10)


async def _session(url: str, token: str, mode: str) -> list[str]:
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
            names = [tool.name for tool in (await client.list_tools()).tools]
            result = await client.call_tool("notes__read_note", {"path": "n.txt"})
            assert isinstance(result.content[0], mt.TextContent)
            assert result.content[0].text == "note"
            return names


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_aggregated_servers_are_namespaced_and_callable_with_a_token(gateway: tuple[str, str], mode: str) -> None:
    url, token = gateway
    names = anyio.run(_session, url, token, mode)
    assert "notes__echo" in names
    assert "time__get_current_time" in names


def test_requests_without_a_valid_token_are_refused(gateway: tuple[str, str]) -> None:
    url, _token = gateway
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
    missing = httpx2.post(url, json=body)
    wrong = httpx2.post(url, json=body, headers={"Authorization": "Bearer bst_wrong"})
    assert missing.status_code == wrong.status_code == 401


def test_a_foreign_origin_is_refused_even_with_a_token(gateway: tuple[str, str]) -> None:
    url, token = gateway
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
    headers = {
        "Authorization": f"Bearer {token}",
        "Origin": "http://evil.example",
        "Accept": "application/json, text/event-stream",
    }
    response = httpx2.post(url, json=body, headers=headers)
    assert response.status_code == 403


async def _names(url: str, token: str) -> list[str]:
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        async with Client(streamable_http_client(url, http_client=http), mode="legacy") as client:
            return [tool.name for tool in (await client.list_tools()).tools]


def test_a_token_limited_to_servers_sees_only_those(gateway: tuple[str, str], home: Path) -> None:
    url, _token = gateway
    store = StateStore.open(home)
    limited = store.create_token("time-only", 0.0, None, ("time",))
    store.close()
    # One server left for this client, so it is wrapped transparently (no namespace).
    assert set(anyio.run(_names, url, limited)) == {"get_current_time", "convert_time"}


def _post(url: str, headers: dict[str, str], frame: Mapping[str, Any]) -> httpx2.Response:
    accept = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    return httpx2.post(url, json=frame, headers={**accept, **headers}, timeout=30)


INITIALIZE: dict[str, Any] = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}


def test_a_deleted_session_is_gone_and_a_revoked_token_is_refused_on_its_next_request(
    gateway: tuple[str, str], home: Path
) -> None:
    url, token = gateway
    auth = {"Authorization": f"Bearer {token}"}
    opened = _post(url, auth, INITIALIZE)
    session = {**auth, "Mcp-Session-Id": opened.headers["mcp-session-id"]}
    listing: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    assert _post(url, session, listing).status_code == 200
    assert httpx2.delete(url, headers=session).status_code == 200
    assert _post(url, session, listing).status_code == 404  # the session ended with the DELETE
    assert httpx2.delete(url, headers=session).status_code == 404

    reopened = {**auth, "Mcp-Session-Id": _post(url, auth, INITIALIZE).headers["mcp-session-id"]}
    assert _post(url, reopened, listing).status_code == 200
    store = StateStore.open(home)
    try:
        assert store.revoke_token("agent-1", 1.0)
    finally:
        store.close()
    assert _post(url, reopened, listing).status_code == 401  # no look-up is kept: the very next request
