"""Start-up time a sandbox adds per server: spawn to the answer of `initialize`, plain and in bubblewrap.

    .venv/bin/python bench/sandbox_bench.py --runs 20

Both use the same launcher code the gateway uses (`Launcher`): plain is `sandbox = "off"`.
The first sandboxed start also probes `bwrap` and asks the interpreter for its paths; that
one-time cost is reported separately from the steady per-start cost.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import anyio

from bastion.config.model import ServerConfig
from bastion.sandbox.prepare import Launcher, ServerFacts
from bastion.transport.stdio_back import StdioServer

ECHO = str(Path(__file__).parent / "echo_server.py")
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "b", "version": "1"}},
}


async def start_once(launcher: Launcher, server: ServerConfig) -> float:
    started = time.perf_counter()
    child = await StdioServer.start("echo", await launcher("echo", server), max_bytes=1 << 20, max_depth=64)
    try:
        await child.send(INIT)
        await child.receive()
        return (time.perf_counter() - started) * 1000
    finally:
        await child.aclose()


async def main(runs: int) -> None:
    launcher = Launcher(dict(os.environ), ServerFacts())
    results: dict[str, list[float]] = {}
    for mode in ("off", "on"):
        server = ServerConfig(command=sys.executable, args=(ECHO,), sandbox=mode)  # pyright: ignore[reportArgumentType]
        first = await start_once(launcher, server)
        times = [await start_once(launcher, server) for _ in range(runs)]
        results[mode] = times
        print(
            f"sandbox {mode}: first start {first:.1f} ms; then p50 {statistics.median(times):.1f} ms, "
            f"max {max(times):.1f} ms over {runs} starts"
        )
    added = statistics.median(results["on"]) - statistics.median(results["off"])
    print(f"added by the sandbox per start (p50): {added:.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    anyio.run(main, parser.parse_args().runs)
