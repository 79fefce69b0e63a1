"""The mapping: which entries evidence which control, and how each control's status follows from
what happened (evidenced, no events, or a gap that names what is missing)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bastion.compliance import catalog as c
from bastion.compliance.catalog import CONTROLS, controls_for
from bastion.compliance.controls import Facts, Status, artefacts_of, assess
from bastion.compliance.views import Views, config_snapshot
from bastion.config.load import parse_config
from tests.compliance.scenario import at


def control(control_id: str) -> c.Control:
    return next(item for item in CONTROLS if item.id == control_id)


def test_every_control_names_its_evidence_and_the_organisations_share() -> None:
    ids = [item.id for item in CONTROLS]
    assert ids[:11] == [
        "CC6.1",
        "CC6.2",
        "CC6.3",
        "CC6.6",
        "CC6.7",
        "CC6.8",
        "CC7.1",
        "CC7.2",
        "CC7.3",
        "CC7.4",
        "CC8.1",
    ]
    assert {"164.312(a)(1)", "164.312(b)", "164.312(c)(2)", "164.308(a)(1)(ii)(D)", "164.316(b)(2)(i)"} <= set(ids)
    for item in CONTROLS:
        assert all((item.requirement, item.bastion, item.organisation, item.artefacts)), item.id
    assert {item.framework for item in controls_for("soc2")} == {"soc2"}
    assert {item.framework for item in controls_for("hipaa")} == {"hipaa"}
    assert len(controls_for("all")) == len(CONTROLS)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"kind": "call.intent"}, {c.CALLS}),
        ({"kind": "call.denied", "decision": {"rule": "policy.risk"}}, {c.CALLS, c.DENIED}),
        ({"kind": "call.denied", "decision": {"rule": "urls.private_address"}}, {c.CALLS, c.DENIED, c.THREATS}),
        ({"kind": "call.outcome", "screen": [{"rule": "exfil.image"}]}, {c.CALLS, c.THREATS}),
        ({"kind": "client.change", "change": "token.revoked"}, {c.CLIENT_CHANGES, c.CONTAINMENT}),
        ({"kind": "client.change", "change": "token.created"}, {c.CLIENT_CHANGES}),
        ({"kind": "policy.change", "change": "kill", "by": "x"}, {c.CONFIG_CHANGES, c.CHANGES_APPROVED, c.CONTAINMENT}),
        ({"kind": "secret.change", "change": "revoke"}, {c.IDENTITY_CHANGES, c.CONTAINMENT}),
        ({"kind": "pin.change", "change": "review.approved"}, {c.PIN_CHANGES, c.CHANGES_APPROVED, c.REVIEWS}),
        ({"kind": "pin.change", "change": "pin"}, {c.PIN_CHANGES}),
        ({"kind": "alert.change", "to": "open"}, {c.MONITORING}),
        ({"kind": "alert.change", "to": "resolved", "by": "ann"}, {c.MONITORING, c.TRIAGE}),
        ({"kind": "alert.triage", "by": "ann"}, {c.TRIAGE, c.REVIEWS}),
        ({"kind": "approval.decided"}, {c.APPROVALS, c.REVIEWS}),
        ({"kind": "gateway.start"}, {c.CONFIG_CHANGES, c.GATEWAY_RUNS}),
        ({"kind": "payload.shredded"}, {c.REDACTIONS}),
        ({"kind": "auth.denied", "reason": "expired"}, {c.AUTH_DENIED}),
        ({"kind": "something.new"}, set[str]()),
        ({"kind": 3, "decision": "not a mapping"}, set[str]()),
    ],
)
def test_entries_are_sorted_into_the_files_that_evidence_their_controls(
    entry: dict[str, Any], expected: set[str]
) -> None:
    assert set(artefacts_of(entry)) == expected


def test_refused_authentication_evidences_person_or_entity_authentication() -> None:
    (control,) = [item for item in CONTROLS if item.id == "164.312(d)"]
    assert c.AUTH_DENIED in control.artefacts
    assert c.AUTH_DENIED in c.ENTRY_FILES


def facts(**changes: Any) -> Facts:
    base: dict[str, Any] = {
        "counts": {c.CALLS: 10, c.REVIEWS: 2, c.CHANGES_APPROVED: 1},
        "gateways": 1,
        "evidence_until": at("2026-12-31T00:00:00"),
        "retention": "hipaa",
    }
    return Facts(**(base | changes))


def test_untriaged_alerts_are_a_gap_naming_them() -> None:
    result = assess(control("CC7.3"), facts(alerts=3, untriaged=("volume:mail",)))
    assert result.status is Status.GAP
    assert result.summary == "gap: 1 of 3 alert(s) have no triage by a person: volume:mail"
    assert assess(control("CC7.3"), facts(alerts=3)).status is Status.EVIDENCED
    assert assess(control("CC7.3"), facts()).status is Status.NO_EVENTS


def test_a_monitoring_gap_is_stated_with_its_times() -> None:
    gap = (at("2026-11-02T03:00:00"), at("2026-11-02T05:00:00"))
    result = assess(control("CC7.2"), facts(gaps=(gap,)))
    assert result.summary == "gap: monitoring did not cover 2026-11-02 03:00\u201305:00 (UTC)"
    assert assess(control("CC7.2"), facts(gateways=0)).status is Status.GAP
    assert assess(control("CC7.2"), facts(watch_enabled=False)).status is Status.GAP
    assert assess(control("CC7.2"), facts()).status is Status.EVIDENCED


def test_a_log_that_does_not_verify_is_a_gap_in_the_integrity_controls() -> None:
    broken = facts(verified=False, problem="log x index 4: entry bytes: changed")
    for control_id in ("164.312(b)", "164.312(c)(1)", "164.312(c)(2)"):
        assert assess(control(control_id), broken).summary.startswith("gap: the log did not verify: log x index 4")
    assert assess(control("164.312(c)(2)"), facts(unsigned=3)).status is Status.GAP


@pytest.mark.parametrize(
    ("profile", "status"),
    [
        ("none", Status.GAP),
        ("soc2", Status.GAP),
        (400, Status.GAP),
        ("hipaa", Status.EVIDENCED),
        (3000, Status.EVIDENCED),
    ],
)
def test_retention_under_six_years_is_a_gap_for_hipaa(profile: str | int, status: Status) -> None:
    result = assess(control("164.316(b)(2)(i)"), facts(retention=profile, oldest_payload_day="2026-09-30"))
    assert result.status is status
    assert "oldest payload 2026-09-30" in result.detail


def test_changes_without_an_approver_and_unreviewed_drift_are_gaps() -> None:
    assert (
        assess(control("CC8.1"), facts(unattributed=2)).summary
        == "gap: 2 change(s) do not name who made or approved them"
    )
    assert assess(control("CC6.8"), facts(unreviewed_drift=("mail",))).status is Status.GAP
    assert (
        assess(control("164.308(a)(1)(ii)(D)"), facts(counts={})).summary == "gap: no review was recorded in the period"
    )
    assert assess(control("164.312(a)(2)(i)"), facts(anonymous_calls=1)).status is Status.GAP


def test_each_assessment_lists_its_artefacts_with_counts() -> None:
    result = assess(control("CC6.3"), facts(counts={c.CALLS: 4, c.DENIED: 2, c.ACCESS_REVIEW: 3}))
    assert result.artefacts == ((c.ACCESS_REVIEW, 3), (c.DENIED, 2), (c.APPROVALS, 0))


def test_drift_counts_as_reviewed_only_by_a_later_review_of_the_same_server() -> None:
    views = Views()
    views.add({"kind": "pin.change", "change": "review.approved", "server": {"name": "mail"}, "t": 1, "by": "b"})
    views.add({"kind": "pin.drift", "server": {"name": "mail"}, "t": 5})
    views.add({"kind": "pin.drift", "server": {"name": "git"}, "t": 5})
    views.add({"kind": "pin.change", "change": "review.rejected", "server": {"name": "git"}, "t": 9, "by": "b"})
    assert views.unreviewed_drift() == ("mail",)
    views.add({"kind": "pin.change", "change": "review.approved", "server": {"name": "mail"}, "t": 6})
    assert views.unreviewed_drift() == ()
    assert views.unattributed == 1, "the second review names nobody"


def test_an_alert_counts_as_triaged_when_a_person_acted_on_it() -> None:
    views = Views()
    views.add({"kind": "alert.change", "alert": "a", "from": None, "to": "open", "t": 1})
    views.add({"kind": "alert.change", "alert": "b", "from": None, "to": "open", "t": 2})
    views.add({"kind": "alert.change", "alert": "b", "from": "open", "to": "resolved", "t": 3})  # by the detector
    views.add({"kind": "alert.change", "alert": "c", "from": None, "to": "open", "t": 4})
    views.add({"kind": "alert.triage", "alert": "c", "triage": "ack", "by": "ann", "t": 5})
    assert views.untriaged() == ("a", "b")


def test_the_configuration_snapshot_masks_what_may_be_secret() -> None:
    config = parse_config(
        "[servers.api]\nurl = 'https://user:pw@api.example/v1?token=abc'\nheaders = { Authorization = 'Bearer s3cret' }\n"
        "[servers.local]\ncommand = 'srv'\nenv = { API_KEY = 'k3y' }\n"
        "[[watch.sinks]]\nkind = 'slack'\nurl = 'https://hooks.slack.com/services/T0/B0/XYZ'\n"
        "[audit]\nstore = 'postgresql://bastion:hunter2@db/bastion'\nretention = 'hipaa'\n"
    )
    snapshot = config_snapshot(config)
    text = json.dumps(snapshot)
    for secret in ("user:pw", "token=abc", "s3cret", "k3y", "B0/XYZ", "hunter2"):
        assert secret not in text, secret
    assert snapshot["servers"]["api"]["url"] == "https://api.example/\u2026"
    assert snapshot["servers"]["local"]["env"] == {"API_KEY": "<masked>"}
    assert snapshot["audit"]["retention"] == "hipaa"
