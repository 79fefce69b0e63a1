"""What a candidate policy costs a call: the policy stage with and without `[policy] candidate`.

Goal: the candidate's evaluation adds no more than one decision's time to a call. The calls
are `policy_bench.py`'s mix without the cases that carry a URL (a URL sends the stage's decision
to a worker thread for DNS, with or without a candidate, which would swamp the difference),
through the real `PolicyStage` (profiles cached as at listing time, the rate limits, the record
the audit stage receives) with a forward that returns at once. The three timings are taken
interleaved, call by call, so machine load weighs on each alike:

- `decision`: `evaluate()` alone, one decision (what the candidate adds at most, by the goal);
- `stage`: the policy stage with the live policy only;
- `stage + candidate`: the same stage deciding a candidate beside it and recording both.

The candidate allows one more `git` subcommand on the shell server; on the other servers its rules
are the live ones, so the stage reuses the live decision there. `--changed every` gives every
server different rules (a larger argument limit), so every call is decided twice: the worst case.

    .venv/bin/python bench/shadow_bench.py --rounds 20000
    .venv/bin/python bench/shadow_bench.py --rounds 20000 --changed every
    .venv/bin/python bench/shadow_bench.py --rounds 2000 --only candidate   # one variant, for callgrind
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).parent))

from policy_bench import cases, config_text

from bastion.clock import FakeClock
from bastion.config.load import parse_config
from bastion.policy.arguments import read_strings
from bastion.policy.compile import compile_policy
from bastion.policy.decide import profile_for
from bastion.policy.profile import ToolProfile
from bastion.policy.stage import Candidate, Limits, PolicyStage, evaluate, load_sql_check
from bastion.proxy.pipeline import Call, ClientInfo, NoEvents
from bastion.types import Reply

CANDIDATE_CHANGE = ("allow = { git = [", 'allow = { git = ["diff", ')
"""The candidate: the same policy, with `git diff` allowed as well (a typical widening)."""


def stage_for(config_source: str, candidate_source: str | None) -> PolicyStage:
    config = parse_config(config_source)
    candidate = None
    if candidate_source is not None:
        other = parse_config(candidate_source)
        candidate = Candidate(compile_policy(other), Limits(other))
    return PolicyStage(compile_policy(config), Limits(config), FakeClock(), NoEvents(), candidate=candidate)


async def forward(call: Call) -> Reply:
    return {"content": []}


def make_call(server: str, client: str, tool: dict[str, Any], arguments: dict[str, Any]) -> Call:
    params = {"name": tool["name"], "arguments": arguments}
    return Call(ClientInfo(client, "bench"), server, "tools/call", params, str(tool["name"]), 1, definition=tool)


async def run(options: argparse.Namespace) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        (root / "scratch").mkdir(parents=True)
        (root / "docs").mkdir()
        live_text = config_text(root)
        candidate_text = live_text.replace(*CANDIDATE_CHANGE)
        if options.changed == "every":  # every server's rules differ: no decision can be reused
            candidate_text = re.sub(
                r"^\[servers\.(\w+)\]$", r"[servers.\1]\nmax_argument_bytes = 2097152", candidate_text, flags=re.M
            )
        assert candidate_text != live_text
        live = stage_for(live_text, None)
        shadowed = stage_for(live_text, candidate_text)
        load_sql_check()
        mix = [
            (server, client, tool, arguments, expected)
            for server, client, tool, arguments, expected in cases(root)
            if not read_strings(
                profile_for(live.policy.servers[server], tool, str(tool["name"])), arguments
            ).needs_resolution
            and not (options.no_sql and server == "db")
        ]
        timings: dict[str, list[float]] = {"decision": [], "stage": [], "stage + candidate": []}
        per_case: dict[tuple[str, str], list[float]] = {}
        profiles: dict[tuple[str, str], ToolProfile] = {
            (server, str(tool["name"])): profile_for(live.policy.servers[server], tool, str(tool["name"]))
            for server, _client, tool, _arguments, _expected in mix
        }

        def one_decision(server: str, client: str, tool: dict[str, Any], arguments: dict[str, Any]) -> None:
            name = str(tool["name"])
            profile = profiles[(server, name)]  # cached, as the stage caches it at listing time
            evaluate(live.policy, client, server, name, tool, arguments, profile=profile)

        variants: list[tuple[str, Callable[..., Any]]] = []
        if options.only in (None, "decision"):
            variants.append(("decision", one_decision))
        if options.only in (None, "live"):
            variants.append(("stage", live))
        if options.only in (None, "candidate"):
            variants.append(("stage + candidate", shadowed))
        for server, client, tool, arguments, _expected in mix:  # warm the profile caches
            await live(make_call(server, client, tool, arguments), forward)
            await shadowed(make_call(server, client, tool, arguments), forward)
        for _round in range(options.rounds // len(mix)):
            for server, client, tool, arguments, expected in mix:
                for name, variant in variants:
                    call = make_call(server, client, tool, arguments)
                    started = time.perf_counter()
                    if name == "decision":
                        variant(server, client, tool, arguments)
                    else:
                        await variant(call, forward)
                        decided = call.decision.action.value if call.decision is not None else None
                        if decided != expected.value:
                            raise SystemExit(f"{server}.{tool['name']}: expected {expected.value}, got {decided}")
                    elapsed = (time.perf_counter() - started) * 1e6
                    timings[name].append(elapsed)
                    per_case.setdefault((f"{server}.{tool['name']} {expected.value}", name), []).append(elapsed)
        print("| case | decision p50 µs | stage p50 µs | stage + candidate p50 µs | added / decision |")
        print("|---|---|---|---|---|")
        for label in dict.fromkeys(case for case, _name in per_case):
            medians = [statistics.median(per_case.get((label, name), [0.0])) for name in timings]
            ratio = (medians[2] - medians[1]) / medians[0] if medians[0] else 0.0
            print(f"| {label} | {medians[0]:.1f} | {medians[1]:.1f} | {medians[2]:.1f} | {ratio:.2f} |")
        print()
        return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20000)
    parser.add_argument("--no-sql", action="store_true", help="leave out the SQL cases")
    parser.add_argument("--only", choices=("decision", "live", "candidate"), help="time one variant only")
    parser.add_argument(
        "--changed",
        choices=("sh", "every"),
        default="sh",
        help="which servers' rules the candidate changes: the shell server's (typical) or every one (worst case)",
    )
    options = parser.parse_args()
    timings = anyio.run(run, options)
    print("| per call | p50 µs | mean µs | p99 µs |")
    print("|---|---|---|---|")
    for name, times in timings.items():
        if not times:
            continue
        ordered = sorted(times)
        p99 = ordered[int(len(ordered) * 0.99)]
        print(f"| {name} | {statistics.median(ordered):.1f} | {statistics.fmean(ordered):.1f} | {p99:.1f} |")
    if all(timings.values()):
        medians = {name: statistics.median(times) for name, times in timings.items()}
        added = medians["stage + candidate"] - medians["stage"]
        print(f"\np50: the candidate adds {added:.1f} µs a call; one decision takes {medians['decision']:.1f} µs")
        print(f"ratio {added / medians['decision']:.2f} (goal ≤ 1.00)")


if __name__ == "__main__":
    main()
