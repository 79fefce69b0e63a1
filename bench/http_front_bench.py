"""The HTTP front side by side in one run: the target's own HTTP endpoint, ContextForge's
`translate` bridge and `bastion serve`, all in front of the same echo tool.

Run: `.venv/bin/python bench/http_front_bench.py [--calls N] [--translate-json] [--rounds N]`; with
`--rounds`, every case runs that many times in turn (a noisy host moves one case's figures by a fifth
from one minute to the next) and the ratios to translate are printed with their median. ContextForge
runs from its own venv, `bench/.venv-contextforge` (see bench/README.md to create it); the
case is skipped without it. The client is the raw one of `proxy_overhead.py` (httpx, no SDK):
a handshake-era session, then sequential calls (latency) and calls from 16 threads (calls/s).
Bastion runs with its whole pipeline, the strict audit (a durable intent before every call)
and a bearer token; its CPU per call is its own process's user+system time (the echo
server, a child, is not counted) over both runs, divided by the calls.

The Python client is itself as heavy as a proxy (about 300 µs of CPU per call with 16 threads, more
against a faster server, whose replies make its threads contend harder), and it shares the machine with
the proxy it measures. With `--wrk SECONDS`, every case is also driven by wrk (C, Debian's `wrk`
package) from 16 connections for that long, with `wrk_calls.lua` giving each request its own id and
checking every reply; its calls/s and the proxy's CPU per call are then reported beside the client's.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import orjson
import psutil
from proxy_overhead import BASTION, ECHO, HERE, INIT, _free_port, _wait_for, measure  # pyright: ignore[reportPrivateUsage]

FORGE = HERE / ".venv-contextforge" / "bin" / "python"
WRK_SCRIPT = HERE / "wrk_calls.lua"
ARGS = {"name": "echo", "arguments": {"text": "x" * 64}}


class HttpPeer:
    """A raw handshake-era client: initialize (a session id if the server gives one), then calls."""

    def __init__(self, url: str, token: str) -> None:
        self._url = url
        self._client = httpx2.Client(timeout=30)
        self._headers = {"Accept": "application/json, text/event-stream", "Authorization": f"Bearer {token}"}
        opened = self._post({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": INIT})
        if "mcp-session-id" in opened.headers:
            self._headers["mcp-session-id"] = opened.headers["mcp-session-id"]
        self._headers["mcp-protocol-version"] = "2025-11-25"
        self._post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        self._ids = itertools.count(1)  # next() on a count is atomic under the GIL

    def headers(self) -> dict[str, str]:
        """What every request of the session carries (token, session id, protocol version)."""
        return {**self._headers, "content-type": "application/json"}

    def _post(self, frame: dict[str, Any]) -> httpx2.Response:
        return self._client.post(self._url, content=orjson.dumps(frame), headers=self.headers())

    def call(self, method: str, params: dict[str, Any]) -> Any:
        text = self._post({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}).text
        if text.startswith("{"):
            return orjson.loads(text)
        data = [line[5:] for line in text.splitlines() if line.startswith("data:") and line[5:].strip()]
        return orjson.loads(data[-1])

    def close(self) -> None:
        self._client.close()


def run_case(name: str, url: str, token: str, pid: int | None, calls: int, wrk_seconds: int) -> dict[str, Any]:
    peer = HttpPeer(url, token)
    for _ in range(300):
        peer.call("tools/call", ARGS)
    proc = psutil.Process(pid) if pid else None
    before = _cpu(proc)
    sequential = measure(lambda: peer.call("tools/call", ARGS), calls, 1)
    client_before = _rusage_cpu(resource.RUSAGE_SELF)
    parallel = measure(lambda: peer.call("tools/call", ARGS), calls, 16)
    parallel["client_cpu_us_per_call"] = (_rusage_cpu(resource.RUSAGE_SELF) - client_before) / calls * 1e6
    after = _cpu(proc)
    result: dict[str, Any] = {"case": name, "sequential": sequential, "in_flight_16": parallel}
    if proc is not None:
        result["cpu_us_per_call"] = (after - before) / (2 * calls) * 1e6
    if wrk_seconds:
        result["wrk_16"] = run_wrk(url, peer.headers(), wrk_seconds, proc)
    peer.close()
    return result


def run_wrk(url: str, headers: dict[str, str], seconds: int, proc: psutil.Process | None) -> dict[str, Any]:
    """16 connections of wrk for `seconds`, every reply checked (`wrk_calls.lua`); raises if any failed."""
    argv = ["wrk", "-t", "2", "-c", "16", "-d", f"{seconds}s", "--latency", "-s", str(WRK_SCRIPT)]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    before, client_before = _cpu(proc), _rusage_cpu(resource.RUSAGE_CHILDREN)
    done = subprocess.run([*argv, url], capture_output=True, text=True, check=True)
    after, client_after = _cpu(proc), _rusage_cpu(resource.RUSAGE_CHILDREN)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"wrk printed no summary: {done.stdout} {done.stderr}")
    summary = json.loads(lines[-1])
    if summary["failed"] or summary["errors"] or not summary["requests"]:
        raise RuntimeError(f"wrk against {url}: {summary}")
    requests = summary["requests"]
    figures: dict[str, Any] = {
        "calls_per_s": requests / summary["seconds"],
        "p50_ms": summary["p50_us"] / 1000,
        "p99_ms": summary["p99_us"] / 1000,
        "calls": requests,
        "client_cpu_us_per_call": (client_after - client_before) / requests * 1e6,
    }
    if proc is not None:
        figures["cpu_us_per_call"] = (after - before) / requests * 1e6
    return figures


def _cpu(proc: psutil.Process | None) -> float:
    return sum(proc.cpu_times()[:2]) if proc is not None else 0.0


def _rusage_cpu(who: int) -> float:
    """User+system seconds of this process (RUSAGE_SELF: the Python client's threads) or of the children
    waited for (RUSAGE_CHILDREN: wrk, once it has ended; the proxies end later)."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def serving(argv: list[str], port: int, env: dict[str, str], case: Callable[[int], dict[str, Any]]) -> dict[str, Any]:
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(port)
        return case(process.pid)
    finally:
        process.terminate()
        process.wait(10)


def forge_env() -> dict[str, str]:
    """ContextForge refuses to start with its placeholder secrets; any strong ones will do for a bench."""
    strong = "Aa1!" + secrets.token_hex(16)
    return {
        **os.environ,
        "JWT_SECRET_KEY": secrets.token_hex(32),
        "AUTH_ENCRYPTION_SECRET": secrets.token_hex(32),
        "PLATFORM_ADMIN_PASSWORD": strong,
        "BASIC_AUTH_PASSWORD": strong,
        "DEFAULT_USER_PASSWORD": strong,
        "LOG_LEVEL": "ERROR",
    }


def one_round(options: argparse.Namespace, home: Path, env: dict[str, str], token: str) -> list[dict[str, Any]]:
    """Every case once, each behind a fresh process: the target's own endpoint, translate, bastion serve."""
    results: list[dict[str, Any]] = []
    port = _free_port()
    direct = [sys.executable, str(HERE / "echo_http_server.py"), str(port)]
    url = f"http://127.0.0.1:{port}/mcp"
    results.append(
        serving(
            direct,
            port,
            env,
            lambda _pid: run_case("target's own HTTP endpoint", url, "none", None, options.calls, options.wrk),
        )
    )

    if FORGE.exists():
        variants: list[tuple[str, list[str]]] = [("translate (SSE)", [])] + (
            [("translate --jsonResponse", ["--jsonResponse"])] if options.translate_json else []
        )
        for label, extra in variants:
            port = _free_port()
            argv = [
                str(FORGE), "-m", "mcpgateway.translate", "--stdio", " ".join(ECHO), "--expose-streamable-http",
                "--port", str(port), "--logLevel", "error", *extra,
            ]  # fmt: skip
            url = f"http://127.0.0.1:{port}/mcp"
            results.append(
                serving(
                    argv,
                    port,
                    forge_env(),
                    lambda pid, u=url, n=label: run_case(
                        f"ContextForge {n}", u, "none", pid, options.calls, options.wrk
                    ),
                )
            )

    port = _free_port()
    config = home / "bastion.toml"
    argv_text = ", ".join(json.dumps(part) for part in ECHO[1:])
    config.write_text(
        f'[http]\nlisten = "127.0.0.1:{port}"\n[servers.echo]\ncommand = {json.dumps(ECHO[0])}\nargs = [{argv_text}]\n',
        encoding="utf-8",
    )
    url = f"http://127.0.0.1:{port}/mcp"
    serve = [*BASTION, "serve", "--config", str(config)]
    results.append(
        serving(serve, port, env, lambda pid: run_case("bastion serve", url, token, pid, options.calls, options.wrk))
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--translate-json", action="store_true", help="run translate with --jsonResponse too")
    parser.add_argument(
        "--home-under", type=Path, help="where BASTION_HOME (and so the audit store) goes, e.g. /dev/shm"
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="run every case this many times, in turn, and print the medians"
    )
    parser.add_argument(
        "--wrk",
        type=int,
        default=0,
        metavar="SECONDS",
        help="also drive every case with wrk from 16 connections for this long (needs `wrk` on PATH)",
    )
    options = parser.parse_args()
    if not FORGE.exists():
        print(f"skipped ContextForge: no {FORGE}", file=sys.stderr)
    if options.wrk and shutil.which("wrk") is None:
        parser.error("--wrk needs wrk on PATH (Debian: apt-get install wrk)")
    home = Path(tempfile.mkdtemp(prefix="bastion-bench-", dir=options.home_under))
    env = {**os.environ, "BASTION_HOME": str(home)}
    token = subprocess.run(
        [*BASTION, "tokens", "create", "--client", "bench"], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    rounds: list[list[dict[str, Any]]] = []
    for number in range(1, options.rounds + 1):
        rounds.append(one_round(options, home, env, token))
        if options.rounds > 1:
            print(f"round {number} of {options.rounds} done", file=sys.stderr)

    print(json.dumps(rounds if options.rounds > 1 else rounds[0], indent=2))
    print(_table(rounds, wrk=bool(options.wrk)), file=sys.stderr)
    forges = [case["case"] for case in rounds[0] if case["case"].startswith("ContextForge")]
    loads = [("in_flight_16", "Python client")] + ([("wrk_16", "wrk")] if options.wrk else [])
    for name in forges:  # bastion serve's calls/s with 16 in flight against this translate's, round by round
        for load, label in loads:
            ratios = [
                results[-1][load]["calls_per_s"]
                / next(case for case in results if case["case"] == name)[load]["calls_per_s"]
                for results in rounds
            ]
            each = ", ".join(f"{ratio:.2f}" for ratio in ratios)
            print(
                f"bastion serve / {name}, 16 in flight ({label}): median {statistics.median(ratios):.2f}x ({each})",
                file=sys.stderr,
            )


def _table(rounds: list[list[dict[str, Any]]], *, wrk: bool) -> str:
    """The rounds as a Markdown table; with wrk, its calls/s, p50 and CPU per call (proxy, then wrk's own)."""
    head = "| round | case | p50 µs | p99 µs | sequential calls/s | 16 in flight calls/s | proxy CPU µs/call | client CPU µs/call |"
    if wrk:
        head += " wrk calls/s | wrk p50 µs | proxy CPU µs/call (wrk) | wrk CPU µs/call |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for number, results in enumerate(rounds, 1):
        for case in results:
            seq, par = case["sequential"], case["in_flight_16"]
            row = (
                f"| {number} | {case['case']} | {seq['p50_ms'] * 1000:.0f} | {seq['p99_ms'] * 1000:.0f} "
                f"| {seq['calls_per_s']:.0f} | {par['calls_per_s']:.0f} | {_us(case.get('cpu_us_per_call'))} "
                f"| {_us(par['client_cpu_us_per_call'])} |"
            )
            if wrk:
                load = case["wrk_16"]
                row += (
                    f" {load['calls_per_s']:.0f} | {load['p50_ms'] * 1000:.0f} | {_us(load.get('cpu_us_per_call'))} "
                    f"| {_us(load['client_cpu_us_per_call'])} |"
                )
            lines.append(row)
    return "\n".join(lines)


def _us(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}"


if __name__ == "__main__":
    main()
