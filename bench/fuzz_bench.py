"""Frame fuzzing, longer: the fuzzers of tests/transport/test_fuzz_frames.py with more examples.

    .venv/bin/python bench/fuzz_bench.py                 # ten times the examples of the CI run
    .venv/bin/python bench/fuzz_bench.py --scale 1       # the CI-sized run, timed
    .venv/bin/python bench/fuzz_bench.py --seed 7        # other draws than the fixed ones CI sees

Each fuzzer runs a StdioFront over real pipes (the test plays its client and its stdio server) and
checks the same invariants as the tests: no crash, no hang, nothing forwarded unparsed, the next valid
call answered. Prints per fuzzer the examples run, the fuzz frames sent (non-empty lines), megabytes,
wall time, and frames and examples per second. A failure stops the run with Hypothesis's minimal
example. The sweeps (every field of every frame, of each wrong type) are the same as in CI at any scale.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the fuzzers live in the tests

from tests.transport.test_fuzz_frames import (
    CI_EXAMPLES,
    Tally,
    fuzz_client,
    fuzz_client_first,
    fuzz_server,
    sweep_client,
    sweep_client_first,
    sweep_server,
)


def _swept(sweep: Callable[[], Awaitable[Tally]]) -> Tally:
    return anyio.run(sweep)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=10.0, help="examples as a multiple of the CI run's")
    parser.add_argument("--seed", type=int, default=None, help="draw other examples than CI's fixed ones")
    args = parser.parse_args()
    n = {name: max(1, round(count * args.scale)) for name, count in CI_EXAMPLES.items()}
    runs: list[tuple[str, Callable[[], Tally]]] = [
        ("client → gateway, handshake session", lambda: fuzz_client(n["client"], random_seed=args.seed)),
        (
            "client → gateway, 2026-07-28 session",
            lambda: fuzz_client(n["client_modern"], modern=True, random_seed=args.seed),
        ),
        ("client → gateway, first bytes", lambda: fuzz_client_first(n["client_first"], random_seed=args.seed)),
        (
            "server → gateway, before the answer",
            lambda: fuzz_server(n["server"], then_answer=True, random_seed=args.seed),
        ),
        (
            "server → gateway, instead of the answer",
            lambda: fuzz_server(n["server_instead"], then_answer=False, random_seed=args.seed),
        ),
        ("sweep: client frames, handshake session", lambda: _swept(lambda: sweep_client(modern=False))),
        ("sweep: client frames, 2026-07-28 session", lambda: _swept(lambda: sweep_client(modern=True))),
        ("sweep: first frames", lambda: _swept(sweep_client_first)),
        ("sweep: server frames", lambda: _swept(sweep_server)),
    ]
    print(f"scale {args.scale:g}, {'seed ' + str(args.seed) if args.seed is not None else 'derandomized (as CI)'}")
    print("| fuzzer | examples | frames | MB | seconds | frames/s | examples/s |")
    print("|---|---|---|---|---|---|---|")
    total = Tally()
    started = time.perf_counter()
    for name, run in runs:
        tally = run()
        total.examples += tally.examples
        total.frames += tally.frames
        total.size += tally.size
        print(_row(name, tally), flush=True)
    total.seconds = time.perf_counter() - started
    print(_row("**all**", total))


def _row(name: str, tally: Tally) -> str:
    examples = f"{tally.examples:,}" if tally.examples else ""
    per_example = f"{tally.examples / tally.seconds:,.0f}" if tally.examples else ""
    return (
        f"| {name} | {examples} | {tally.frames:,} | {tally.size / 1e6:,.1f} | {tally.seconds:.1f} "
        f"| {tally.frames / tally.seconds:,.0f} | {per_example} |"
    )


if __name__ == "__main__":
    main()
