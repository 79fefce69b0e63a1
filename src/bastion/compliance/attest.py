"""What makes a pack checkable: checkpoints bounding the period, samples chosen so nobody could
pick them, the verifier's result, and signatures over the pack's own files.

- Bounding checkpoints, per log: the *opening* one is the largest signed checkpoint at or below
  the period's first index (none when the log begins inside the period: the empty tree); the
  *closing* one is the smallest that covers the period's last entry. A consistency proof shows
  the closing tree extends the opening one; inclusion proofs of samples go to the closing root.
- Samples are the N population entries (under their log's closing checkpoint) with the lowest
  SHA-256(seed ‖ leaf hash). The default seed hashes the period and the closing checkpoints,
  so whoever makes the pack cannot steer it; an auditor may pass a seed of their own. Anyone
  can re-derive the choice from `calls.jsonl`.
- Signed digests are C2SP signed notes over a two-line body, `TAG` and `sha256 HEX`, signed
  with the gateway's audit signing key. Their second line is never a decimal size, so no such
  note can pass for a checkpoint, and each tag names what it is for.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bastion.audit.checkpoint import Signer, Verifier
from bastion.audit.proofs import BundleError, make_bundle, make_consistency_bundle
from bastion.compliance.catalog import SAMPLES
from bastion.compliance.evidence import LogSpan
from bastion.compliance.timeline import Period
from bastion.errors import StoreError
from bastion.store.audit import AuditStore, CheckpointRow

__all__ = [
    "MANIFEST_TAG",
    "RESULT_TAG",
    "AttestError",
    "Bounds",
    "Sampler",
    "bounding",
    "check_digest",
    "checkpoint_files",
    "derive_seed",
    "sample_files",
    "sample_score",
    "sign_digest",
]

MANIFEST_TAG = "bastion report manifest v1"
RESULT_TAG = "bastion report verification v1"
_SIGNATURE_LINE = re.compile(r"^\u2014 (\S+) ([A-Za-z0-9+/=]+)$")


class AttestError(ValueError):
    """A signed digest that is malformed, names other data, or no trusted key signed."""


@dataclass(frozen=True, slots=True)
class Bounds:
    span: LogSpan
    opening: CheckpointRow | None
    closing: CheckpointRow | None

    @property
    def proven(self) -> int:
        """Entries of the period under the closing checkpoint (the rest are not signed yet)."""
        if self.closing is None:
            return 0
        return max(0, min(self.closing.size, self.span.hi) - self.span.lo)


def bounding(store: AuditStore, spans: list[LogSpan]) -> list[Bounds]:
    """The checkpoints that bound each log's part of the period (logs with entries in it)."""
    found: list[Bounds] = []
    for span in spans:
        if span.lo >= span.hi:
            continue
        rows = store.checkpoints(span.log_id)
        before = [row for row in rows if 0 < row.size <= span.lo]
        after = [row for row in rows if row.size >= span.hi]
        opening = max(before, key=lambda row: row.size) if before else None
        if after:
            closing: CheckpointRow | None = min(after, key=lambda row: row.size)
        else:  # the period's tail is not signed yet: the latest checkpoint proves what it covers
            closing = max(rows, key=lambda row: row.size) if rows and rows[-1].size > span.lo else None
        found.append(Bounds(span, opening, closing))
    return found


def derive_seed(period: Period, bounds: list[Bounds]) -> str:
    digest = hashlib.sha256(period.label.encode("utf-8"))
    for bound in bounds:
        digest.update(b"\x00" + (bound.closing.note.encode("utf-8") if bound.closing else b""))
    return digest.hexdigest()


def sample_score(seed: str, leaf: bytes) -> bytes:
    return hashlib.sha256(seed.encode("utf-8") + b"\x00" + leaf).digest()


class Sampler:
    """Keeps the `count` offered entries with the lowest scores; the order of offers does not matter."""

    def __init__(self, seed: str, count: int) -> None:
        self.seed = seed
        self.count = count
        self._heap: list[tuple[bytes, str, int, bytes]] = []  # max-heap by score, through negation

    def offer(self, log_id: str, index: int, leaf: bytes) -> None:
        score = sample_score(self.seed, leaf)
        negated = bytes(255 - b for b in score)
        if len(self._heap) < self.count:
            heapq.heappush(self._heap, (negated, log_id, index, leaf))
        elif self.count and negated > self._heap[0][0]:
            heapq.heapreplace(self._heap, (negated, log_id, index, leaf))

    def chosen(self) -> list[tuple[str, int, bytes]]:
        """(log id, index, leaf hash), lowest score first."""
        return [(log_id, index, leaf) for _, log_id, index, leaf in sorted(self._heap, reverse=True)]


Files = dict[str, str | dict[str, Any]]
"""Pack path → content (text, or JSON)."""


def checkpoint_files(
    store: AuditStore, bounds: list[Bounds], verifiers: list[Verifier], calls: Mapping[str, int], notes: list[str]
) -> tuple[list[dict[str, Any]], Files]:
    """Each log's bounds as the signed result states them, and its checkpoint and consistency files."""
    described: list[dict[str, Any]] = []
    files: Files = {}
    for bound in bounds:
        span, base = bound.span, f"checkpoints/{bound.span.log_id}"
        item: dict[str, Any] = {
            "log": span.log_id,
            "origin": span.log.origin,
            "first_index": span.lo,
            "end_index": span.hi,
            "entries": span.hi - span.lo,
            "calls": calls.get(span.log_id, 0),
            "proven": bound.proven,
            "opening": None,
            "closing": None,
            "consistency": None,
        }
        for name, row in (("opening", bound.opening), ("closing", bound.closing)):
            if row is not None:
                files[f"{base}/{name}.checkpoint"] = row.note
                item[name] = {"size": row.size, "file": f"{base}/{name}.checkpoint"}
        if bound.opening is not None and bound.closing is not None:
            try:
                bundle = make_consistency_bundle(store, span.log_id, bound.opening.note, bound.closing, verifiers)
            except (BundleError, StoreError) as exc:  # StoreError: a subtree or leaf is missing
                notes.append(f"log {span.log_id}: no consistency proof between its bounding checkpoints: {exc}")
            else:
                files[f"{base}/consistency.json"] = bundle
                item["consistency"] = f"{base}/consistency.json"
        described.append(item)
    return described, files


def sample_files(
    store: AuditStore, sampler: Sampler, bounds: list[Bounds], notes: list[str]
) -> tuple[list[dict[str, Any]], Files]:
    """The chosen samples, each an inclusion proof bundle under its log's closing checkpoint, and their listing."""
    closing = {b.span.log_id: b.closing for b in bounds if b.closing is not None}
    chosen: list[dict[str, Any]] = []
    files: Files = {}
    for number, (log_id, index, leaf) in enumerate(sampler.chosen(), 1):
        path = f"samples/{number:02d}-{log_id}-{index}.json"
        try:
            files[path] = make_bundle(store, log_id, index, closing[log_id])
        except (BundleError, StoreError) as exc:  # StoreError: a subtree or leaf is missing
            notes.append(f"sample {log_id}/{index}: {exc}")
            continue
        chosen.append({"file": path, "log": log_id, "index": index, "leaf_hash": leaf.hex()})
    files[SAMPLES] = {
        "seed": sampler.seed,
        "requested": sampler.count,
        "rule": "the population entries under their log's closing checkpoint with the lowest "
        "SHA-256(UTF-8 seed || 0x00 || leaf hash)",
        "samples": chosen,
    }
    return chosen, files


def _body(tag: str, data: bytes) -> str:
    return f"{tag}\nsha256 {hashlib.sha256(data).hexdigest()}\n"


def sign_digest(tag: str, data: bytes, signer: Signer) -> str:
    body = _body(tag, data)
    return f"{body}\n{signer.sign(body.encode('utf-8'))}"


def check_digest(tag: str, data: bytes, note: str, verifiers: list[Verifier]) -> Verifier:
    """The trusted key that signed `note` over exactly `data` for `tag`; AttestError otherwise."""
    body, separator, signatures = note.partition("\n\n")
    if not separator:
        raise AttestError("the signature file has no signature block")
    lines = body.split("\n")
    if len(lines) != 2 or lines[0] != tag or not lines[1].startswith("sha256 "):
        raise AttestError(f"the signature file is not a {tag!r} note")
    if (body + "\n") != _body(tag, data):
        raise AttestError("the signed digest does not match the file")
    by_id = {(v.name, v.id): v for v in verifiers}
    for line in signatures.splitlines():
        match = _SIGNATURE_LINE.match(line)
        if match is None:
            raise AttestError(f"malformed signature line: {line[:80]!r}")
        try:
            blob = base64.b64decode(match.group(2), validate=True)
        except binascii.Error:
            raise AttestError("a signature is not base64") from None
        verifier = by_id.get((match.group(1), blob[:4]))
        if verifier is not None and verifier.check((body + "\n").encode("utf-8"), blob[4:]):
            return verifier
    raise AttestError("no signature by a trusted key verifies")
