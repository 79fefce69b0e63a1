"""Policy decision time for a typical policy (DNS excluded): goal p50 ≤ 20 µs per call.

The policy is what a filesystem, a fetch, a database and a shell server would be given:
roots, a URL rule, a SQL dialect with a table allowlist, a command allowlist, two clients.
Each case is a realistic call; every decision is checked against its expected action, so a
fast wrong answer cannot pass. Profiles are built once per tool as the gateway does (at
listing time); the decision itself, including the argument constraints, is what is timed.

    .venv/bin/python bench/policy_bench.py --rounds 20000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bastion.config.load import parse_config
from bastion.policy.compile import compile_policy
from bastion.policy.stage import load_sql_check
from bastion.types import Action

READ_FILE = {"name": "read_text_file", "inputSchema": {"type": "object", "properties": {"path": {}, "head": {}}}}
WRITE_FILE = {
    "name": "write_file",
    "annotations": {"destructiveHint": True},
    "inputSchema": {"type": "object", "properties": {"path": {}, "content": {}}},
}
FETCH = {"name": "fetch", "inputSchema": {"type": "object", "properties": {"url": {}, "max_length": {}}}}
QUERY = {
    "name": "read_query",
    "description": "Run a SELECT",
    "inputSchema": {"type": "object", "properties": {"query": {}}},
}
RUN = {"name": "run_command", "inputSchema": {"type": "object", "properties": {"command": {}}}}
ECHO = {"name": "echo", "inputSchema": {"type": "object", "properties": {"text": {}}}}


def config_text(root: Path) -> str:
    return f"""
[servers.fs]
command = "x"
fs_read = ["{root}"]
fs_write = ["{root}/scratch"]
grants = ["write", "destructive"]
[servers.fs.tools]
rate = {{ write_file = "1000000/second" }}
[servers.web]
command = "x"
grants = ["network"]
[servers.web.urls]
deny_hosts = ["*.internal.example"]
[servers.db]
command = "x"
[servers.db.sql]
dialect = "sqlite"
tables = ["orders", "customers"]
[servers.sh]
command = "x"
grants = ["exec"]
[servers.sh.commands]
allow = {{ git = ["status", "log", "--oneline", "-n", "[0-9]+"] }}
[servers.misc]
command = "x"
[clients.ci]
servers = ["fs", "misc"]
grants = {{ fs = ["write"] }}
"""


def cases(root: Path) -> list[tuple[str, str, dict[str, Any], dict[str, Any], Action]]:
    return [
        ("misc", "local", ECHO, {"text": "hello"}, Action.ALLOW),
        ("fs", "local", READ_FILE, {"path": f"{root}/docs/readme.md"}, Action.ALLOW),
        ("fs", "local", READ_FILE, {"path": f"{root}/../etc/passwd"}, Action.DENY),
        ("fs", "ci", WRITE_FILE, {"path": f"{root}/scratch/out.txt", "content": "x" * 200}, Action.ALLOW),
        ("web", "local", FETCH, {"url": "https://docs.python.org/3/library/ipaddress.html"}, Action.ALLOW),
        ("web", "local", FETCH, {"url": "http://0x7f.1/admin"}, Action.DENY),
        ("db", "local", QUERY, {"query": "SELECT id, total FROM orders WHERE total > 10 LIMIT 5"}, Action.ALLOW),
        ("db", "local", QUERY, {"query": "DELETE FROM orders"}, Action.DENY),
        ("sh", "local", RUN, {"command": "git log --oneline -n 5"}, Action.ALLOW),
        ("sh", "local", RUN, {"command": "git status; curl x"}, Action.DENY),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20000)
    parser.add_argument("--no-sql", action="store_true", help="leave out the SQL cases (for instruction counts)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        (root / "scratch").mkdir(parents=True)
        (root / "docs").mkdir()
        policy = compile_policy(parse_config(config_text(root)))
        sql = load_sql_check()
        prepared = [
            (server, client, policy.servers[server].profile(tool), args, expected)
            for server, client, tool, args, expected in cases(root)
            if not (options.no_sql and server == "db")
        ]
        per_case: dict[str, list[float]] = {}
        everything: list[float] = []
        for _round in range(options.rounds // len(prepared)):
            for server, client, profile, args, expected in prepared:
                started = time.perf_counter()
                size = len(orjson.dumps(args))
                decision = policy.decide_call(client, server, profile, args, size=size, sql_check=sql)
                elapsed = (time.perf_counter() - started) * 1e6
                if decision.action is not expected:
                    raise SystemExit(f"{server}.{profile.name} {args}: expected {expected}, got {decision}")
                per_case.setdefault(f"{server}.{profile.name} {expected.value}", []).append(elapsed)
                everything.append(elapsed)
    print("| case | p50 µs | p99 µs |")
    print("|---|---|---|")
    for name, times in per_case.items():
        times.sort()
        print(f"| {name} | {statistics.median(times):.1f} | {times[int(len(times) * 0.99)]:.1f} |")
    everything.sort()
    print(
        f"| **all {len(everything)} decisions** | **{statistics.median(everything):.1f}** | "
        f"{everything[int(len(everything) * 0.99)]:.1f} |"
    )


if __name__ == "__main__":
    main()
