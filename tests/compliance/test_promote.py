"""A promoted candidate policy is change-management evidence: SOC 2 CC8.1 (who and why) and CC7.1."""

from __future__ import annotations

from bastion.compliance import catalog as c
from bastion.compliance.catalog import CONTROLS
from bastion.compliance.controls import Facts, Status, artefacts_of, assess
from bastion.compliance.views import Views

PROMOTED = {
    "kind": "policy.change",
    "change": "promote",
    "by": "alice",
    "reason": "echo is not needed (CHG-7)",
    "t": 1_000,
}


def test_a_promotion_is_filed_as_an_approved_change_and_a_config_change() -> None:
    assert set(artefacts_of(PROMOTED)) == {c.CONFIG_CHANGES, c.CHANGES_APPROVED}


def test_cc8_1_counts_promotions_and_names_who_made_them() -> None:
    views = Views()
    views.add(PROMOTED)
    assert views.unattributed == 0
    cc81 = next(item for item in CONTROLS if item.id == "CC8.1")
    assert "bastion policy promote" in cc81.bastion
    facts = Facts(counts={c.CHANGES_APPROVED: 1}, tally=dict(views.tally))
    result = assess(cc81, facts)
    assert result.status is Status.EVIDENCED
    assert "1 candidate policy promotion(s)" in result.detail


def test_a_promotion_that_names_no_one_is_a_gap() -> None:
    views = Views()
    views.add({**PROMOTED, "by": ""})
    assert views.unattributed == 1
