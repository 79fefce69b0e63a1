"""A call's arguments against one server's rules: the shape first, then every string, then git."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bastion.config.load import parse_config
from bastion.policy.arguments import STUFFED_CHARS, argument_refusal, leaf_kind, needs_resolution, read_strings
from bastion.policy.compile import server_policy
from bastion.policy.leaves import Leaf
from bastion.policy.profile import ArgKind, ToolProfile
from bastion.policy.rules import ServerPolicy


def rules(toml: str = "") -> ServerPolicy:
    return server_policy("s", parse_config('[servers.s]\ncommand = "x"\n' + toml).servers["s"], None)


def profile(server: ServerPolicy, name: str, *arguments: str, closed: bool = True) -> ToolProfile:
    """A tool declaring string `arguments`; `closed`: its schema refuses any other (`additionalProperties`)."""
    schema: dict[str, Any] = {"type": "object", "properties": {argument: {"type": "string"} for argument in arguments}}
    if closed:
        schema["additionalProperties"] = False
    return server.profile({"name": name, "inputSchema": schema})


def rule_of(server: ServerPolicy, tool: ToolProfile, arguments: Any, size: int = 10) -> str | None:
    verdict = argument_refusal(server, tool, arguments, size, None, None)
    return None if verdict is None else verdict.rule


def test_the_shape_is_judged_before_any_string() -> None:
    server = rules("max_argument_bytes = 100\n")
    tool = profile(server, "read_file", "path")
    assert rule_of(server, tool, ["/etc/passwd"]) == "arguments.not_object"
    assert rule_of(server, tool, {"path": "/etc/passwd"}, size=101) == "arguments.size"
    assert rule_of(server, tool, {"path": "a", "extra": "/etc/passwd"}) == "arguments.undeclared"
    assert rule_of(server, tool, {"path": "/etc/passwd"}) is not None


def test_missing_arguments_count_as_an_empty_object() -> None:
    server = rules()
    assert argument_refusal(server, profile(server, "list", "path"), None, 0, None, None) is None


def test_without_strict_arguments_undeclared_names_are_still_checked_by_content(tmp_path: Path) -> None:
    server = rules(f'strict_arguments = false\nfs_read = ["{tmp_path}"]\n')
    tool = profile(server, "read_file", "path", closed=False)
    assert rule_of(server, tool, {"path": str(tmp_path / "a"), "note": "hello"}) is None
    assert rule_of(server, tool, {"path": str(tmp_path / "a"), "note": "/etc/shadow"}) == "paths.outside_roots"


def test_a_long_text_is_refused_only_under_a_name_that_carries_no_content() -> None:
    server = rules()
    tool = profile(server, "post", "city", "body")
    long = "word " * (STUFFED_CHARS // 5 + 1)
    assert rule_of(server, tool, {"city": "x", "body": long}) is None
    assert rule_of(server, tool, {"city": long}) == "arguments.stuffed"


def test_a_sql_argument_without_a_loaded_checker_is_refused() -> None:
    server = rules('[servers.s.sql]\ntables = ["users"]\n')
    tool = profile(server, "run", "sql")
    assert rule_of(server, tool, {"sql": "SELECT 1"}) == "sql.unavailable"


def test_the_walk_says_whether_dns_matters_and_skips_plain_arguments() -> None:
    server = rules('[servers.s.arguments]\nplain = ["link"]\n')
    fetch = profile(server, "fetch", "url", "link")
    assert needs_resolution(fetch, {"url": "https://example.com/"})
    assert not needs_resolution(fetch, {"link": "https://example.com/"})
    assert not needs_resolution(fetch, "not an object")
    walked = read_strings(fetch, {"url": "https://example.com/", "link": "https://example.com/"})
    assert [(leaf.argument, kind) for leaf, kind, _ in walked.leaves] == [("url", ArgKind.URL)]
    assert not walked.too_deep


def test_a_nested_command_key_is_a_command_only_where_commands_run() -> None:
    server = rules()
    nested = Leaf("filter", "cmd", "ls", 2)
    assert leaf_kind(profile(server, "search", "filter"), nested) == (None, True)
    assert leaf_kind(profile(server, "run", "command", "filter"), nested) == (ArgKind.COMMAND, False)
    assert leaf_kind(profile(server, "search", "filter"), Leaf("filter", "filter", "/etc/hosts", 1)) == (
        ArgKind.PATH,
        True,
    )
