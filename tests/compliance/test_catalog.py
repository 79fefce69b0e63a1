"""The control catalog: every control points at files the pack has, and every file serves a control."""

from __future__ import annotations

from bastion.compliance import catalog as c
from bastion.compliance.catalog import CONTROLS, ENTRY_FILES, FRAMEWORKS, controls_for

DERIVED = (c.INVENTORY, c.CONFIG, c.ACCESS_REVIEW, c.COVERAGE, c.ALERTS, c.IDENTITIES, c.RETENTION)
INTEGRITY = (c.VERIFICATION, c.CHECKPOINTS, c.SAMPLES)


def test_every_artefact_a_control_names_is_a_file_of_the_pack() -> None:
    files = {*ENTRY_FILES, *DERIVED, *INTEGRITY}
    named = {artefact for control in CONTROLS for artefact in control.artefacts}
    assert named <= files


def test_every_file_of_the_pack_evidences_at_least_one_control() -> None:
    named = {artefact for control in CONTROLS for artefact in control.artefacts}
    assert {*ENTRY_FILES, *DERIVED, *INTEGRITY} <= named


def test_entry_files_are_json_lines_and_derived_files_are_json() -> None:
    assert len(set(ENTRY_FILES)) == len(ENTRY_FILES)
    assert all(name.endswith(".jsonl") for name in ENTRY_FILES)
    assert all(name.endswith(".json") for name in DERIVED)
    assert c.CALLS == "calls.jsonl"
    assert all(name.startswith("evidence/") for name in (*ENTRY_FILES[1:], *DERIVED))


def test_control_ids_are_unique_and_each_belongs_to_a_known_framework() -> None:
    ids = [control.id for control in CONTROLS]
    assert len(set(ids)) == len(ids)
    assert {control.framework for control in CONTROLS} == set(FRAMEWORKS)


def test_a_framework_selects_its_own_controls_in_catalog_order() -> None:
    soc2, hipaa = controls_for("soc2"), controls_for("hipaa")
    assert soc2 + hipaa == CONTROLS
    assert soc2[0].id == "CC6.1"
    assert hipaa[-1].id == "164.316(b)(2)(i)"
