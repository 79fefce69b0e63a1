"""Policy decisions: deny by default, read-only by default, grants per server, tool and client, argument constraints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bastion.config.load import parse_config
from bastion.policy.compile import compile_policy
from bastion.policy.decide import Policy
from bastion.policy.stage import load_sql_check
from bastion.types import Action, Decision

READ_FILE = {
    "name": "read_file",
    "description": "Read a file",
    "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}}},
}
WRITE_FILE = {
    "name": "write_file",
    "description": "Write a file",
    "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}, "content": {"type": "string"}}},
}
DELETE = {"name": "delete_repo", "inputSchema": {"type": "object", "properties": {"repo": {"type": "string"}}}}
LYING = {**WRITE_FILE, "name": "save_file", "annotations": {"readOnlyHint": True}}
FETCH = {"name": "fetch", "inputSchema": {"type": "object", "properties": {"url": {"type": "string"}}}}
QUERY = {
    "name": "read_query",
    "description": "Run a SELECT on the SQLite database",
    "inputSchema": {"type": "object", "properties": {"query": {"type": "string"}}},
}
SEARCH = {"name": "search", "inputSchema": {"type": "object", "properties": {"query": {"type": "string"}}}}
RUN = {
    "name": "run_command",
    "inputSchema": {"type": "object", "properties": {"command": {"type": "string"}}},
}


def policy(toml: str) -> Policy:
    return compile_policy(parse_config(toml), {"HOME": "/nonexistent-home"})


def decide(p: Policy, server: str, tool: dict[str, Any], args: dict[str, Any], client: str = "local") -> Decision:
    rules = p.servers.get(server)
    assert rules is not None
    return p.decide_call(client, server, rules.profile(tool), args, sql_check=load_sql_check())


@pytest.fixture
def data(tmp_path: Path) -> Path:
    (tmp_path / "data" / "scratch").mkdir(parents=True)
    (tmp_path / "data" / "a.txt").write_text("a", encoding="utf-8")
    return tmp_path / "data"


def fs(data: Path, extra: str = "") -> Policy:
    return policy(f'[servers.fs]\ncommand = "x"\nfs_read = ["{data}"]\nfs_write = ["{data}/scratch"]\n{extra}')


def test_a_read_tool_is_allowed_and_names_why(data: Path) -> None:
    decision = decide(fs(data), "fs", READ_FILE, {"path": str(data / "a.txt")})
    assert (decision.action, decision.rule, decision.risk) == (Action.ALLOW, "read", "read")


def test_a_write_tool_is_hidden_until_write_is_granted(data: Path) -> None:
    denied = decide(fs(data), "fs", WRITE_FILE, {"path": str(data / "scratch/b.txt"), "content": "x"})
    assert (denied.action, denied.rule, denied.hidden) == (Action.DENY, "capability.write", True)
    granted = decide(
        fs(data, 'grants = ["write"]'), "fs", WRITE_FILE, {"path": str(data / "scratch/b.txt"), "content": "x"}
    )
    assert (granted.action, granted.rule) == (Action.ALLOW, "grant.write")


def test_a_write_grant_does_not_grant_destruction(data: Path) -> None:
    decision = decide(fs(data, 'grants = ["write"]'), "fs", DELETE, {"repo": str(data)})
    assert decision.rule == "capability.destructive"


def test_annotations_never_lower_the_risk_class(data: Path) -> None:
    decision = decide(fs(data), "fs", LYING, {"path": str(data / "a.txt"), "content": "x"})
    assert (decision.action, decision.rule) == (Action.DENY, "capability.write")


def test_a_per_tool_grant_allows_one_tool_only(data: Path) -> None:
    p = fs(data, '[servers.fs.tools]\ngrant = ["write_file"]')
    assert decide(p, "fs", WRITE_FILE, {"path": str(data / "scratch/x"), "content": ""}).rule == "tools.grant"
    assert decide(p, "fs", DELETE, {"repo": "r"}).action is Action.DENY


def test_writes_must_stay_in_writable_roots(data: Path) -> None:
    p = fs(data, 'grants = ["write"]')
    outside = decide(p, "fs", WRITE_FILE, {"path": str(data / "a.txt"), "content": "x"})
    assert (outside.action, outside.rule, outside.hidden) == (Action.DENY, "paths.outside_roots", False)


def test_a_path_escape_is_refused_and_its_neighbour_allowed(data: Path) -> None:
    p = fs(data)
    assert decide(p, "fs", READ_FILE, {"path": str(data / "../../etc/passwd")}).rule == "paths.outside_roots"
    assert decide(p, "fs", READ_FILE, {"path": str(data / "notes..v2.txt")}).action is Action.ALLOW


def test_relative_paths_resolve_against_the_first_root(data: Path) -> None:
    p = fs(data)
    assert decide(p, "fs", READ_FILE, {"path": "a.txt"}).action is Action.ALLOW
    assert decide(p, "fs", READ_FILE, {"path": "../a.txt"}).rule == "paths.outside_roots"


def test_a_server_without_roots_refuses_every_path() -> None:
    p = policy('[servers.fs]\ncommand = "x"')
    assert decide(p, "fs", READ_FILE, {"path": "/etc/hostname"}).rule == "paths.no_roots"


def test_undeclared_arguments_are_refused(data: Path) -> None:
    decision = decide(fs(data), "fs", READ_FILE, {"path": str(data / "a.txt"), "mode": "w"})
    assert decision.rule == "arguments.undeclared"
    relaxed = fs(data, "strict_arguments = false")
    assert decide(relaxed, "fs", READ_FILE, {"path": str(data / "a.txt"), "mode": "w"}).action is Action.ALLOW


def test_oversized_arguments_are_refused(data: Path) -> None:
    p = fs(data, "max_argument_bytes = 100")
    rules = p.servers["fs"]
    decision = p.decide_call("local", "fs", rules.profile(READ_FILE), {"path": str(data / "a.txt")}, size=101)
    assert decision.rule == "arguments.size"


def test_arguments_that_are_not_an_object_are_refused(data: Path) -> None:
    p = fs(data)
    assert p.decide_call("local", "fs", p.servers["fs"].profile(READ_FILE), ["x"]).rule == "arguments.not_object"


def test_tool_lists_and_the_kill_switch_hide_tools(data: Path) -> None:
    p = fs(data, '[servers.fs.tools]\ndeny = ["read_file"]')
    assert decide(p, "fs", READ_FILE, {"path": "a.txt"}).rule == "tools.deny"
    only = fs(data, '[servers.fs.tools]\nallow = ["list"]')
    assert decide(only, "fs", READ_FILE, {"path": "a.txt"}).rule == "tools.allow"
    disabled = fs(data, '[servers.fs.tools]\ndisabled = ["read_file"]')
    assert decide(disabled, "fs", READ_FILE, {"path": "a.txt"}).rule == "kill"
    live = fs(data)
    killed = live.decide_call(
        "local", "fs", live.servers["fs"].profile(READ_FILE), {"path": "a.txt"}, kills=frozenset({("fs", "read_file")})
    )
    assert (killed.rule, killed.hidden) == ("kill", True)


def test_an_approval_rule_asks_after_the_constraints_pass(data: Path) -> None:
    p = fs(data, '[servers.fs.tools]\napprove = ["read_file"]')
    assert decide(p, "fs", READ_FILE, {"path": "a.txt"}).action is Action.APPROVE
    assert decide(p, "fs", READ_FILE, {"path": "/etc/passwd"}).rule == "paths.outside_roots"


def test_two_clients_share_a_server_with_different_rights(data: Path) -> None:
    p = fs(data, '[clients.writer]\ngrants = { fs = ["write"] }\n[clients.reader]\nservers = ["fs"]\n')
    args = {"path": str(data / "scratch/n.txt"), "content": "x"}
    assert decide(p, "fs", WRITE_FILE, args, client="writer").rule == "client.grant.write"
    assert decide(p, "fs", WRITE_FILE, args, client="reader").rule == "capability.write"


def test_a_client_limited_to_other_servers_sees_nothing_here(data: Path) -> None:
    p = policy(
        f'[servers.fs]\ncommand = "x"\nfs_read = ["{data}"]\n[servers.other]\ncommand = "y"\n'
        '[clients.bot]\nservers = ["other"]\ndeny_tools = ["other.read_file"]\n'
    )
    assert decide(p, "fs", READ_FILE, {"path": "a.txt"}, client="bot").rule == "client.servers"
    assert p.decide_tool("bot", "other", p.servers["other"].profile(READ_FILE)).rule == "client.deny_tools"


def test_an_unconfigured_server_gets_nothing() -> None:
    p = policy('[servers.fs]\ncommand = "x"')
    profile = p.servers["fs"].profile(READ_FILE)
    decision = p.decide_call("local", "elsewhere", profile, {})
    assert (decision.action, decision.rule) == (Action.DENY, "server.unconfigured")


def test_ssrf_spellings_are_refused_and_a_public_address_with_an_ip_path_allowed() -> None:
    p = policy('[servers.web]\ncommand = "x"\ngrants = ["network"]')
    for url in ("http://127.0.0.1/", "http://2130706433/", "http://0x7f.1/", "http://[::ffff:127.0.0.1]/"):
        assert decide(p, "web", FETCH, {"url": url}).action is Action.DENY, url
    assert decide(p, "web", FETCH, {"url": "http://169.254.169.254/latest/meta-data"}).rule == "urls.metadata"
    assert decide(p, "web", FETCH, {"url": "http://93.184.215.14/10.0.0.1"}).action is Action.ALLOW


def test_refusals_of_benign_calls_name_the_setting_that_would_allow_them(data: Path) -> None:
    # A path outside every root: the roots are named, and the setting that adds one.
    outside = decide(fs(data), "fs", READ_FILE, {"path": "/Users/alice/My Documents/Q3 plan.md"})
    assert outside.rule == "paths.outside_roots"
    assert repr(str(data)) in outside.reason
    assert outside.reason.endswith("to servers.fs.fs_read")
    nothing = decide(policy('[servers.fs]\ncommand = "x"'), "fs", READ_FILE, {"path": "/srv/a.txt"})
    assert nothing.rule == "paths.no_roots"
    assert "servers.fs.fs_read" in nothing.reason
    # A loopback URL: refused, and the operator's switch for it is named (not weakened: an
    # allow_hosts entry alone does not lift it).
    web = policy('[servers.web]\ncommand = "x"\ngrants = ["network"]')
    local = decide(web, "web", FETCH, {"url": "http://localhost:3000/health"})
    assert local.rule == "urls.private_address"
    assert "servers.web.urls.allow_private = true" in local.reason
    listed = policy(
        '[servers.web]\ncommand = "x"\ngrants = ["network"]\n[servers.web.urls]\nallow_hosts = ["localhost"]'
    )
    assert decide(listed, "web", FETCH, {"url": "http://localhost:3000/health"}).rule == "urls.private_address"
    private = policy('[servers.web]\ncommand = "x"\ngrants = ["network"]\n[servers.web.urls]\nallow_private = true')
    assert decide(private, "web", FETCH, {"url": "http://localhost:3000/health"}).action is Action.ALLOW
    metadata = decide(private, "web", FETCH, {"url": "http://169.254.169.254/latest/meta-data"})
    assert metadata.rule == "urls.metadata"
    assert "allow_private" not in metadata.reason
    # A Windows path: refused, saying why (this POSIX host has no such file) and what to give instead.
    windows = decide(fs(data), "fs", READ_FILE, {"path": "C:\\Users\\alice\\Documents\\notes.txt"})
    assert windows.rule == "paths.windows_form"
    assert "POSIX" in windows.reason


def test_dns_answers_are_checked_when_a_resolver_is_given() -> None:
    p = policy('[servers.web]\ncommand = "x"\ngrants = ["network"]')
    profile = p.servers["web"].profile(FETCH)
    args = {"url": "https://rebind.example/"}
    decision = p.decide_call("local", "web", profile, args, resolve=lambda _host: ["93.184.215.14", "10.0.0.5"])
    assert decision.rule == "urls.private_address"
    fine = p.decide_call("local", "web", profile, args, resolve=lambda _host: ["93.184.215.14"])
    assert fine.action is Action.ALLOW


def test_sql_writes_are_refused_and_a_select_mentioning_delete_allowed() -> None:
    p = policy('[servers.db]\ncommand = "x"\n[servers.db.sql]\ndialect = "sqlite"')
    assert decide(p, "db", QUERY, {"query": "DELETE FROM notes"}).rule == "sql.write"
    assert decide(p, "db", QUERY, {"query": "SELECT 1; DROP TABLE notes"}).rule == "sql.stacked"
    assert decide(p, "db", QUERY, {"query": "SELECT 'delete from notes' AS x"}).action is Action.ALLOW


def test_a_search_query_is_not_parsed_as_sql() -> None:
    p = policy('[servers.docs]\ncommand = "x"')
    assert decide(p, "docs", SEARCH, {"query": "how to DROP TABLE safely; and more"}).action is Action.ALLOW


def test_shell_injection_is_refused_and_an_allowed_command_passes() -> None:
    p = policy('[servers.sh]\ncommand = "x"\ngrants = ["exec"]\n[servers.sh.commands]\nallow = { echo = [".*"] }')
    assert decide(p, "sh", RUN, {"command": "echo hi; touch /tmp/pwned"}).rule == "commands.metacharacter"
    assert decide(p, "sh", RUN, {"command": "curl http://x"}).rule == "commands.executable"
    assert decide(p, "sh", RUN, {"command": "echo hello"}).action is Action.ALLOW


def test_argument_kinds_can_be_declared_and_corrected() -> None:
    tool = {"name": "open", "inputSchema": {"type": "object", "properties": {"target": {}, "path": {}}}}
    p = policy(
        '[servers.x]\ncommand = "x"\nread_only = false\n[servers.x.arguments]\npath = ["open.target"]\nplain = ["path"]'
    )
    assert decide(p, "x", tool, {"target": "/etc/passwd"}).rule == "paths.no_roots"
    assert decide(p, "x", tool, {"path": "/etc/passwd"}).action is Action.ALLOW
