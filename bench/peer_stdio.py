"""Bastion against a peer gateway on stdio, in one run, on the same echo server.

    .venv/bin/python bench/peer_stdio.py [--calls N] [--peer-source DIR] [--only bastion,direct]

Three cases drive `echo_server.py` with the raw JSON-RPC client of `proxy_overhead.py`:
the server directly, through `bastion wrap` with its defaults (the whole pipeline, strict
durable audit, the sandbox), and through mcp-context-protector (Trail of Bits) with its
defaults. For each: sequential calls/s, calls/s with 16 in flight, and for the gateways their
own process's CPU (user + system, children excluded) per call over both runs, and peak RSS.

The peer runs from a virtual environment of its own (`bench/.venv-peer`, never Bastion's):
it pins another `mcp` than Bastion does. It is installed from PyPI when the package is there,
else from a source checkout given with `--peer-source` (installed without its optional
guardrail model, `llamafirewall`, which its default configuration never loads). Its CLI is
`mcp-context-protector --command "ARGV"`; it keeps its tool-approval database under `~` (the
version measured here: `~/.context-protector/servers.json`), so the case runs with a HOME of its
own and approves the echo server's tools first (`--review-server`) the way a user would.

A source install needs pydantic below 2.12 (`mcp==1.9.4` does not import with newer), which
`PEER_DEPS` holds, and `mcp` 1.9.4 refuses a server that answers with protocol `2025-11-25`, as
the echo server does: add that version to `SUPPORTED_PROTOCOL_VERSIONS` in the peer venv's
`mcp/shared/version.py` by hand (bench/README.md, "Session 7"). The script does not patch a
third-party package for you; the review step stops with the peer's error if it was not done.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).parent))

from proxy_overhead import ECHO, StdioPeer, measure

HERE = Path(__file__).resolve().parent
PEER_VENV = HERE / ".venv-peer"
PEER_PACKAGE = "mcp-context-protector"
PEER_DEPS = ["mcp==1.9.4", "aiofiles>=24.1.0", "pydantic<2.12"]
BASTION = [sys.executable, "-m", "bastion"]
ARGS = {"name": "echo", "arguments": {"text": "x" * 64}}


def ensure_peer(source: str | None) -> Path | None:
    """The peer's command, installing it into its own venv when missing; None if it cannot be had."""
    command = PEER_VENV / "bin" / PEER_PACKAGE
    if command.exists():
        return command
    if not (PEER_VENV / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    pip = [str(PEER_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    if subprocess.run([*pip, PEER_PACKAGE], check=False).returncode != 0:
        if source is None:
            print(f"{PEER_PACKAGE} is not installable from the package index; pass --peer-source", file=sys.stderr)
            return None
        subprocess.run([*pip, *PEER_DEPS], check=True)
        subprocess.run([*pip, "--no-deps", source], check=True)
    return command if command.exists() else None


def peer_home(command: Path) -> dict[str, str]:
    """A HOME of its own for the peer, with the echo server's tools approved as a user would."""
    home = Path(tempfile.mkdtemp(prefix="peer-bench-"))
    env = {**os.environ, "HOME": str(home)}
    review = [str(command), "--command", shlex.join(ECHO), "--review-server"]
    # The review prompts on the terminal; answering yes approves the server's configuration.
    done = subprocess.run(review, input="yes\n", env=env, text=True, capture_output=True, timeout=120, check=False)
    if done.returncode != 0:  # else every call would wait for an approval that never comes
        raise SystemExit(f"the peer's --review-server failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return env


def run_case(name: str, make_peer: Callable[[], StdioPeer], gateway: bool, calls: int) -> dict[str, Any]:
    peer = make_peer()
    for _ in range(200):
        reply = peer.call("tools/call", ARGS)
        assert "result" in reply, reply
        assert not reply["result"].get("isError"), reply  # a tool error is a result too
    proc = psutil.Process(peer.process.pid) if gateway else None
    cpu_before = sum(proc.cpu_times()[:2]) if proc else 0.0
    sequential = measure(lambda: peer.call("tools/call", ARGS), calls, 1)
    cpu_middle = sum(proc.cpu_times()[:2]) if proc else 0.0
    parallel = measure(lambda: peer.call("tools/call", ARGS), calls, 16)
    cpu_after = sum(proc.cpu_times()[:2]) if proc else 0.0
    result: dict[str, Any] = {"case": name, "sequential": sequential, "in_flight_16": parallel}
    if proc is not None:
        result["cpu_us_per_call_sequential"] = (cpu_middle - cpu_before) / calls * 1e6
        result["cpu_us_per_call_16"] = (cpu_after - cpu_middle) / calls * 1e6
        result["peak_rss_mb"] = _peak_rss(proc.pid) / 1024
    peer.close()
    return result


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


class _Load:
    """The machine's load average while the cases run (other work skews wall-clock figures)."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while not self._stop.wait(1.0):
            self.samples.append(os.getloadavg()[0])

    def stop(self) -> tuple[float, float]:
        self._stop.set()
        return (min(self.samples, default=0.0), max(self.samples, default=0.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--peer-source", help="a source checkout of mcp-context-protector, if PyPI has none")
    parser.add_argument("--only", default="direct,bastion,peer", help="which cases to run, comma-separated")
    parser.add_argument("--bastion", default=shlex.join(BASTION), help="the command that runs Bastion")
    options = parser.parse_args()
    cases = set(options.only.split(","))
    home = Path(tempfile.mkdtemp(prefix="bastion-bench-"))
    env = {**os.environ, "BASTION_HOME": str(home)}
    load = _Load()
    results: list[dict[str, Any]] = []
    if "direct" in cases:
        results.append(run_case("echo server directly", lambda: StdioPeer(ECHO, env), False, options.calls))
    if "bastion" in cases:
        argv = [*shlex.split(options.bastion), "wrap", "--", *ECHO]
        results.append(run_case("bastion wrap (defaults)", lambda: StdioPeer(argv, env), True, options.calls))
    if "peer" in cases:
        command = ensure_peer(options.peer_source)
        if command is not None:
            peer_env = peer_home(command)
            argv = [str(command), "--command", shlex.join(ECHO)]
            results.append(
                run_case("mcp-context-protector (defaults)", lambda: StdioPeer(argv, peer_env), True, options.calls)
            )
    low, high = load.stop()
    print(json.dumps({"load_average": [low, high], "results": results}, indent=2))
    print(f"load average during the run: {low:.2f} to {high:.2f}", file=sys.stderr)
    print(
        "| case | sequential calls/s | 16 in flight calls/s | CPU µs/call (seq / 16) | peak RSS MB |", file=sys.stderr
    )
    print("|---|---|---|---|---|", file=sys.stderr)
    for case in results:
        cpu = (
            f"{case['cpu_us_per_call_sequential']:.0f} / {case['cpu_us_per_call_16']:.0f}"
            if "peak_rss_mb" in case
            else ""
        )
        rss = f"{case['peak_rss_mb']:.1f}" if "peak_rss_mb" in case else ""
        print(
            f"| {case['case']} | {case['sequential']['calls_per_s']:.0f} | {case['in_flight_16']['calls_per_s']:.0f} "
            f"| {cpu} | {rss} |",
            file=sys.stderr,
        )
    by_name = {case["case"]: case for case in results}
    ours, theirs = by_name.get("bastion wrap (defaults)"), by_name.get("mcp-context-protector (defaults)")
    if ours and theirs:
        for key in ("sequential", "in_flight_16"):
            ratio = ours[key]["calls_per_s"] / theirs[key]["calls_per_s"]
            print(f"bastion / peer, {key}: {ratio:.2f}x", file=sys.stderr)


if __name__ == "__main__":
    started = time.monotonic()
    main()
    print(f"took {time.monotonic() - started:.0f} s", file=sys.stderr)
