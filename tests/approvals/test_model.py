"""The approval state machine as values: who decided, how widely, and what a person is shown."""

from __future__ import annotations

from bastion.approvals.model import (
    Approval,
    Grant,
    Scope,
    Status,
    Verdict,
    decide,
    grant_for,
    mask_arguments,
    new_id,
)

CREATED = 1000.0
EXPIRES = 1300.0


def request(**changes: str) -> Approval:
    fields = {"client": "alice", "session": "s1", "server": "fs", "tool": "write_file"} | changes
    return Approval(
        "apr_1", CREATED, EXPIRES, "gw", fields["client"], fields["session"], fields["server"], fields["tool"],
        "write", "{}", "tools.approve",
    )  # fmt: skip


def test_a_denial_records_who_denied_and_makes_no_grant() -> None:
    denied = decide(request(), Verdict(False, "bob", "dashboard", CREATED + 1, Scope.SESSION, reason="no"))
    assert denied is not None
    assert denied.status is Status.DENIED
    assert denied.verdict is not None
    assert denied.verdict.by == "bob"
    assert grant_for(denied) is None


def test_a_verdict_at_the_moment_of_expiry_is_too_late() -> None:
    late = decide(request(), Verdict(True, "bob", "cli", EXPIRES))
    assert late is not None
    assert late.status is Status.EXPIRED
    assert late.verdict is None
    assert decide(late, Verdict(True, "bob", "cli", CREATED)) is None


def test_approving_one_call_makes_no_standing_grant() -> None:
    approved = decide(request(), Verdict(True, "bob", "cli", CREATED + 1))
    assert approved is not None
    assert approved.status is Status.APPROVED
    assert grant_for(approved) is None


def test_a_window_grant_covers_the_same_tool_for_the_same_client_until_it_ends() -> None:
    approved = decide(request(), Verdict(True, "bob", "cli", CREATED + 1, Scope.WINDOW, until=CREATED + 60))
    assert approved is not None
    grant = grant_for(approved)
    assert grant is not None
    assert grant == Grant("alice", "fs", "write_file", None, CREATED + 60, "apr_1", "bob")
    assert grant.covers("alice", "another-session", "fs", "write_file", CREATED + 59)
    assert not grant.covers("alice", "s1", "fs", "write_file", CREATED + 60)
    assert not grant.covers("mallory", "s1", "fs", "write_file", CREATED + 2)
    assert not grant.covers("alice", "s1", "fs", "delete_file", CREATED + 2)


def test_a_session_grant_covers_only_calls_of_that_session() -> None:
    approved = decide(request(), Verdict(True, "bob", "cli", CREATED + 1, Scope.SESSION))
    assert approved is not None
    grant = grant_for(approved)
    assert grant is not None
    assert grant.covers("alice", "s1", "fs", "write_file", CREATED + 10_000)
    assert not grant.covers("alice", "s2", "fs", "write_file", CREATED + 2)


def test_a_decided_request_serialises_its_decision() -> None:
    assert "decision" not in request().to_dict()
    approved = decide(request(), Verdict(True, "bob", "webhook", CREATED + 1, Scope.WINDOW, CREATED + 60, "ok"))
    assert approved is not None
    data = approved.to_dict()
    assert data["status"] == "approved"
    assert data["recent"] == []
    assert data["decision"] == {
        "by": "bob", "channel": "webhook", "at": CREATED + 1, "scope": "window", "until": CREATED + 60, "reason": "ok",
    }  # fmt: skip


def test_masking_reaches_nested_names_and_lists_and_leaves_other_values_alone() -> None:
    shown = mask_arguments({"headers": {"Authorization": "Bearer abc"}, "keys": ["AKIAABCDEFGHIJKLMNOP", 7], "n": 3})
    assert "Bearer abc" not in shown
    assert "AKIAABCDEFGHIJKLMNOP" not in shown
    assert '"n": 3' in shown
    assert "7" in shown


def test_request_ids_are_prefixed_and_do_not_repeat() -> None:
    ids = {new_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(i.startswith("apr_") and len(i) == 20 for i in ids)
