"""Re-checking a pack offline, with nothing but its folder and the trusted verifier keys.

Every check runs, whatever failed before it, and each says what it found:

1. the manifest is signed by a trusted key, lists every file, and every file has its digest;
2. the verification result is signed by a trusted key and says the log verified;
3. each bounding checkpoint verifies, names its log and size, and the consistency proof between
   them holds;
4. the population (`calls.jsonl`) has the signed count and digest; every line of every JSONL
   file is a call-or-evidence entry of the period whose canonical bytes give its leaf hash, in
   index order within the period's bounds; `controls.json` counts match the files;
5. the samples are the ones the seed selects, and each inclusion proof checks against the
   closing checkpoint of its log.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import orjson

from bastion.audit.canonical import canonical
from bastion.audit.checkpoint import CheckpointError, Verifier, verify_note
from bastion.audit.merkle import leaf_hash
from bastion.audit.proofs import BundleError, check_bundle
from bastion.compliance import catalog as c
from bastion.compliance.attest import MANIFEST_TAG, RESULT_TAG, AttestError, Sampler, check_digest
from bastion.compliance.controls import CALL_KINDS

__all__ = ["PackCheck", "check_pack"]


@dataclass
class PackCheck:
    passed: list[str] = field(default_factory=list[str])
    failed: list[str] = field(default_factory=list[str])

    @property
    def ok(self) -> bool:
        return not self.failed and bool(self.passed)


def _json(path: Path) -> Any:
    return orjson.loads(path.read_bytes())


def _dict(value: object) -> dict[str, Any]:
    return cast(dict[str, Any], value) if isinstance(value, dict) else {}


def check_pack(directory: Path, verifiers: list[Verifier]) -> PackCheck:
    result = PackCheck()
    steps = (_manifest, _verification, _checkpoints, _population, _samples)
    signed: dict[str, Any] = {}
    for step in steps:
        try:
            step(directory, verifiers, signed, result)
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            result.failed.append(f"{step.__name__.strip('_')}: cannot be read: {type(exc).__name__}: {exc}")
    return result


def _manifest(directory: Path, verifiers: list[Verifier], _signed: dict[str, Any], result: PackCheck) -> None:
    raw = (directory / "manifest.json").read_bytes()
    try:
        signer = check_digest(MANIFEST_TAG, raw, (directory / "manifest.sig").read_text(encoding="utf-8"), verifiers)
    except AttestError as exc:
        result.failed.append(f"manifest.sig: {exc}")
    else:
        result.passed.append(f"manifest.json is signed by {signer.name}")
    listed: dict[str, str] = _dict(orjson.loads(raw).get("files"))
    present = {
        p.relative_to(directory).as_posix()
        for p in directory.rglob("*")
        if p.is_file() and p.name not in ("manifest.json", "manifest.sig")
    }
    bad = 0
    for name in sorted(present - set(listed)):
        result.failed.append(f"{name}: not in the manifest")
        bad += 1
    for name, digest in sorted(listed.items()):
        path = directory / name
        if not path.is_file():
            result.failed.append(f"{name}: in the manifest but missing")
            bad += 1
        elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            result.failed.append(f"{name}: its SHA-256 differs from the manifest's (changed after signing)")
            bad += 1
    if not bad:
        result.passed.append(f"all {len(listed)} files match the manifest")


def _verification(directory: Path, verifiers: list[Verifier], signed: dict[str, Any], result: PackCheck) -> None:
    raw = (directory / c.VERIFICATION).read_bytes()
    try:
        signer = check_digest(RESULT_TAG, raw, (directory / "verification.sig").read_text(encoding="utf-8"), verifiers)
    except AttestError as exc:
        result.failed.append(f"verification.sig: {exc}")
    else:
        result.passed.append(f"the verification result is signed by {signer.name}")
    signed.update(_dict(orjson.loads(raw)))
    if signed.get("ok") is True:
        entries = sum(int(log["size"]) for log in signed["logs"])
        result.passed.append(f"the verifier's result holds: {entries} entries in {len(signed['logs'])} log(s)")
    else:
        first = (signed.get("problems") or ["no result"])[0]
        result.failed.append(f"the signed result says the log did not verify: {first}")


def _note(directory: Path, name: str | None, verifiers: list[Verifier], result: PackCheck) -> str | None:
    if name is None:
        return None
    note = (directory / name).read_text(encoding="utf-8")
    try:
        verify_note(note, verifiers)
    except CheckpointError as exc:
        result.failed.append(f"{name}: {exc}")
        return None
    return note


def _checkpoints(directory: Path, verifiers: list[Verifier], signed: dict[str, Any], result: PackCheck) -> None:
    good = 0
    for log in signed.get("period_logs", []):
        opening, closing = _dict(log.get("opening")), _dict(log.get("closing"))
        notes = [_note(directory, part.get("file"), verifiers, result) for part in (opening, closing)]
        ok = all(note is not None for part, note in zip((opening, closing), notes, strict=True) if part)
        for part, note in zip((opening, closing), notes, strict=True):
            if note is not None:
                header = note.split("\n")
                if header[0] != log["origin"] or int(header[1]) != part["size"]:
                    result.failed.append(f"{part['file']}: not the checkpoint of {log['origin']} at {part['size']}")
                    ok = False
        if closing and int(closing["size"]) < int(log["first_index"]) + int(log["proven"]):
            result.failed.append(f"{closing['file']}: does not cover the entries it is said to prove")
            ok = False
        if log.get("consistency"):
            problem = _consistency_problem(_dict(_json(directory / log["consistency"])), notes, verifiers)
            if problem is not None:
                result.failed.append(f"{log['consistency']}: {problem}")
                ok = False
        elif opening and closing:
            result.failed.append(f"log {log['log']}: no consistency proof between its bounding checkpoints")
            ok = False
        good += ok
    if good == len(signed.get("period_logs", [])):
        result.passed.append(f"the checkpoints bounding the period verify for {good} log(s), with consistency proofs")


def _consistency_problem(bundle: dict[str, Any], notes: list[str | None], verifiers: list[Verifier]) -> str | None:
    try:
        check_bundle(bundle, verifiers)
    except BundleError as exc:
        return str(exc)
    if [bundle.get("old_checkpoint"), bundle.get("checkpoint")] != notes:
        return "it is not between the bounding checkpoints"
    return None


def _lines(path: Path) -> list[dict[str, Any]]:
    return [_dict(orjson.loads(line)) for line in path.read_bytes().splitlines() if line.strip()]


def _entry_problem(line: Mapping[str, Any], period: Mapping[str, Any]) -> str | None:
    entry = _dict(line.get("entry"))
    if leaf_hash(canonical(entry)).hex() != line.get("leaf_hash"):
        return "its entry does not hash to its leaf hash"
    if entry.get("log") != line.get("log") or entry.get("i") != line.get("index"):
        return "its log or index differs from the entry's"
    if not int(period["start_ms"]) <= int(entry.get("t", -1)) < int(period["end_ms"]):
        return "its entry is outside the period"
    return None


def _population(directory: Path, _verifiers: list[Verifier], signed: dict[str, Any], result: PackCheck) -> None:
    period, population = signed["period"], signed["population"]
    bounds = {log["log"]: log for log in signed.get("period_logs", [])}
    failures = len(result.failed)
    raw = (directory / c.CALLS).read_bytes()
    if hashlib.sha256(raw).hexdigest() != population["sha256"]:
        result.failed.append(f"{c.CALLS}: its digest differs from the signed result's")
    lines = _lines(directory / c.CALLS)
    if len(lines) != population["entries"]:
        result.failed.append(f"{c.CALLS}: {len(lines)} entries, the signed result says {population['entries']}")
    per_log: Counter[str] = Counter()
    last: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        log, index = str(line.get("log")), int(line.get("index", -1))
        bound = bounds.get(log)
        problem = _entry_problem(line, period)
        if problem is None and _dict(line.get("entry")).get("kind") not in CALL_KINDS:
            problem = "it is not a call entry"
        if problem is None and (bound is None or not bound["first_index"] <= index < bound["end_index"]):
            problem = "its index is outside the period's bounds"
        if problem is None and index <= last.get(log, -1):
            problem = "it is out of order"
        if problem is not None:
            result.failed.append(f"{c.CALLS} line {number}: {problem}")
        per_log[log] += 1
        last[log] = index
    for log_id, bound in bounds.items():
        if per_log[log_id] != bound["calls"]:
            result.failed.append(f"{c.CALLS}: log {log_id} has {per_log[log_id]} calls, signed: {bound['calls']}")
    _evidence_files(directory, period, result)
    if len(result.failed) == failures:
        result.passed.append(f"the population of {len(lines)} call entries matches the signed count and digest")


def _evidence_files(directory: Path, period: Mapping[str, Any], result: PackCheck) -> None:
    counts: dict[str, int] = {}
    for path in sorted((directory / "evidence").glob("*.jsonl")):
        name = path.relative_to(directory).as_posix()
        lines = _lines(path)
        counts[name] = len(lines)
        for number, line in enumerate(lines, 1):
            problem = _entry_problem(line, period)
            if problem is not None:
                result.failed.append(f"{name} line {number}: {problem}")
    counts[c.CALLS] = len(_lines(directory / c.CALLS))
    for control in _json(directory / "controls.json")["controls"]:
        for artefact in control["artefacts"]:
            expected = counts.get(artefact["file"])
            if expected is not None and expected != artefact["count"]:
                result.failed.append(f"controls.json: {control['id']} counts {artefact['count']} in {artefact['file']}")


def _samples(directory: Path, verifiers: list[Verifier], signed: dict[str, Any], result: PackCheck) -> None:
    listing = _dict(_json(directory / c.SAMPLES))
    bounds = {log["log"]: log for log in signed.get("period_logs", [])}
    closing = {
        log_id: (directory / log["closing"]["file"]).read_text(encoding="utf-8")
        for log_id, log in bounds.items()
        if log.get("closing")
    }
    if listing.get("seed") != signed["samples"]["seed"]:
        result.failed.append(f"{c.SAMPLES}: its seed differs from the signed result's")
    sampler = Sampler(str(listing.get("seed")), int(listing.get("requested", 0)))
    for line in _lines(directory / c.CALLS):
        log_id, index = str(line.get("log")), int(line.get("index", -1))
        if log_id in bounds and log_id in closing and bounds[log_id]["closing"]["size"] > index:
            sampler.offer(log_id, index, bytes.fromhex(str(line.get("leaf_hash"))))
    samples = listing.get("samples", [])
    expected = [(log_id, index) for log_id, index, _ in sampler.chosen()]
    selected = [(s["log"], s["index"]) for s in samples] == expected and len(samples) == signed["samples"]["count"]
    if not selected:
        result.failed.append(f"{c.SAMPLES}: the samples are not the ones the seed selects from the population")
    good = 0
    for sample in samples:
        problem = _sample_problem(_dict(_json(directory / sample["file"])), sample, closing, verifiers)
        if problem is not None:
            result.failed.append(f"{sample['file']}: {problem}")
        else:
            good += 1
    if selected and good == len(samples):
        result.passed.append(f"{good} sample(s) chosen by the seed, each inclusion proof checks")


def _sample_problem(
    bundle: dict[str, Any], sample: Mapping[str, Any], closing: Mapping[str, str], verifiers: list[Verifier]
) -> str | None:
    try:
        entry = check_bundle(bundle, verifiers)
    except BundleError as exc:
        return str(exc)
    if bundle.get("log") != sample["log"] or bundle.get("index") != sample["index"]:
        return "it proves another entry than the listing says"
    if bundle.get("checkpoint") != closing.get(sample["log"]):
        return "it is not under the closing checkpoint of its log"
    if leaf_hash(entry).hex() != sample["leaf_hash"]:
        return "its entry is not the sampled one"
    return None
