"""Server processes shared where it is safe: what each `isolation` costs under `bastion serve`.

Run: `.venv/bin/python bench/pool_bench.py [--sessions 1 10 50] [--isolation session client shared]`.
For each isolation and each count, a fresh `bastion serve` in front of the sandboxed echo
server; that many MCP sessions open at once from 5 clients (their own tokens, sessions
dealt round-robin) with a raw JSON-RPC client. Reported: session start latency (initialize
to the first listing, each 503's Retry-After waited out and counted; and from the attempt
that was admitted), the server processes under the gateway and their RSS, the gateway's
RSS, calls/s with every session calling at once, and the server processes left 2 s after
every session was sent DELETE (and when none were left).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import psutil

HERE = Path(__file__).parent
ECHO = [sys.executable, str(HERE / "echo_server.py")]
BASTION = [sys.executable, "-m", "bastion"]
INIT = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}
CLIENTS = 5


class Session:
    """One MCP session over raw HTTP (handshake era); a 503 is waited out as its Retry-After asks."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.client = httpx2.Client(timeout=120)
        self.headers = {"Accept": "application/json, text/event-stream", "Authorization": f"Bearer {token}"}
        self.refusals = 0
        self.started = 0.0
        self.admitted = 0.0
        self.ident = 0

    def open(self) -> None:
        begun = time.perf_counter()
        while True:
            attempt = time.perf_counter()
            response = self._post({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": INIT})
            if response.status_code != 503:
                break
            self.refusals += 1
            time.sleep(float(response.headers.get("retry-after", "1")))
        response.raise_for_status()
        self.headers["mcp-session-id"] = response.headers["mcp-session-id"]
        self.headers["mcp-protocol-version"] = "2025-11-25"
        self._post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        self.call("tools/list", {})
        self.started = time.perf_counter() - begun
        self.admitted = time.perf_counter() - attempt

    def call(self, method: str, params: dict[str, Any]) -> Any:
        self.ident += 1
        response = self._post({"jsonrpc": "2.0", "id": self.ident, "method": method, "params": params})
        text = response.text
        data = (
            text if text.startswith("{") else [line[5:] for line in text.splitlines() if line.startswith("data:")][-1]
        )
        reply = json.loads(data)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def close(self) -> None:
        self.client.delete(self.url, headers=self.headers)
        self.client.close()

    def _post(self, body: dict[str, Any]) -> httpx2.Response:
        return self.client.post(self.url, json=body, headers=self.headers)


def servers_under(pid: int) -> list[psutil.Process]:
    """The echo server processes below the gateway (not the bwrap processes around them)."""
    found: list[psutil.Process] = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            if child.name() != "bwrap" and "echo_server.py" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def rss_mb(processes: list[psutil.Process]) -> float:
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return round(total / 2**20, 1)


def in_threads(count: int, work: Callable[[int], object]) -> None:
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            work(index)
        except BaseException as exc:  # reported after every thread ended
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def run_case(isolation: str, count: int, calls: int, work: Path) -> dict[str, Any]:
    home = work / f"{isolation}-{count}"
    home.mkdir()
    env = {**os.environ, "BASTION_HOME": str(home / "state")}
    port = _free_port()
    config = home / "bastion.toml"
    argv = ", ".join(json.dumps(part) for part in ECHO[1:])
    config.write_text(
        f'[http]\nlisten = "127.0.0.1:{port}"\n'
        f"[servers.echo]\ncommand = {json.dumps(ECHO[0])}\nargs = [{argv}]\nisolation = {json.dumps(isolation)}\n",
        encoding="utf-8",
    )
    tokens = [
        subprocess.run(
            [*BASTION, "tokens", "create", "--client", f"client-{i}"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for i in range(CLIENTS)
    ]
    gateway = subprocess.Popen([*BASTION, "serve", "--config", str(config)], env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        _wait_for(port)
        sessions = [Session(url, tokens[i % CLIENTS]) for i in range(count)]
        in_threads(count, lambda i: sessions[i].open())
        held = servers_under(gateway.pid)
        result: dict[str, Any] = {
            "isolation": isolation,
            "sessions": count,
            "start_p50_ms": round(statistics.median(s.started for s in sessions) * 1000, 1),
            "start_max_ms": round(max(s.started for s in sessions) * 1000, 1),
            "admitted_p50_ms": round(statistics.median(s.admitted for s in sessions) * 1000, 1),
            "refused_503": sum(s.refusals for s in sessions),
            "server_processes": len(held),
            "servers_rss_mb": rss_mb(held),
            "gateway_rss_mb": rss_mb([psutil.Process(gateway.pid)]),
        }
        begun = time.perf_counter()
        in_threads(
            count,
            lambda i: [
                sessions[i].call("tools/call", {"name": "echo", "arguments": {"text": "x"}}) for _ in range(calls)
            ],
        )
        result["calls_per_s"] = round(count * calls / (time.perf_counter() - begun))
        ended = time.perf_counter()
        in_threads(count, lambda i: sessions[i].close())
        gone: float | None = None
        while time.perf_counter() < ended + 30:
            left = len(servers_under(gateway.pid))
            elapsed = time.perf_counter() - ended
            if elapsed >= 2.0 and "servers_2s_after_delete" not in result:
                result["servers_2s_after_delete"] = left
            if left == 0:
                gone = elapsed
                result.setdefault("servers_2s_after_delete", 0)
                break
            time.sleep(0.05)
        result["servers_gone_after_s"] = round(gone, 2) if gone is not None else "> 30"
        return result
    finally:
        gateway.terminate()
        gateway.wait(15)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"bastion serve did not listen on {port}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--isolation", nargs="+", default=["session", "client", "shared"])
    parser.add_argument("--calls", type=int, default=20, help="calls per session, all sessions at once")
    options = parser.parse_args()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as work:
        for isolation in options.isolation:
            for count in options.sessions:
                results.append(run_case(isolation, count, options.calls, Path(work)))
                print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    columns = list(results[0])
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in results:
        print("| " + " | ".join(str(row[c]) for c in columns) + " |")


if __name__ == "__main__":
    main()
