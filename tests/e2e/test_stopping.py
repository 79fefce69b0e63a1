"""A gateway asked to stop by a signal (a service manager's SIGTERM, a rolling update, an MCP client
closing its server) stops the way it does when its clients go: what was in flight is answered (HTTP)
or recorded as attempted (stdio), the audit log is flushed, signed and says `gateway.stop`, and
`bastion audit verify` passes at once, without waiting for the next start to seal an unsigned tail.
A second signal ends the process at once."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from collections.abc import Generator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2
import orjson
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from bastion.runtime_http import STOP_GRACE_SECONDS
from tests.conftest import BASTION, PYTHON, child_env
from tests.e2e.support import free_port, serve_process, wait_for_port, wait_until_blocking

pytestmark = [pytest.mark.e2e]

DEMO = [PYTHON, "-m", "bastion.demo.server"]
INIT = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "stopping", "version": "1"}}


def audit(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BASTION, "audit", *args], capture_output=True, text=True, env=child_env(home), check=False, timeout=120
    )


def entries(home: Path, *filters: str) -> list[dict[str, Any]]:
    found = audit(home, "search", *filters, "--json")
    assert found.returncode == 0, found.stderr
    return [json.loads(line) for line in found.stdout.splitlines() if line.strip()]


def assert_log_closed_and_signed(home: Path) -> None:
    verified = audit(home, "verify", "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert len(entries(home, "--kind", "gateway.stop")) == 1


@dataclass
class Gateway:
    process: subprocess.Popen[bytes]
    url: str
    token: str


@contextmanager
def serving(home: Path, tmp_path: Path) -> Generator[Gateway]:
    port = free_port()
    config = tmp_path / "bastion.toml"
    config.write_text(
        f'[http]\nlisten = "127.0.0.1:{port}"\n'
        f'[servers.notes]\ncommand = "{PYTHON}"\nargs = ["-m", "bastion.demo.server", "{tmp_path}"]\n',
        encoding="utf-8",
    )
    with serve_process(home, config, port) as (process, token):
        yield Gateway(process, f"http://127.0.0.1:{port}/mcp", token)


@dataclass
class HttpSession:
    """A raw handshake-era session: calls from any thread, and its GET stream read in a thread of its own."""

    url: str
    headers: dict[str, str]
    stream_ended: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def open(cls, gateway: Gateway) -> HttpSession:
        headers = {"Authorization": f"Bearer {gateway.token}", "Accept": "application/json, text/event-stream"}
        opened = httpx2.post(
            gateway.url, json={"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": INIT}, headers=headers
        )
        assert opened.status_code == 200, opened.text
        headers = {**headers, "mcp-session-id": opened.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
        httpx2.post(gateway.url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers)
        listed = httpx2.post(gateway.url, json={"jsonrpc": "2.0", "id": 0, "method": "tools/list"}, headers=headers)
        assert listed.status_code == 200, listed.text  # a tool is called by the name a listing showed
        return cls(gateway.url, headers)

    def call(self, ident: int, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        frame = {
            "jsonrpc": "2.0",
            "id": ident,
            "method": "tools/call",
            "params": {"name": tool, "arguments": arguments},
        }
        reply = httpx2.post(self.url, json=frame, headers=self.headers, timeout=60)
        text = reply.text
        if not text.startswith("{"):
            text = [line[5:] for line in text.splitlines() if line.startswith("data:") and line[5:].strip()][-1]
        return orjson.loads(text)

    def listen(self) -> None:
        """Hold the session's GET stream open until the gateway ends it."""
        try:
            with httpx2.stream("GET", self.url, headers=self.headers, timeout=60) as stream:
                for _ in stream.iter_bytes():
                    pass
        except httpx2.HTTPError:
            pass  # ended from the other side either way
        self.stream_ended.set()


def in_thread(work: Any, *args: Any) -> tuple[threading.Thread, list[Any]]:
    """`work(*args)` in a thread; what it returned, or the exception it raised, lands in the list."""
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(work(*args))
        except httpx2.HTTPError as exc:  # a call cut off by a process ended at once
            result.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def test_serve_on_sigterm_answers_the_call_in_flight_ends_streams_and_leaves_its_log_signed(
    home: Path, tmp_path: Path
) -> None:
    with serving(home, tmp_path) as gateway:
        session = HttpSession.open(gateway)
        listener = threading.Thread(target=session.listen, daemon=True)
        listener.start()
        for ident in range(1, 4):
            echoed = session.call(ident, "echo", {"text": f"call {ident}"})
            assert echoed.get("result", {}).get("isError") is False, echoed
        slow, answers = in_thread(session.call, 9, "wait", {"seconds": 1.5})
        wait_until_blocking(
            lambda: entries(home, "--kind", "call.intent", "--tool", "wait"), timeout=30, what="the slow call's intent"
        )
        gateway.process.send_signal(signal.SIGTERM)
        # An open GET stream does not hold the stop up until the grace period runs out: it is ended at once.
        assert session.stream_ended.wait(timeout=STOP_GRACE_SECONDS - 2)
        assert gateway.process.wait(timeout=30) == 0
        slow.join(timeout=10)
        [answer] = answers
        assert "result" in answer, answer  # answered, not cut off
    assert_log_closed_and_signed(home)
    [outcome] = entries(home, "--kind", "call.outcome", "--tool", "wait")
    assert outcome["status"] == "ok"


def test_serve_on_sigterm_ends_the_listen_streams_of_2026_clients(home: Path, tmp_path: Path) -> None:
    with serving(home, tmp_path) as gateway:
        anyio.run(listen_through_a_stop, gateway)
        assert gateway.process.wait(timeout=30) == 0
    assert_log_closed_and_signed(home)


async def listen_through_a_stop(gateway: Gateway) -> None:
    """A 2026-07-28 client listening for list changes when the gateway is told to stop: its stream is
    ended well before the grace period runs out, not waited out."""
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {gateway.token}"}, timeout=60) as http:
        async with Client(streamable_http_client(gateway.url, http_client=http), mode="2026-07-28") as client:
            assert [tool.name for tool in (await client.list_tools()).tools]
            async with client.listen(tools_list_changed=True) as subscription:
                gateway.process.send_signal(signal.SIGTERM)
                with anyio.fail_after(STOP_GRACE_SECONDS - 2):
                    async for _event in subscription:
                        pass


def test_a_second_sigterm_ends_serve_at_once(home: Path, tmp_path: Path) -> None:
    with serving(home, tmp_path) as gateway:
        session = HttpSession.open(gateway)
        cut, cut_off = in_thread(session.call, 1, "wait", {"seconds": 60})
        wait_until_blocking(
            lambda: entries(home, "--kind", "call.intent", "--tool", "wait"), timeout=30, what="the slow call's intent"
        )
        gateway.process.send_signal(signal.SIGTERM)
        with pytest.raises(subprocess.TimeoutExpired):  # it waits for the call in flight …
            gateway.process.wait(timeout=1)
        gateway.process.send_signal(signal.SIGTERM)  # … until told again
        assert gateway.process.wait(timeout=5) == -signal.SIGTERM
        cut.join(timeout=10)
        assert isinstance(cut_off[0], httpx2.HTTPError)


def test_wrap_on_sigterm_cancels_the_call_in_flight_says_so_and_leaves_its_log_signed(
    home: Path, tmp_path: Path
) -> None:
    argv = [*BASTION, "wrap", "--", *DEMO, str(tmp_path)]
    with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=child_env(home)) as process:
        stdin, stdout = process.stdin, process.stdout
        assert stdin is not None
        assert stdout is not None

        def ask(frame: dict[str, Any]) -> dict[str, Any]:
            stdin.write(orjson.dumps(frame) + b"\n")
            stdin.flush()
            return orjson.loads(stdout.readline()) if "id" in frame else {}

        try:
            assert "result" in ask({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": INIT})
            ask({"jsonrpc": "2.0", "method": "notifications/initialized"})
            echo = {"name": "echo", "arguments": {"text": "hi"}}
            echoed = ask({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": echo})
            assert echoed["result"]["isError"] is False
            wait = {"name": "wait", "arguments": {"seconds": 60}}
            stdin.write(orjson.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": wait}) + b"\n")
            stdin.flush()  # not answered before the stop: the client stopping it is not waiting for it
            wait_until_blocking(
                lambda: entries(home, "--kind", "call.intent", "--tool", "wait"),
                timeout=30,
                what="the slow call's intent",
            )
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
    assert_log_closed_and_signed(home)
    assert [outcome["status"] for outcome in entries(home, "--kind", "call.outcome", "--tool", "echo")] == ["ok"]
    # The call cut short has its intent answered by an outcome that says so.
    assert [outcome["status"] for outcome in entries(home, "--kind", "call.outcome", "--tool", "wait")] == ["cancelled"]


def test_the_dashboard_on_sigterm_stops_and_exits_zero(home: Path) -> None:
    port = free_port()
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    argv = [*BASTION, "dashboard", "--listen", f"127.0.0.1:{port}"]
    with subprocess.Popen(argv, env=child_env(home)) as process:
        try:
            anyio.run(wait_for_port, port)
            assert httpx2.get(f"http://127.0.0.1:{port}/", follow_redirects=False).status_code < 500
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0  # stopped, not killed by the signal
        finally:
            if process.poll() is None:
                process.kill()
