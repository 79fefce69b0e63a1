"""Policy decision time for a typical policy (DNS excluded): goal p50 ≤ 25 µs per call, SQL aside.

The policy is what a filesystem, a fetch, a database and a shell server would be given:
roots, a URL rule, a SQL dialect with a table allowlist, a command allowlist, two clients.
Each case is a realistic call, with the input schema the real server lists (the Node filesystem
server's draft-07 schemas, mcp-server-fetch's and FastMCP's pydantic ones), including calls whose
strings are judged by their content (a nested options object, JSON inside a string). Every
decision is checked against its expected action, so a fast wrong answer cannot pass. Profiles
are built once per tool as the gateway does (at listing time); what is timed is what the policy
stage does per call: the walk that says whether DNS matters, and the decision itself, every
argument constraint included.

    .venv/bin/python bench/policy_bench.py --rounds 20000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

import bastion.policy.arguments as arguments
from bastion.config.load import parse_config
from bastion.policy.compile import compile_policy
from bastion.policy.stage import load_sql_check
from bastion.types import Action

DRAFT_07 = "http://json-schema.org/draft-07/schema#"
READ_FILE = {
    "name": "read_text_file",
    "inputSchema": {
        "$schema": DRAFT_07,
        "type": "object",
        "properties": {
            "path": {"type": "string"},
            "tail": {"description": "If provided, returns only the last N lines of the file", "type": "number"},
            "head": {"description": "If provided, returns only the first N lines of the file", "type": "number"},
        },
        "required": ["path"],
    },
}
WRITE_FILE = {
    "name": "write_file",
    "annotations": {"destructiveHint": True},
    "inputSchema": {
        "$schema": DRAFT_07,
        "type": "object",
        "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
        "required": ["path", "content"],
    },
}
FETCH = {
    "name": "fetch",
    "inputSchema": {
        "description": "Parameters for fetching a URL.",
        "properties": {
            "url": {"description": "URL to fetch", "format": "uri", "minLength": 1, "title": "Url", "type": "string"},
            "max_length": {
                "default": 5000,
                "description": "Maximum number of characters to return.",
                "exclusiveMaximum": 1000000,
                "exclusiveMinimum": 0,
                "title": "Max Length",
                "type": "integer",
            },
            "start_index": {"default": 0, "minimum": 0, "title": "Start Index", "type": "integer"},
            "raw": {"default": False, "title": "Raw", "type": "boolean"},
        },
        "required": ["url"],
        "title": "Fetch",
        "type": "object",
    },
}
QUERY = {
    "name": "read_query",
    "description": "Run a SELECT",
    "inputSchema": {
        "type": "object",
        "properties": {"query": {"type": "string", "description": "SELECT SQL query to execute"}},
        "required": ["query"],
    },
}
RUN = {
    "name": "run_command",
    "inputSchema": {
        "type": "object",
        "properties": {"command": {"type": "string", "description": "The command to run"}},
        "required": ["command"],
    },
}
ECHO = {
    "name": "echo",
    "inputSchema": {
        "$schema": DRAFT_07,
        "type": "object",
        "properties": {"message": {"type": "string", "description": "Message to echo"}},
        "required": ["message"],
    },
}
SEARCH = {
    "name": "search",
    "inputSchema": {
        "properties": {
            "query": {"title": "Query", "type": "string"},
            "options": {
                "anyOf": [{"additionalProperties": True, "type": "object"}, {"type": "null"}],
                "default": None,
                "title": "Options",
            },
        },
        "required": ["query"],
        "title": "searchArguments",
        "type": "object",
    },
}
LOOKUP = {
    "name": "lookup_records",
    "inputSchema": {
        "properties": {
            "filter": {"description": "A JSON filter document", "title": "Filter", "type": "string"},
            "limit": {"default": 10, "title": "Limit", "type": "integer"},
        },
        "required": ["filter"],
        "title": "lookup_recordsArguments",
        "type": "object",
    },
}


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
    options = {"limit": 5, "site": "https://docs.python.org/3/whatsnew/", "tags": ["python", "release"]}
    document = '{"kind": "note", "labels": ["x|y", "todo"], "updated": {"after": "2026-11-01"}}'
    return [
        ("misc", "local", ECHO, {"message": "hello"}, Action.ALLOW),
        ("misc", "local", SEARCH, {"query": "release notes 3.12", "options": options}, Action.ALLOW),
        ("misc", "local", LOOKUP, {"filter": document, "limit": 20}, Action.ALLOW),
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


def stage_walk() -> tuple[Callable[[Any, object], Any], bool]:
    """What the policy stage asks before deciding (does DNS matter?) as this checkout spells it, and
    whether that walk is handed to the decision (before `read_strings`, the decision walked again)."""
    walk = getattr(arguments, "read_strings", None)
    if walk is not None:
        return walk, True
    return arguments.needs_resolution, False


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
        walk, handed = stage_walk()
        per_case: dict[str, list[float]] = {}
        everything: list[float] = []
        for _round in range(options.rounds // len(prepared)):
            for server, client, profile, args, expected in prepared:
                started = time.perf_counter()
                size = len(orjson.dumps(args))
                walked = walk(profile, args)
                extra = {"strings": walked} if handed else {}
                decision = policy.decide_call(client, server, profile, args, size=size, sql_check=sql, **extra)
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
