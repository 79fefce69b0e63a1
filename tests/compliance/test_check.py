"""`bastion report verify`: a pack re-checks offline, and any tampering with it is named.

An insider holding the signing key can re-sign a manifest; the layered checks still catch a
population that no longer matches the signed result, counts that no longer match the files, or
samples that are not the ones the seed selects.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import orjson
import pytest

from bastion.audit.checkpoint import Signer
from bastion.audit.keys import Keyring
from bastion.compliance import check_pack
from bastion.compliance.attest import MANIFEST_TAG, sign_digest
from tests.compliance.conftest import Built
from tests.conftest import BASTION, child_env


def copy(built: Built, tmp_path: Path) -> Path:
    return Path(shutil.copytree(built.pack, tmp_path / "pack"))


def resign(pack: Path, home: Path) -> None:
    """What an insider with the signing key could do: a fresh manifest over the changed files."""
    files = sorted(
        p.relative_to(pack).as_posix()
        for p in pack.rglob("*")
        if p.is_file() and p.name not in ("manifest.json", "manifest.sig")
    )
    manifest = {
        "format": "bastion-report-manifest/1",
        "files": {f: hashlib.sha256((pack / f).read_bytes()).hexdigest() for f in files},
    }
    encoded = orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n"
    (pack / "manifest.json").write_bytes(encoded)
    (pack / "manifest.sig").write_text(sign_digest(MANIFEST_TAG, encoded, Keyring(home, "").signer()), encoding="utf-8")


def failures(pack: Path, built: Built) -> list[str]:
    checked = check_pack(pack, built.verifiers)
    assert not checked.ok
    return checked.failed


def test_a_changed_byte_in_the_population_fails(built: Built, tmp_path: Path) -> None:
    pack = copy(built, tmp_path)
    raw = (pack / "calls.jsonl").read_bytes()
    (pack / "calls.jsonl").write_bytes(raw.replace(b'"agent2"', b'"agentX"', 1))
    failed = failures(pack, built)
    assert "calls.jsonl: its SHA-256 differs from the manifest's (changed after signing)" in failed
    assert "calls.jsonl: its digest differs from the signed result's" in failed
    assert any("does not hash to its leaf hash" in line for line in failed)


def test_a_call_dropped_from_the_population_fails_even_with_a_resigned_manifest(built: Built, tmp_path: Path) -> None:
    pack = copy(built, tmp_path)
    kept = (pack / "calls.jsonl").read_bytes().splitlines()[1:]
    (pack / "calls.jsonl").write_bytes(b"\n".join(kept) + b"\n")
    resign(pack, built.home)
    failed = failures(pack, built)
    assert not any("manifest" in line for line in failed)
    assert "calls.jsonl: 67 entries, the signed result says 68" in failed


def test_a_tampered_sample_proof_fails(built: Built, tmp_path: Path) -> None:
    pack = copy(built, tmp_path)
    sample = sorted((pack / "samples").iterdir())[0]
    bundle = json.loads(sample.read_text(encoding="utf-8"))
    bundle["index"] += 1
    sample.write_text(json.dumps(bundle), encoding="utf-8")
    resign(pack, built.home)
    failed = failures(pack, built)
    assert any(line.startswith(f"samples/{sample.name}: proof:") for line in failed), failed


def test_hand_picked_samples_are_not_the_ones_the_seed_selects(built: Built, tmp_path: Path) -> None:
    pack = copy(built, tmp_path)
    listing = json.loads((pack / "samples.json").read_text(encoding="utf-8"))
    listing["samples"] = listing["samples"][::-1]
    (pack / "samples.json").write_text(json.dumps(listing), encoding="utf-8")
    resign(pack, built.home)
    assert "samples.json: the samples are not the ones the seed selects from the population" in failures(pack, built)


def test_a_changed_count_in_the_controls_fails(built: Built, tmp_path: Path) -> None:
    pack = copy(built, tmp_path)
    mapping = json.loads((pack / "controls.json").read_text(encoding="utf-8"))
    mapping["controls"][3]["artefacts"][0]["count"] = 0  # CC6.6: hide the boundary refusals
    (pack / "controls.json").write_text(json.dumps(mapping), encoding="utf-8")
    resign(pack, built.home)
    assert "controls.json: CC6.6 counts 0 in evidence/external-threats.jsonl" in failures(pack, built)


def test_an_added_file_and_a_removed_one_fail(built: Built, tmp_path: Path) -> None:
    pack = copy(built, tmp_path)
    (pack / "evidence" / "extra.json").write_text("{}", encoding="utf-8")
    (pack / "keys.txt").unlink()
    failed = failures(pack, built)
    assert "evidence/extra.json: not in the manifest" in failed
    assert "keys.txt: in the manifest but missing" in failed


def test_a_pack_signed_by_another_key_is_not_trusted(built: Built) -> None:
    stranger = Signer.generate(built.verifiers[0].name)
    failed = check_pack(built.pack, [stranger.verifier]).failed
    assert "manifest.sig: no signature by a trusted key verifies" in failed
    assert "verification.sig: no signature by a trusted key verifies" in failed
    assert any(line.endswith("no signature by a trusted key verifies") and "checkpoint" in line for line in failed)


@pytest.mark.e2e
def test_the_cli_exits_0_on_a_good_pack_and_1_naming_what_failed(built: Built, tmp_path: Path) -> None:
    keys = tmp_path / "trusted.txt"
    keys.write_text("".join(v.encode() + "\n" for v in built.verifiers), encoding="utf-8")

    def verify(pack: Path) -> subprocess.CompletedProcess[str]:
        argv = [*BASTION, "report", "verify", str(pack), "--key", str(keys)]
        env = child_env(tmp_path / "elsewhere")  # an auditor's machine: no keys of its own
        return subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=60)

    good = verify(built.pack)
    assert good.returncode == 0, good.stderr
    assert "the pack verifies" in good.stdout
    pack = copy(built, tmp_path)
    (pack / "evidence" / "denied.jsonl").write_bytes(b"")
    bad = verify(pack)
    assert bad.returncode == 1
    assert "FAILED: evidence/denied.jsonl: its SHA-256 differs from the manifest's" in bad.stderr
