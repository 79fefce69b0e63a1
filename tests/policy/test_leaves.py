"""Every string of a call, and what its content says it is."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.policy.leaves import MAX_DEPTH, Leaf, content_kind, string_leaves
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
