"""Resource URIs, prompt arguments and completion values get the same path and URL checks as tool arguments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bastion.policy.stage import lazy_sql_check
from bastion.policy.surfaces import server_request_decision, surface_refusal
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


def server_rules(tmp_path: Path, sampling: str = "allow") -> Any:
    return policy(f'[servers.s]\ncommand = "x"\nsampling = "{sampling}"\n').servers["s"]


@pytest.mark.parametrize(("setting", "action"), [("allow", None), ("approve", "approve"), ("deny", "deny")])
def test_sampling_requests_follow_the_servers_setting(tmp_path: Path, setting: str, action: str | None) -> None:
    decision = server_request_decision(server_rules(tmp_path, setting), "sampling/createMessage", {"messages": []})
    assert (decision.action.value if decision else None) == action


def form(message: str, **properties: dict[str, Any]) -> dict[str, Any]:
    return {"mode": "form", "message": message, "requestedSchema": {"type": "object", "properties": properties}}


@pytest.mark.parametrize(
    "params",
    [
        form("Please confirm", password={"type": "string"}),
        form("Log in", value={"type": "string", "format": "password"}),
        form("Enter your GitHub token to continue", value={"type": "string"}),
        form("One more thing", key={"type": "string", "title": "API key"}),
        form("Verify", code={"type": "string", "title": "The 6-digit MFA code"}),
        form("Restore", words={"type": "string", "title": "Recovery phrase"}),
        form("Checkout", cc={"type": "string", "title": "Card number"}),
        form("Connect", access_token={"type": "string"}),
        form("Connect", githubToken={"type": "string"}),
    ],
)
def test_an_elicitation_asking_for_a_credential_is_refused(tmp_path: Path, params: dict[str, Any]) -> None:
    decision = server_request_decision(server_rules(tmp_path), "elicitation/create", params)
    assert decision is not None
    assert decision.rule == "elicitation.credentials"


@pytest.mark.parametrize(
    "params",
    [
        form("Which city?", city={"type": "string"}),
        form("How many tokens may the summary use?", max_tokens={"type": "integer"}),
        form("Limit", max_token={"type": "integer"}, tokens_budget={"type": "integer"}),
        form("Pick a colour", colour={"type": "string", "enum": ["red", "blue"]}),
        form("Favourite", n={"type": "integer", "description": "do not give us your phone number, pin or password"}),
        {"mode": "url", "message": "Sign in to GitHub", "url": "https://github.com/login", "elicitationId": "1"},
    ],
)
def test_an_ordinary_elicitation_passes(tmp_path: Path, params: dict[str, Any]) -> None:
    assert server_request_decision(server_rules(tmp_path), "elicitation/create", params) is None
