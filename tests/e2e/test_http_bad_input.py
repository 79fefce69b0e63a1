"""Bad input at the HTTP front of a real `bastion serve`: a clear status and JSON-RPC error, never a
hang or a crash, nothing forwarded unparsed, and the next request works."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from bastion.store.sqlite import StateStore
from bastion.transport.http_guard import MAX_BODY_BYTES, READ_TIMEOUT_SECONDS
from tests.conftest import BASTION, PYTHON, child_env
from tests.e2e.support import free_port, wait_for_port

pytestmark = [pytest.mark.e2e]

INIT = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}
ACCEPT = "application/json, text/event-stream"


@dataclass
class Gateway:
    url: str
    port: int
    token: str
    process: subprocess.Popen[bytes]

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Accept": ACCEPT, **extra}


@pytest.fixture
def gateway(home: Path, tmp_path: Path) -> Iterator[Gateway]:
    port = free_port()
    (tmp_path / "n.txt").write_text("note", encoding="utf-8")
    config = tmp_path / "bastion.toml"
    config.write_text(
        f'[http]\nlisten = "127.0.0.1:{port}"\n'
        f'[servers.notes]\ncommand = "{PYTHON}"\nargs = ["-m", "bastion.demo.server", "{tmp_path}"]\n'
        f'fs_read = ["{tmp_path}"]\n',
        encoding="utf-8",
    )
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    store = StateStore.open(home)
    token = store.create_token("agent-1", 0.0, None)
    store.close()
    process = subprocess.Popen([*BASTION, "serve", "--config", str(config)], env=child_env(home))
    try:
        anyio.run(wait_for_port, port)
        yield Gateway(f"http://127.0.0.1:{port}/mcp", port, token, process)
        assert process.poll() is None, "the gateway died"
    finally:
        process.terminate()
        process.wait(timeout=15)


def rpc(response: httpx2.Response) -> dict[str, Any]:
    """The JSON-RPC message of a response, whether it came as JSON or as an SSE stream."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        data = [line[5:] for line in response.text.splitlines() if line.startswith("data:") and line[5:].strip()]
        return json.loads(data[-1])
    return response.json()


def open_session(http: httpx2.Client, gateway: Gateway) -> dict[str, str]:
    """A handshake-era session: initialize, initialized; returns the headers that carry it."""
    body = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": INIT}
    opened = http.post(gateway.url, json=body, headers=gateway.headers())
    assert opened.status_code == 200, opened.text
    headers = gateway.headers(
        **{"mcp-session-id": opened.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
    )
    http.post(gateway.url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers)
    return headers


def echo(http: httpx2.Client, gateway: Gateway, headers: dict[str, str], text: str = "small") -> dict[str, Any]:
    call = {"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": text}}}
    return rpc(http.post(gateway.url, json=call, headers=headers))


def test_an_oversized_body_is_413_declared_or_streamed_and_the_session_goes_on(gateway: Gateway) -> None:
    with httpx2.Client(timeout=30) as http:
        headers = open_session(http, gateway)
        huge = json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 8,
                "method": "tools/call",
                "params": {"name": "echo", "arguments": {"text": "x" * MAX_BODY_BYTES}},
            }
        ).encode()
        declared = http.post(gateway.url, content=huge, headers={**headers, "content-type": "application/json"})
        assert declared.status_code == 413
        assert declared.json()["error"]["code"] == -32600

        def chunks() -> Iterator[bytes]:
            for start in range(0, len(huge), 1 << 16):
                yield huge[start : start + (1 << 16)]

        streamed = http.post(gateway.url, content=chunks(), headers={**headers, "content-type": "application/json"})
        assert streamed.status_code == 413
        assert echo(http, gateway, headers)["result"]["content"][0]["text"] == "small"


def test_a_stalled_body_is_408_within_the_read_timeout(gateway: Gateway) -> None:
    request = (
        f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{gateway.port}\r\nAuthorization: Bearer {gateway.token}\r\n"
        f"Content-Type: application/json\r\nAccept: {ACCEPT}\r\nContent-Length: 100\r\n\r\n"
        '{"jsonrpc": "2.0",'
    ).encode()
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=READ_TIMEOUT_SECONDS + 10) as sock:
        sock.sendall(request)  # then nothing more: a stalled client
        received = b""
        while b"\r\n\r\n" not in received or not received.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        answer = received.decode("latin-1")
    status_line, _, rest = answer.partition("\r\n")
    assert status_line.split()[1] == "408"
    assert json.loads(rest.partition("\r\n\r\n")[2])["error"]["code"] == -32600
    with httpx2.Client(timeout=30) as http:
        assert echo(http, gateway, open_session(http, gateway))["result"]["content"][0]["text"] == "small"


MALFORMED = [
    (b"{this is not json", -32700),
    (b"[1, 2, 3]", -32600),
    (b'"a string"', -32600),
    (b'{"jsonrpc": "1.0", "id": 5, "method": "ping"}', -32600),
    (b'{"jsonrpc": "2.0", "id": true, "method": "ping"}', -32600),
    (b'{"jsonrpc": "2.0", "id": 6, "method": "tools/list", "params": [1]}', -32602),
    (b'{"jsonrpc": "2.0", "id": 7, "method": "tools/call", "Params": {"name": "echo"}}', -32600),
    (b'{"jsonrpc": "2.0", "id": 8, "method": "ping", "params": ' + b"[" * 100 + b"]" * 100 + b"}", -32600),
]


def test_malformed_frames_are_400_with_a_json_rpc_error_and_the_session_goes_on(gateway: Gateway) -> None:
    with httpx2.Client(timeout=30) as http:
        headers = open_session(http, gateway)
        for body, code in MALFORMED:
            refused = http.post(gateway.url, content=body, headers={**headers, "content-type": "application/json"})
            assert (refused.status_code, refused.json()["error"]["code"]) == (400, code), body
            assert echo(http, gateway, headers)["result"]["content"][0]["text"] == "small"


def test_an_unknown_session_id_is_404(gateway: Gateway) -> None:
    with httpx2.Client(timeout=30) as http:
        headers = gateway.headers(**{"mcp-session-id": "0" * 32, "mcp-protocol-version": "2025-11-25"})
        answer = http.post(gateway.url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, headers=headers)
        assert answer.status_code == 404
        assert http.get(gateway.url, headers={**headers, "Accept": "text/event-stream"}).status_code == 404


async def _open_and_list(gateway: Gateway, statuses: list[tuple[int, str | None]]) -> None:
    async with httpx2.AsyncClient(timeout=60) as http:
        body = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": INIT}
        opened = await http.post(gateway.url, json=body, headers=gateway.headers())
        if opened.status_code != 200:
            statuses.append((opened.status_code, opened.headers.get("retry-after")))
            return
        headers = gateway.headers(
            **{"mcp-session-id": opened.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
        )
        await http.post(gateway.url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers)
        listed = await http.post(gateway.url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, headers=headers)
        statuses.append((listed.status_code, listed.headers.get("retry-after")))
        if listed.status_code == 200:
            assert "tools" in rpc(listed)["result"]


def test_a_burst_of_new_sessions_is_told_to_retry_not_left_hanging(gateway: Gateway) -> None:
    statuses: list[tuple[int, str | None]] = []

    async def burst() -> None:
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tasks:
                for _ in range(16):
                    tasks.start_soon(_open_and_list, gateway, statuses)

    anyio.run(burst)
    assert len(statuses) == 16
    assert {status for status, _ in statuses} <= {200, 503}
    assert any(status == 200 for status, _ in statuses)
    refused = [retry for status, retry in statuses if status == 503]
    assert refused, "a burst this size should meet the limit on sessions starting at once"
    assert all(retry is not None and int(retry) > 0 for retry in refused)
    with httpx2.Client(timeout=30) as http:  # and once the burst has started, a new client gets in
        assert echo(http, gateway, open_session(http, gateway))["result"]["content"][0]["text"] == "small"


MISMATCHED: list[tuple[dict[str, str], str | None]] = [
    ({"mcp-method": "tools/list"}, "echo"),
    ({"mcp-method": "tools/call", "mcp-name": "read_note"}, "echo"),
    ({"mcp-name": "echo"}, None),
]


def test_routing_headers_that_disagree_with_the_body_are_header_mismatch_in_the_handshake_era(
    gateway: Gateway,
) -> None:
    with httpx2.Client(timeout=30) as http:
        headers = open_session(http, gateway)
        for extra, name in MISMATCHED:
            params: dict[str, Any] = {"arguments": {"text": "hi"}}
            if name is not None:
                params["name"] = name
            call = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": params}
            refused = http.post(gateway.url, json=call, headers={**headers, **extra})
            assert (refused.status_code, refused.json()["error"]["code"]) == (400, -32020), extra
        agreeing = {**headers, "mcp-method": "tools/call", "mcp-name": "echo"}
        call = {
            "jsonrpc": "2.0",
            "id": 4,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "hi"}},
        }
        assert rpc(http.post(gateway.url, json=call, headers=agreeing))["result"]["content"][0]["text"] == "hi"
