"""Resource URIs, prompt arguments and completion values get the same path and URL checks as tool arguments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bastion.policy.stage import lazy_sql_check
from bastion.policy.surfaces import surface_refusal
from tests.policy.test_decide import policy


@pytest.fixture
def rules(tmp_path: Path) -> Any:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("a", encoding="utf-8")
    return policy(f'[servers.fs]\ncommand = "x"\nfs_read = ["{tmp_path / "data"}"]\n').servers["fs"]


def rule(rules: Any, method: str, params: dict[str, Any]) -> str | None:
    refusal = surface_refusal(rules, method, params, lazy_sql_check)
    return None if refusal is None else refusal.rule


@pytest.mark.parametrize(
    "uri",
    [
        "file:///etc/passwd",
        "file://localhost/etc/shadow",
        "FILE:///etc/passwd",
        "file:///%65tc/passwd",
        "file://{data}/%2e%2e/%2e%2e/etc/passwd",
        "file://{data}/%252e%252e/secret",
        "file://{data}/%c0%ae%c0%ae/secret",
        "file://evil.example/share/x",
    ],
)
def test_file_uris_outside_the_roots_are_refused_in_every_encoding(rules: Any, tmp_path: Path, uri: str) -> None:
    uri = uri.replace("{data}", str(tmp_path / "data"))
    found = rule(rules, "resources/read", {"uri": uri})
    assert found is not None
    assert found.startswith("paths.")
    assert rule(rules, "resources/subscribe", {"uri": uri}) == found


def test_a_file_uri_inside_the_roots_and_a_servers_own_scheme_pass(rules: Any, tmp_path: Path) -> None:
    assert rule(rules, "resources/read", {"uri": f"file://{tmp_path / 'data' / 'a.txt'}"}) is None
    assert rule(rules, "resources/read", {"uri": "notes://a.txt"}) is None
    assert rule(rules, "resources/read", {"uri": "postgres://db/schema/users"}) is None


def test_network_uris_get_the_ssrf_checks(rules: Any) -> None:
    assert rule(rules, "resources/read", {"uri": "http://169.254.169.254/latest/"}) == "urls.metadata"
    assert rule(rules, "resources/read", {"uri": "https://example.com/doc"}) is None


def test_prompt_and_completion_arguments_are_checked_like_tool_arguments(rules: Any, tmp_path: Path) -> None:
    assert rule(rules, "prompts/get", {"name": "summarize", "arguments": {"name": "../../etc/passwd"}}) == (
        "paths.outside_roots"
    )
    assert rule(rules, "prompts/get", {"name": "summarize", "arguments": {"file": "/etc/shadow"}}) is not None
    assert rule(rules, "prompts/get", {"name": "summarize", "arguments": {"name": "a.txt", "tone": "dry"}}) is None
    complete = {"ref": {"type": "ref/prompt", "name": "p"}, "argument": {"name": "x", "value": "http://10.0.0.1/"}}
    assert rule(rules, "completion/complete", complete) == "urls.private_address"
    context: dict[str, Any] = {"ref": {"type": "ref/prompt", "name": "p"}, "argument": {"name": "x", "value": "a"}}
    context["context"] = {"arguments": {"path": "~/.ssh/id_rsa"}}
    assert rule(rules, "completion/complete", context) is not None
    assert (
        rule(
            rules,
            "completion/complete",
            {"ref": {"type": "ref/prompt", "name": "p"}, "argument": {"name": "x", "value": "sum"}},
        )
        is None
    )
