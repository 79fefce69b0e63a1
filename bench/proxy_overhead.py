"""What Bastion adds to a tool call: direct client→server against client→Bastion→server.

Run: `.venv/bin/python bench/proxy_overhead.py [--calls N]`. A raw JSON-RPC client (no SDK
on the client side, so the client's own cost stays out of the numbers) drives the fast echo
server directly and through `bastion wrap` on stdio, and through `bastion serve` on HTTP.
Reports p50/p99 latency, sequential and 16-in-flight calls/s, Bastion's peak RSS and its
CPU time per call.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import orjson
import psutil

HERE = Path(__file__).parent
ECHO = [sys.executable, str(HERE / "echo_server.py")]
BASTION = [sys.executable, "-m", "bastion"]
INIT = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}


class StdioPeer:
    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self._next = 0
        self._lock = threading.Lock()
        self._waiters: dict[int, threading.Event] = {}
        self._replies: dict[int, Any] = {}
        threading.Thread(target=self._read, daemon=True).start()
        self.call("initialize", INIT)
        self._write({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def _write(self, frame: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        with self._lock:
            self.process.stdin.write(orjson.dumps(frame) + b"\n")
            self.process.stdin.flush()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            frame = orjson.loads(line)
            ident = frame.get("id")
            if isinstance(ident, int) and ident in self._waiters:
                self._replies[ident] = frame
                self._waiters[ident].set()

    def call(self, method: str, params: dict[str, Any]) -> Any:
        with self._lock:
            self._next += 1
            ident = self._next
            self._waiters[ident] = threading.Event()
        self._write({"jsonrpc": "2.0", "id": ident, "method": method, "params": params})
        self._waiters[ident].wait(30)
        del self._waiters[ident]
        return self._replies.pop(ident)

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(10)


class HttpPeer:
    def __init__(self, url: str, token: str) -> None:
        self._url = url
        self._client = httpx2.Client(timeout=30)
        self._headers = {"Accept": "application/json, text/event-stream", "Authorization": f"Bearer {token}"}
        response = self._client.post(
            url, json={"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": INIT}, headers=self._headers
        )
        self._headers["mcp-session-id"] = response.headers["mcp-session-id"]
        self._headers["mcp-protocol-version"] = "2025-11-25"
        self._client.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=self._headers)
        self._next = 0
        self._lock = threading.Lock()

    def call(self, method: str, params: dict[str, Any]) -> Any:
        with self._lock:
            self._next += 1
            ident = self._next
        response = self._client.post(
            self._url, json={"jsonrpc": "2.0", "id": ident, "method": method, "params": params}, headers=self._headers
        )
        text = response.text
        if text.startswith("{"):
            return json.loads(text)
        data = [line[5:] for line in text.splitlines() if line.startswith("data:")]
        return json.loads(data[-1])

    def close(self) -> None:
        self._client.close()


def measure(call: Callable[[], Any], calls: int, concurrency: int) -> dict[str, float]:
    latencies: list[float] = []
    lock = threading.Lock()
    remaining = [calls]

    def worker() -> None:
        while True:
            with lock:
                if remaining[0] == 0:
                    return
                remaining[0] -= 1
            start = time.perf_counter()
            reply = call()
            elapsed = time.perf_counter() - start
            assert "result" in reply, reply
            with lock:
                latencies.append(elapsed)

    begin = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = time.perf_counter() - begin
    latencies.sort()
    return {
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "calls_per_s": calls / total,
    }


def bastion_process(peer_pid: int) -> psutil.Process:
    return psutil.Process(peer_pid)


def run_case(
    name: str, make_peer: Callable[[], Any], bastion_pid: Callable[[Any], int | None], calls: int
) -> dict[str, Any]:
    peer = make_peer()
    args = {"name": "echo", "arguments": {"text": "x" * 64}}
    for _ in range(200):
        peer.call("tools/call", args)
    pid = bastion_pid(peer)
    proc = psutil.Process(pid) if pid else None
    cpu_before = sum(proc.cpu_times()[:2]) if proc else 0.0
    sequential = measure(lambda: peer.call("tools/call", args), calls, 1)
    cpu_after = sum(proc.cpu_times()[:2]) if proc else 0.0
    parallel = measure(lambda: peer.call("tools/call", args), calls, 16)
    result: dict[str, Any] = {"case": name, "sequential": sequential, "in_flight_16": parallel}
    if proc is not None:
        result["bastion_cpu_us_per_call"] = (cpu_after - cpu_before) / calls * 1e6
        result["bastion_peak_rss_mb"] = _peak_rss(proc.pid) / 1024
    peer.close()
    return result


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=5000)
    options = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bastion-bench-"))
    env = {**os.environ, "BASTION_HOME": str(home)}
    results = [
        run_case("stdio direct", lambda: StdioPeer(ECHO, env), lambda _p: None, options.calls),
        run_case(
            "stdio through bastion wrap",
            lambda: StdioPeer([*BASTION, "wrap", "--", *ECHO], env),
            lambda p: p.process.pid,
            options.calls,
        ),
    ]
    direct_port = _free_port()
    direct = subprocess.Popen(
        [sys.executable, str(HERE / "echo_http_server.py"), str(direct_port)], stderr=subprocess.DEVNULL
    )
    try:
        _wait_for(direct_port)
        url = f"http://127.0.0.1:{direct_port}/mcp"
        results.append(
            run_case("http direct (SDK server)", lambda: HttpPeer(url, "none"), lambda _p: None, options.calls)
        )
    finally:
        direct.terminate()
        direct.wait(10)
    port = _free_port()
    config = home / "bastion.toml"
    argv = ", ".join(json.dumps(part) for part in ECHO[1:])
    config.write_text(
        f'[http]\nlisten = "127.0.0.1:{port}"\n[servers.echo]\ncommand = {json.dumps(ECHO[0])}\nargs = [{argv}]\n',
        encoding="utf-8",
    )
    token = subprocess.run(
        [*BASTION, "tokens", "create", "--client", "bench"], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    server = subprocess.Popen([*BASTION, "serve", "--config", str(config)], env=env, stderr=subprocess.DEVNULL)
    try:
        _wait_for(port)
        results.append(
            run_case(
                "http through bastion serve",
                lambda: HttpPeer(f"http://127.0.0.1:{port}/mcp", token),
                lambda _p: server.pid,
                options.calls,
            )
        )
    finally:
        server.terminate()
        server.wait(10)
    print(json.dumps(results, indent=2))
    direct, wrapped = results[0]["sequential"]["p50_ms"], results[1]["sequential"]["p50_ms"]
    print(f"stdio p50 added by Bastion: {(wrapped - direct) * 1000:.0f} µs", file=sys.stderr)
    for case in results:
        seq, par = case["sequential"], case["in_flight_16"]
        rss = case.get("bastion_peak_rss_mb")
        cpu = case.get("bastion_cpu_us_per_call")
        print(
            f"| {case['case']} | {seq['p50_ms'] * 1000:.0f} | {seq['p99_ms'] * 1000:.0f} | {seq['calls_per_s']:.0f} "
            f"| {par['calls_per_s']:.0f} | {'' if rss is None else f'{rss:.1f}'} | {'' if cpu is None else f'{cpu:.0f}'} |",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
