"""Helpers for end-to-end tests: Bastion as a real process in front of real servers."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from bastion.store.sqlite import StateStore
from tests.conftest import BASTION, child_env

__all__ = [
    "NPM_BIN",
    "JsonPosts",
    "free_port",
    "json_receiver",
    "serve_process",
    "serving",
    "through_http",
    "through_stdio",
    "wait_for",
    "wait_for_port",
    "wait_until",
    "wait_until_blocking",
]

T = TypeVar("T")
POLL = 0.05

NPM_BIN = Path(__file__).parent / "npm" / "node_modules" / ".bin"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for(probe: Callable[[], Awaitable[T | None]], *, timeout: float, what: str, every: float = POLL) -> T:
    """Run `probe` until it returns something other than None, and return that; fail naming `what`.

    For a state another process changes and announces to nobody (a CLI listing, a database row,
    a port): there is no event to await, so the probe is asked again every `every` seconds, and
    the wait is bounded. A fixed sleep before an assert would be both slower and flakier."""
    with anyio.move_on_after(timeout):
        while (found := await probe()) is None:  # noqa: ASYNC110 (nobody announces the change: poll, bounded)
            await anyio.sleep(every)
        return found
    pytest.fail(f"waited {timeout} s for {what}")


async def wait_until(condition: Callable[[], object], *, timeout: float, what: str, every: float = POLL) -> None:
    """Wait until the cheap, synchronous `condition` holds (a list another thread fills, a file, /proc)."""

    async def holds() -> bool | None:
        return True if condition() else None

    await wait_for(holds, timeout=timeout, what=what, every=every)


def wait_until_blocking(condition: Callable[[], object], *, timeout: float, what: str, every: float = POLL) -> None:
    """`wait_until` for a thread without an event loop (Playwright's sync API holds the test's)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            pytest.fail(f"waited {timeout} s for {what}")
        time.sleep(every)


async def wait_for_port(port: int, timeout: float = 30.0) -> None:
    async def accepting() -> bool | None:
        try:
            stream = await anyio.connect_tcp("127.0.0.1", port)
        except OSError:
            return None
        await stream.aclose()
        return True

    await wait_for(accepting, timeout=timeout, what=f"a server listening on port {port}")


@asynccontextmanager
async def through_stdio(home: Path, args: list[str], mode: str = "legacy", **client: Any) -> AsyncIterator[Client]:
    """The SDK client talking to `bastion ARGS…` over stdio."""
    params = StdioServerParameters(command=BASTION[0], args=[*BASTION[1:], *args], env=child_env(home))
    async with Client(params, mode=mode, read_timeout_seconds=60, **client) as session:
        yield session


@contextmanager
def serving(home: Path, config: Path, port: int) -> Iterator[str]:
    """`bastion serve` as a process; yields a bearer token for a client called 'tester'."""
    with serve_process(home, config, port) as (_process, token):
        yield token


@contextmanager
def serve_process(home: Path, config: Path, port: int) -> Generator[tuple[subprocess.Popen[bytes], str]]:
    """`bastion serve` as a process, and a bearer token for a client called 'tester'; stopped with SIGTERM
    afterwards unless it has ended already."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    store = StateStore.open(home)
    token = store.create_token("tester", 0.0, None)
    store.close()
    process = subprocess.Popen([*BASTION, "serve", "--config", str(config)], env=child_env(home))
    try:
        anyio.run(wait_for_port, port)
        yield process, token
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=15)


@asynccontextmanager
async def through_http(url: str, token: str, mode: str = "legacy", **client: Any) -> AsyncIterator[Client]:
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        async with Client(streamable_http_client(url, http_client=http), mode=mode, **client) as session:
            yield session


@dataclass
class JsonPosts:
    """A local HTTP receiver (a webhook's stand-in): every JSON body POSTed to it, with when it arrived."""

    url: str
    received: list[tuple[float, Any]] = field(default_factory=list[tuple[float, Any]])

    @property
    def bodies(self) -> list[Any]:
        return [body for _at, body in self.received]


@contextmanager
def json_receiver(path: str = "/hook") -> Iterator[JsonPosts]:
    posts = JsonPosts("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            posts.received.append((time.time(), body))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            return

    server = HTTPServer(("127.0.0.1", 0), Handler)
    posts.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield posts
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()
