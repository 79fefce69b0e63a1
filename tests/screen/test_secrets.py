"""Secrets in text: each is found with its span, shown only as a prefix and a length, and placeholders are left alone."""

from __future__ import annotations

import pytest

from bastion.screen.findings import Severity
from bastion.screen.index import TextIndex
from bastion.screen.secrets import MARKER_SECRET, secret_rules, secrets

GITHUB = "ghp_" + "a1B2" * 9  # built here so no scanner mistakes the test for a leak


def found(text: str) -> list[tuple[str, Severity, str, str]]:
    """Rule, severity, excerpt and the redacted span of each secret in `text`."""
    return [(f.rule, f.severity, f.excerpt, text[s:e]) for f, (s, e, _) in secrets(TextIndex(text), "w")]


def test_a_token_is_found_whole_and_its_excerpt_shows_only_a_prefix_and_length() -> None:
    assert found(f"token {GITHUB} here") == [("secret.github_token", Severity.HIGH, "ghp_… [40 characters]", GITHUB)]


def test_every_secret_is_replaced_by_the_redaction_marker() -> None:
    [(_, (_, _, marker))] = secrets(TextIndex(GITHUB), "w")
    assert marker == MARKER_SECRET


def test_an_aws_documentation_key_is_only_low() -> None:
    assert [(r, s) for r, s, _, _ in found("key AKIAIOSFODNN7EXAMPLE")] == [("secret.aws_access_key", Severity.LOW)]


def test_only_the_password_of_a_connection_string_is_redacted() -> None:
    text = "postgres://app:S3cr3t-Pa55w0rd@db:5432/x"
    assert found(text) == [("secret.connection_string", Severity.HIGH, "postgres://app:…", "S3cr3t-Pa55w0rd")]


def test_assignments_are_medium_or_high_by_how_generated_the_value_looks() -> None:
    assert [(s, v) for _, s, _, v in found("password=hunter2xyz!")] == [(Severity.MEDIUM, "hunter2xyz!")]
    assert [(s, v) for _, s, _, v in found("DB_PASSWORD=Xk9#mQ2$vL8@pR4z")] == [(Severity.HIGH, "Xk9#mQ2$vL8@pR4z")]


@pytest.mark.parametrize(
    "text", ["postgres://app:${DB_PASSWORD}@db/x", "password=changeme", "api_key = Optional[str]", "plain prose"]
)
def test_placeholders_references_and_types_are_not_secrets(text: str) -> None:
    assert found(text) == []


def test_secret_rules_lists_only_the_high_ones_leaving_in_an_argument() -> None:
    assert secret_rules(f"use {GITHUB} and sk_test_{'a' * 20}") == ["secret.github_token"]
    assert secret_rules("nothing secret") == []
