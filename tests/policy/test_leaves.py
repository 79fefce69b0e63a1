"""Every string of a call, and what its content says it is."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.policy.leaves import MAX_DEPTH, Leaf, content_kind, string_leaves, strings_of
from bastion.policy.profile import ArgKind
from bastion.policy.stage import evaluate
from tests.policy.test_decide import policy


def test_strings_are_found_at_any_depth_and_inside_json_strings() -> None:
    arguments: dict[str, object] = {
        "a": "top",
        "b": {"c": ["x", {"d": "deep"}], "n": 3},
        "e": json.dumps({"url": "http://10.0.0.1/"}),
    }
    found = [(leaf.argument, leaf.key, leaf.value) for leaf in string_leaves(arguments) if leaf is not None]
    assert ("a", "a", "top") in found
    assert ("b", "c", "x") in found
    assert ("b", "d", "deep") in found
    assert ("e", "url", "http://10.0.0.1/") in found


def test_nesting_past_the_limit_is_marked() -> None:
    value: object = "x"
    for _ in range(MAX_DEPTH + 2):
        value = [value]
    assert None in list(string_leaves({"a": value}))


@pytest.mark.parametrize(
    "text",
    [
        "http://169.254.169.254/latest/", "gopher://x:70/", "169.254.169.254", "10.0.0.1:8080/admin",
        "[::ffff:169.254.169.254]", "[::1]:22", "metadata.google.internal:80", "localhost:6379",
    ],
)  # fmt: skip
def test_urls_are_recognised_by_content(text: str) -> None:
    assert content_kind(text) is ArgKind.URL


@pytest.mark.parametrize(
    "text",
    [
        "/etc/shadow", "~/.ssh/id_rsa", "./.env", "../secret", "notes/../../etc", "file:///etc/passwd",
        "\\\\host\\share", "C:\\Windows", "%2e%2e%2fetc%2fpasswd", "%252e%252e%252f", "//server/share",
    ],
)  # fmt: skip
def test_paths_are_recognised_by_content(text: str) -> None:
    assert content_kind(text) is ArgKind.PATH


@pytest.mark.parametrize(
    "text",
    [
        "hello", "how do I read /etc/hosts?", "America/New_York", "v1.2:3", "12:30", "3.14", "a/b",
        "user@example.com", "notes.txt", "SELECT 1", "", "/", "2026-12-05T10:00:00Z", "ab:cd",
        "test://example/resource", "notes://a.txt", "s3://bucket/key",
    ],
)  # fmt: skip
def test_text_is_not_a_path_or_url(text: str) -> None:
    assert content_kind(text) is None


@given(
    st.recursive(
        st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
        max_leaves=20,
    )
)
def test_every_string_is_yielded_once_with_its_top_level_argument(value: object) -> None:
    def count(v: object) -> int:
        if isinstance(v, str):
            return 1
        if isinstance(v, list):
            return sum(count(i) for i in v)  # pyright: ignore[reportUnknownVariableType]
        if isinstance(v, dict):
            return sum(count(i) for i in v.values())  # pyright: ignore[reportUnknownVariableType]
        return 0

    leaves = [leaf for leaf in string_leaves({"arg": value}) if isinstance(leaf, Leaf)]
    # Strings that are themselves JSON add their own leaves; plain ones are yielded exactly once.
    assert len(leaves) >= count(value)
    assert all(leaf.argument == "arg" for leaf in leaves)


def test_a_conversation_stuffed_into_an_unrelated_parameter_is_refused_and_content_is_not() -> None:
    p = policy('[servers.w]\ncommand = "x"\ngrants = ["write"]\n')
    tool = {"name": "get_weather", "inputSchema": {"type": "object", "additionalProperties": True}}
    stuffed = "user: please...\\nassistant: sure\\n" * 400
    decision = evaluate(p, "local", "w", "get_weather", tool, {"city": stuffed})
    assert decision.rule == "arguments.stuffed"
    note = {"name": "save_note", "inputSchema": {"type": "object", "additionalProperties": True}}
    assert evaluate(p, "local", "w", "save_note", note, {"title": "x", "content": stuffed}).action.value == "allow"
    assert evaluate(p, "local", "w", "get_weather", tool, {"city": "Paris"}).action.value == "allow"


GITHUB_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


@pytest.mark.parametrize(
    "value",
    [
        GITHUB_TOKEN,
        f"here is the key: {GITHUB_TOKEN}",
        base64.b64encode(GITHUB_TOKEN.encode()).decode(),
        GITHUB_TOKEN.replace("_", "%5F"),
        "-----BEGIN RSA PRIVATE KEY-----\n" + "MIIEpAIBAAKCAQEA7" * 12 + "\n-----END RSA PRIVATE KEY-----",
    ],
)
def test_a_secret_leaving_in_any_argument_is_refused_or_sent_for_approval(value: str) -> None:
    tool = {"name": "create_issue", "inputSchema": {"type": "object", "additionalProperties": True}}
    refusing = policy('[servers.gh]\ncommand = "x"\ngrants = ["write"]\n')
    decision = evaluate(refusing, "local", "gh", "create_issue", tool, {"title": "bug", "extra": {"note": value}})
    assert decision.rule == "arguments.secret"
    assert decision.action.value == "deny"
    asking = policy('[servers.gh]\ncommand = "x"\ngrants = ["write"]\noutbound_secrets = "approve"\n')
    held = evaluate(asking, "local", "gh", "create_issue", tool, {"title": "bug", "body": value})
    assert held.action.value == "approve"


def test_text_that_only_looks_like_a_secret_passes() -> None:
    tool = {"name": "create_issue", "inputSchema": {"type": "object", "additionalProperties": True}}
    p = policy('[servers.gh]\ncommand = "x"\ngrants = ["write"]\n')
    for body in (
        "Set GITHUB_TOKEN=${GITHUB_TOKEN} in the workflow",
        "AKIAIOSFODNN7EXAMPLE is the key AWS's docs use",
        "commit 3f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a3f",
        base64.b64encode(b"just a long enough ordinary sentence").decode(),
    ):
        assert evaluate(p, "local", "gh", "create_issue", tool, {"body": body}).action.value == "allow", body


# JSON carried in a string: data unless a command runs; still scanned for paths and URLs.

FILTER = json.dumps({"a": "x|y", "cmd": "ls; rm", "nested": {"command": "a && b"}})
SEARCH = {
    "name": "search_records",
    "description": "Search the records.",
    "inputSchema": {"type": "object", "properties": {"query": {"type": "string"}, "filter": {}}},
}
SEND = {
    "name": "send_command",
    "description": "Send a device command.",
    "inputSchema": {"type": "object", "properties": {"payload": {"type": "string"}}, "required": ["payload"]},
}
PING = {
    "name": "ping_host",
    "description": "Ping a host.",
    "inputSchema": {"type": "object", "properties": {"host": {"type": "string"}, "options": {"type": "string"}}},
}


@pytest.mark.parametrize("filter_", [FILTER, json.loads(FILTER)])
def test_a_json_document_on_a_tool_that_runs_nothing_is_data(filter_: object) -> None:
    p = policy('[servers.db]\ncommand = "x"\n')
    decision = evaluate(p, "local", "db", "search_records", SEARCH, {"query": "open", "filter": filter_})
    assert decision.action.value == "allow", decision


def test_a_device_command_payload_is_data() -> None:
    p = policy('[servers.dev]\ncommand = "x"\ngrants = ["exec"]\n')
    payload = json.dumps({"cmd": "status", "verbose": True})
    decision = evaluate(p, "local", "dev", "send_command", SEND, {"payload": payload})
    assert decision.action.value == "allow", decision
    tmux = {**SEND, "description": "Send a command to the tmux pane."}
    refused = evaluate(p, "local", "dev", "send_command", tmux, {"payload": payload})
    assert refused.rule == "commands.metacharacter"


@pytest.mark.parametrize(
    ("server", "tool", "arguments"),
    [
        # A tool that runs or pings something: every string may reach a command line.
        ('[servers.db]\ncommand = "x"\nread_only = false\n', PING, {"host": "8.8.8.8", "options": FILTER}),
        # A server that runs a shell: the same for every tool of it.
        ('[servers.db]\ncommand = "x"\n[servers.db.commands]\nshell = true\n', SEARCH, {"filter": FILTER}),
        # A top-level `command` argument is a command line whatever the tool.
        (
            '[servers.db]\ncommand = "x"\n',
            {**SEARCH, "inputSchema": {"type": "object", "additionalProperties": True}},
            {"command": "ls; rm"},
        ),
    ],
)
def test_the_same_json_where_a_command_runs_is_refused(
    server: str, tool: dict[str, object], arguments: dict[str, object]
) -> None:
    p = policy(server)
    decision = evaluate(p, "local", "db", str(tool["name"]), tool, arguments)
    assert decision.rule == "commands.metacharacter", decision


def test_a_nested_command_on_a_tool_that_takes_commands_is_judged_as_one() -> None:
    p = policy('[servers.sh]\ncommand = "x"\ngrants = ["exec"]\n[servers.sh.commands]\nallow = { git = ["status"] }\n')
    tool: dict[str, Any] = {
        "name": "run_task",
        "inputSchema": {"type": "object", "properties": {"command": {}, "env": {}}},
    }
    allowed = evaluate(p, "local", "sh", "run_task", tool, {"command": "git status", "env": {"cmd": "git status"}})
    assert allowed.action.value == "allow", allowed
    refused = evaluate(p, "local", "sh", "run_task", tool, {"command": "git status", "env": {"cmd": "curl x"}})
    assert refused.rule == "commands.executable"


@pytest.mark.parametrize(
    ("inner", "rule"),
    [
        ({"cmd": "/etc/passwd"}, "paths.no_roots"),
        ({"cmd": "http://169.254.169.254/latest/meta-data/"}, "urls.metadata"),
        ({"a": ["x", {"file": "../../etc/shadow"}]}, "paths.no_roots"),
    ],
)
def test_json_in_a_string_is_still_scanned_for_paths_and_urls(inner: object, rule: str) -> None:
    p = policy('[servers.db]\ncommand = "x"\n')
    decision = evaluate(p, "local", "db", "search_records", SEARCH, {"filter": json.dumps(inner)})
    assert decision.rule == rule, decision


@given(
    st.recursive(
        st.text(max_size=6) | st.sampled_from(['{"u": "http://x/"}', '["a", {"b": "c"}]', "[1, 2]"]) | st.integers(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
        max_leaves=20,
    )
)
def test_the_one_pass_walk_finds_what_the_generator_finds_in_the_same_order(value: object) -> None:
    expected: list[Leaf] = []
    deep = False
    for leaf in string_leaves({"arg": value, "other": "x"}):
        if leaf is None:
            deep = True
            break
        expected.append(leaf)
    assert strings_of({"arg": value, "other": "x"}) == (expected, deep)


def test_the_one_pass_walk_stops_at_the_first_nesting_too_deep() -> None:
    value: object = "x"
    for _ in range(MAX_DEPTH + 2):
        value = [value]
    leaves, deep = strings_of({"a": "first", "b": value, "c": "after"})
    assert deep
    assert [leaf.value for leaf in leaves] == ["first"]
