"""The decision a call carries is recorded in every shape its audit entries have had: policy's
allow, deny and approve, a monitored server's `enforced: false`, a candidate policy's decision
beside the live one, an approval granted (by a person on a channel, or by a standing grant) or
refused, and a hidden tool's denial; and a record reads back into the same decision."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bastion.types import Action, Approved, Decision

HELD = Decision(Action.APPROVE, "tools.approve", "'echo' is in servers.s.tools.approve", "read")


def test_a_policy_decision_records_action_rule_reason_and_risk_in_that_order() -> None:
    record = Decision(Action.ALLOW, "read", "'echo' is classified read", "read").to_record()
    assert list(record.items()) == [
        ("action", "allow"),
        ("rule", "read"),
        ("reason", "'echo' is classified read"),
        ("risk", "read"),
    ]


def test_a_decision_without_a_risk_records_none() -> None:
    record = Decision(Action.DENY, "rate.tool", "the rate limit is used up").to_record()
    assert record == {"action": "deny", "rule": "rate.tool", "reason": "the rate limit is used up"}


def test_hidden_is_not_recorded() -> None:
    hidden = Decision(Action.DENY, "tools.deny", "'wipe' is in servers.s.tools.deny", "destructive", hidden=True)
    assert hidden.to_record() == {
        "action": "deny",
        "rule": "tools.deny",
        "reason": "'wipe' is in servers.s.tools.deny",
        "risk": "destructive",
    }


def test_a_monitored_decision_records_enforced_false_and_an_applied_one_no_flag() -> None:
    assert replace(HELD, enforced=False).to_record()["enforced"] is False
    assert "enforced" not in HELD.to_record()


def test_the_candidates_decision_is_recorded_inside_the_live_one() -> None:
    shadow = Decision(Action.DENY, "tools.deny", "'echo' is in servers.s.tools.deny", "read")
    live = Decision(Action.ALLOW, "read", "'echo' is classified read", "read", candidate=shadow)
    record = live.to_record()
    assert list(record) == ["action", "rule", "reason", "risk", "candidate"]
    assert record["candidate"] == shadow.to_record()


def test_an_approval_on_a_channel_records_who_and_where() -> None:
    granted = replace(HELD, action=Action.ALLOW, approved=Approved("ap-1", "alice", "cli"))
    assert granted.to_record() == {
        "action": "allow",
        "rule": "tools.approve",
        "reason": "'echo' is in servers.s.tools.approve",
        "risk": "read",
        "approval": "ap-1",
        "approved_by": "alice",
        "channel": "cli",
    }


def test_a_standing_grant_records_no_channel() -> None:
    granted = replace(HELD, action=Action.ALLOW, approved=Approved("ap-0", "alice"))
    record = granted.to_record()
    assert (record["approval"], record["approved_by"]) == ("ap-0", "alice")
    assert "channel" not in record


def test_a_refused_approval_keeps_the_risk_and_says_who_refused() -> None:
    refused = replace(HELD, action=Action.DENY, rule="approval.denied", reason="alice denied the call")
    assert refused.to_record() == {
        "action": "deny",
        "rule": "approval.denied",
        "reason": "alice denied the call",
        "risk": "read",
    }


@pytest.mark.parametrize(
    "decision",
    [
        HELD,
        Decision(Action.DENY, "pins.unreviewed", "'echo' is new or changed since 's' was pinned"),
        replace(HELD, enforced=False),
        replace(HELD, candidate=Decision(Action.DENY, "tools.deny", "denied", "read")),
        replace(HELD, action=Action.ALLOW, approved=Approved("ap-1", "alice", "dashboard")),
        replace(HELD, action=Action.ALLOW, approved=Approved("ap-0", "bob")),
    ],
)
def test_a_record_reads_back_into_the_same_decision(decision: Decision) -> None:
    assert Decision.from_record(decision.to_record()) == decision


def test_a_hidden_record_reads_back_without_the_hidden_mark() -> None:
    hidden = Decision(Action.DENY, "kill", "'echo' on 's' is switched off (kill switch)", "read", hidden=True)
    assert Decision.from_record(hidden.to_record()) == replace(hidden, hidden=False)
