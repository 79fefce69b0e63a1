"""Helpers for end-to-end tests: Bastion as a real process in front of real servers."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from bastion.store.sqlite import StateStore
from tests.conftest import BASTION, child_env

__all__ = [
    "NPM_BIN",
    "JsonPosts",
    "free_port",
    "json_receiver",
    "serving",
    "through_http",
    "through_stdio",
    "wait_for_port",
]

NPM_BIN = Path(__file__).parent / "npm" / "node_modules" / ".bin"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for_port(port: int, timeout: float = 30.0) -> None:
    with anyio.fail_after(timeout):
        while True:
            try:
                stream = await anyio.connect_tcp("127.0.0.1", port)
                await stream.aclose()
                return
            except OSError:
                await anyio.sleep(0.05)


@asynccontextmanager
async def through_stdio(home: Path, args: list[str], mode: str = "legacy", **client: Any) -> AsyncIterator[Client]:
    """The SDK client talking to `bastion ARGS…` over stdio."""
    params = StdioServerParameters(command=BASTION[0], args=[*BASTION[1:], *args], env=child_env(home))
    async with Client(params, mode=mode, read_timeout_seconds=60, **client) as session:
        yield session


@contextmanager
def serving(home: Path, config: Path, port: int) -> Iterator[str]:
    """`bastion serve` as a process; yields a bearer token for a client called 'tester'."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    store = StateStore.open(home)
    token = store.create_token("tester", 0.0, None)
    store.close()
    process = subprocess.Popen([*BASTION, "serve", "--config", str(config)], env=child_env(home))
    try:
        anyio.run(wait_for_port, port)
        yield token
    finally:
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
