"""An evidence pack built from a recorded quarter says what the log says: the population equals
the log's calls in the period, each control counts its entries, gaps are named, samples verify."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

from bastion.audit.proofs import check_bundle
from bastion.compliance import Period, Status, check_pack
from bastion.compliance.controls import CALL_KINDS
from bastion.store.audit import AuditStore, SearchFilter
from bastion.store.audit_open import open_store
from tests.compliance.conftest import Built, build
from tests.compliance.scenario import PERIOD, SECRET, record_quarter
from tests.conftest import BASTION, child_env


def lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def controls(pack: Path) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in json.loads((pack / "controls.json").read_text(encoding="utf-8"))["controls"]}


def in_period(store: AuditStore) -> list[tuple[str, int, str, dict[str, Any]]]:
    """Every entry of the period, straight from the store: (log, index, leaf hash, entry)."""
    period = Period.parse(PERIOD)
    found: list[tuple[str, int, str, dict[str, Any]]] = []
    for log in store.logs():
        for row in store.entries(log.log_id):
            entry = orjson.loads(row.entry)
            if period.holds(entry["t"]):
                found.append((log.log_id, row.idx, row.leaf.hex(), entry))
    return found


def test_the_population_is_exactly_the_logs_calls_in_the_period(built: Built) -> None:
    store = open_store(built.home, None)
    expected = {(log, idx, leaf) for log, idx, leaf, entry in in_period(store) if entry["kind"] in CALL_KINDS}
    store.close()
    population = lines(built.pack / "calls.jsonl")
    assert {(p["log"], p["index"], p["leaf_hash"]) for p in population} == expected
    assert len(population) == len(expected) == 2 * 20 + 2 + 2 + 2 * 12, "after-period calls are left out"
    result = json.loads((built.pack / "verification.json").read_text(encoding="utf-8"))
    assert result["ok"] is True
    assert result["population"]["entries"] == len(expected)
    assert result["population"]["kinds"] == {"call.denied": 2, "call.intent": 33, "call.outcome": 33}


def test_each_control_counts_the_entries_of_the_period_that_evidence_it(built: Built) -> None:
    found = controls(built.pack)
    counts = {(cid, a["file"]): a["count"] for cid, item in found.items() for a in item["artefacts"]}
    assert counts["CC6.2", "evidence/client-changes.jsonl"] == 2
    assert counts["CC6.3", "evidence/denied.jsonl"] == 2
    assert counts["CC6.6", "evidence/external-threats.jsonl"] == 2, "the SSRF refusal and the screened result"
    assert counts["CC6.7", "evidence/redactions.jsonl"] == 1
    assert counts["CC6.8", "evidence/pin-drift.jsonl"] == 1
    assert counts["CC7.4", "evidence/containment.jsonl"] == 4, "kill, unkill, secret and token revoked"
    assert counts["CC8.1", "evidence/approved-changes.jsonl"] == 3
    assert counts["164.308(a)(1)(ii)(D)", "evidence/reviews.jsonl"] == 2
    assert counts["164.312(c)(2)", "samples.json"] == 25
    for (_, path), count in counts.items():
        if path.endswith(".jsonl"):
            assert len((built.pack / path).read_bytes().splitlines()) == count, path
    denied = lines(built.pack / "evidence/denied.jsonl")
    assert sorted(d["entry"]["decision"]["rule"] for d in denied) == ["policy.risk", "urls.metadata"]
    revoked = lines(built.pack / "evidence/client-changes.jsonl")[1]["entry"]
    assert (revoked["change"], revoked["by"]) == ("token.revoked", "erin")


def test_statuses_follow_from_what_happened_and_name_the_gaps(built: Built) -> None:
    found = controls(built.pack)
    assert found["CC7.2"]["summary"] == "gap: monitoring did not cover 2026-11-02 03:00\u201305:00 (UTC)"
    assert found["CC7.3"]["summary"] == "gap: 1 of 2 alert(s) have no triage by a person: volume:mail"
    evidenced = {cid for cid, item in found.items() if item["status"] == Status.EVIDENCED}
    assert {"CC6.1", "CC6.2", "CC6.6", "CC6.8", "CC7.4", "CC8.1", "164.312(b)", "164.312(c)(2)"} <= evidenced
    assert found["164.316(b)(2)(i)"]["detail"].endswith("oldest entry 2026-09-30, oldest payload 2026-09-30")
    assert all(item["organisation"] for item in found.values())
    coverage = json.loads((built.pack / "evidence/coverage.json").read_text(encoding="utf-8"))
    assert [run["ended"] for run in coverage["runs"]] == ["stopped", "stopped"]
    alerts = json.loads((built.pack / "evidence/alerts.json").read_text(encoding="utf-8"))
    assert {a["alert"]: a["triaged"] for a in alerts} == {"first_use:mail.delete": True, "volume:mail": False}


def test_the_period_is_bounded_by_signed_checkpoints_with_a_consistency_proof(built: Built) -> None:
    result = json.loads((built.pack / "verification.json").read_text(encoding="utf-8"))
    bounds = {log["log"]: log for log in result["period_logs"]}
    first = bounds[built.quarter.logs["gateway1"]]
    assert first["opening"]["size"] == 6, "signed before the quarter began, after the six entries of September"
    assert first["opening"]["size"] <= first["first_index"] < first["end_index"] <= first["closing"]["size"]
    bundle = json.loads((built.pack / first["consistency"]).read_text(encoding="utf-8"))
    check_bundle(bundle, built.verifiers)
    second = bounds[built.quarter.logs["gateway2"]]
    assert second["opening"] is None, "the second gateway's log begins inside the quarter"
    assert second["end_index"] < second["closing"]["size"], "its closing checkpoint also covers January"


def test_every_sample_carries_an_inclusion_proof_the_audit_cli_accepts(built: Built) -> None:
    listing = json.loads((built.pack / "samples.json").read_text(encoding="utf-8"))
    assert len(listing["samples"]) == 25
    population = {(p["log"], p["index"]): p["leaf_hash"] for p in lines(built.pack / "calls.jsonl")}
    for sample in listing["samples"]:
        entry = check_bundle(json.loads((built.pack / sample["file"]).read_text(encoding="utf-8")), built.verifiers)
        assert population[sample["log"], sample["index"]] == sample["leaf_hash"]
        assert orjson.loads(entry)["kind"] in CALL_KINDS
    keys = built.home / "trusted.txt"
    keys.write_text("".join(v.encode() + "\n" for v in built.verifiers), encoding="utf-8")
    checked = subprocess.run(
        [*BASTION, "audit", "check-proof", str(built.pack / listing["samples"][0]["file"]), "--key", str(keys)],
        capture_output=True,
        text=True,
        env=child_env(built.home),
        check=False,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
    assert "proof verifies" in checked.stdout


def test_the_pack_verifies_offline_and_holds_no_secret(built: Built) -> None:
    checked = check_pack(built.pack, built.verifiers)
    assert checked.ok, checked.failed
    assert len(checked.passed) == 7
    everything = b"".join(path.read_bytes() for path in built.pack.rglob("*") if path.is_file())
    assert SECRET.encode() not in everything, "only commitments, never payloads"


def test_an_auditor_seed_chooses_other_samples_that_still_verify(built: Built, tmp_path: Path) -> None:
    pack = build(built.home, tmp_path / "pack", seed="chosen by the auditor", samples=5)
    listing = json.loads((pack / "samples.json").read_text(encoding="utf-8"))
    assert listing["seed"] == "chosen by the auditor"
    assert len(listing["samples"]) == 5
    assert check_pack(pack, built.verifiers).ok


def test_a_quiet_period_has_no_events_and_a_monitoring_gap(built: Built, tmp_path: Path) -> None:
    pack = build(built.home, tmp_path / "pack", period="2025-01-01..2025-01-31", framework="soc2")
    found = controls(pack)
    assert set(found) == {
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
    }
    assert found["CC6.2"]["summary"] == "no events in period"
    assert found["CC7.2"]["summary"] == "gap: no gateway ran in the period, so nothing was monitored"
    assert (pack / "calls.jsonl").read_bytes() == b""
    assert check_pack(pack, built.verifiers).ok


def test_without_chromium_only_the_html_is_written_with_a_warning(built: Built, tmp_path: Path) -> None:
    pack = build(built.home, tmp_path / "pack", chromium=None, samples=1)
    assert not (pack / "report.pdf").exists()
    assert "No PDF:" in (pack / "index.html").read_text(encoding="utf-8")


def test_a_pack_is_never_written_over_an_existing_folder(built: Built, tmp_path: Path) -> None:
    (tmp_path / "pack").mkdir()
    (tmp_path / "pack" / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(FileExistsError):
        build(built.home, tmp_path / "pack")
    assert [p.name for p in tmp_path.iterdir()] == ["pack"], "no half-written folder is left behind"


def test_shredded_days_move_the_oldest_payload_forward(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    anyio.run(record_quarter, home)
    store = open_store(home, None)
    assert store.shred_before("2026-10-01", time.time()) == ["2026-09-30"]
    store.close()
    retention = json.loads((build(home, tmp_path / "pack") / "evidence/retention.json").read_text(encoding="utf-8"))
    assert retention["oldest_entry_day"] == "2026-09-30", "entries are never pruned"
    assert retention["oldest_payload_day"] == "2026-10-01"
    assert retention["profile"] == "hipaa"
    assert retention["payload_days"] == 2190


def test_a_refusal_hidden_by_its_kind_column_still_counts_and_the_pack_fails_naming_it(
    built: Built, tmp_path: Path
) -> None:
    home = Path(shutil.copytree(built.home, tmp_path / "home"))
    store = open_store(home, None)
    [(log_id, row)] = store.search(SearchFilter(kind="call.denied", tool="fetch", limit=1))
    store.close()
    with sqlite3.connect(home / "audit.db") as db:  # one byte, as anyone who can write the file could
        db.execute("UPDATE audit_entries SET kind = 'call.deniee' WHERE log_id = ? AND idx = ?", (log_id, row.idx))
    pack = build(home, tmp_path / "pack")
    result = json.loads((pack / "verification.json").read_text(encoding="utf-8"))
    assert result["ok"] is False
    assert result["problems"][0].startswith(f"log {log_id} index {row.idx}: index column kind:")
    assert result["population"]["kinds"]["call.denied"] == 2, "counted as the entries say, not as the index does"
    assert controls(pack)["164.312(c)(2)"]["status"] != Status.EVIDENCED
