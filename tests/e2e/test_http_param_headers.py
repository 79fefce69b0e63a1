"""2026-07-28 `Mcp-Param-*` headers at the lean HTTP front of a real `bastion serve`: a property the
listed schema marks `x-mcp-header` is mirrored in a header an intermediary may route on, so a
header that disagrees with the body is refused with HeaderMismatch (-32020) before the call goes
anywhere, and a conforming client's call goes through."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from bastion.store.sqlite import StateStore
from tests.conftest import BASTION, PYTHON, child_env
from tests.e2e.support import free_port, wait_for_port
from tests.e2e.test_loose_schema import LOOSE, reached

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


@pytest.fixture
def served(home: Path, tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    port, log = free_port(), tmp_path / "calls.jsonl"
    config = tmp_path / "bastion.toml"
    config.write_text(
        f'[http]\nlisten = "127.0.0.1:{port}"\n'
        f'[servers.loose]\ncommand = "{PYTHON}"\nargs = ["{LOOSE}", "{log}"]\nfs_write = ["{tmp_path}"]\n'
        "read_only = false\n",
        encoding="utf-8",
    )
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    store = StateStore.open(home)
    token = store.create_token("agent-1", 0.0, None)
    store.close()
    with subprocess.Popen([*BASTION, "serve", "--config", str(config)], env=child_env(home)) as process:
        try:
            anyio.run(wait_for_port, port)
            yield f"http://127.0.0.1:{port}/mcp", token, log
        finally:
            process.terminate()
            process.wait(timeout=15)


async def _call(url: str, token: str, region: str, *, header: str | None = None) -> str | int:
    """Call lookup_region through a 2026-07-28 SDK client (`header` overwrites the Mcp-Param-Region
    it sends): the region the server saw, or the JSON-RPC error code."""

    async def tamper(request: httpx2.Request) -> None:
        if header is not None and b'"tools/call"' in request.content:
            request.headers["Mcp-Param-Region"] = header

    hooks = {"request": [tamper]}
    try:
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60, event_hooks=hooks) as http,
            Client(streamable_http_client(url, http_client=http), mode="2026-07-28") as client,
        ):
            result = await client.call_tool("lookup_region", {"region": region})
        seen: str = json.loads(result.content[0].text)["region"]  # pyright: ignore[reportAttributeAccessIssue]
        return seen
    except* MCPError as group:
        (error,) = _leaves(group)
        assert isinstance(error, MCPError)
        code = error.error.code
    return code


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


async def test_a_conforming_clients_param_header_passes_and_a_forged_one_is_header_mismatch(
    served: tuple[str, str, Path],
) -> None:
    url, token, log = served
    assert await _call(url, token, "eu-west") == "eu-west"
    assert await _call(url, token, "eu-west", header="us-east") == -32020
    assert [call["region"] for call in reached(log)] == ["eu-west"]
