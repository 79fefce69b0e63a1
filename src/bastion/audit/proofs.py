"""Proof bundles a third party checks with nothing but the log's public key.

An inclusion bundle holds one entry, its proof and the signed checkpoint it is under: the
checkpoint's signature is checked, then the entry's leaf hash up the proof to the signed root.
A consistency bundle holds an older signed checkpoint (one the auditor kept), the latest one
and the proof that the newer tree extends the older one: the log only grew.
"""

from __future__ import annotations

import base64
from typing import Any

from bastion.audit.checkpoint import CheckpointError, Verifier, verify_note
from bastion.audit.merkle import (
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    perfect_root,
    verify_consistency,
    verify_inclusion,
)
from bastion.store.audit import AuditStore, CheckpointRow

__all__ = ["BundleError", "check_bundle", "make_bundle", "make_consistency_bundle"]

BUNDLE_FORMAT = "bastion-inclusion-proof/1"
CONSISTENCY_FORMAT = "bastion-consistency-proof/1"


class BundleError(ValueError):
    pass


def make_bundle(store: AuditStore, log_id: str, index: int, checkpoint: CheckpointRow) -> dict[str, Any]:
    if not 0 <= index < checkpoint.size:
        raise BundleError(f"index {index} is not under the latest checkpoint of log {log_id} (size {checkpoint.size})")
    rows = list(store.entries(log_id, index, index + 1))
    if not rows:
        raise BundleError(f"log {log_id} has no entry {index}")

    def subtree(level: int, idx: int) -> bytes:
        return perfect_root(store.subtree_hashes(log_id, level, idx))

    proof = inclusion_proof(index, checkpoint.size, subtree)
    return {
        "format": BUNDLE_FORMAT,
        "log": log_id,
        "index": index,
        "entry": base64.b64encode(rows[0].entry).decode("ascii"),
        "tree_size": checkpoint.size,
        "proof": [base64.b64encode(node).decode("ascii") for node in proof],
        "checkpoint": checkpoint.note,
    }


def make_consistency_bundle(
    store: AuditStore, log_id: str, old_note: str, latest: CheckpointRow, verifiers: list[Verifier]
) -> dict[str, Any]:
    try:
        old, _ = verify_note(old_note, verifiers)
    except CheckpointError as exc:
        raise BundleError(f"the older checkpoint: {exc}") from None
    if old.size > latest.size:
        raise BundleError(f"the older checkpoint (size {old.size}) is larger than the log's latest ({latest.size})")

    def subtree(level: int, idx: int) -> bytes:
        return perfect_root(store.subtree_hashes(log_id, level, idx))

    proof = consistency_proof(old.size, latest.size, subtree)
    return {
        "format": CONSISTENCY_FORMAT,
        "log": log_id,
        "old_checkpoint": old_note,
        "checkpoint": latest.note,
        "proof": [base64.b64encode(node).decode("ascii") for node in proof],
    }


def check_bundle(bundle: dict[str, Any], verifiers: list[Verifier]) -> bytes:
    """Verify a bundle; returns what it proves (the entry, or the new checkpoint). Raises BundleError."""
    if bundle.get("format") == CONSISTENCY_FORMAT:
        return _check_consistency(bundle, verifiers)
    if bundle.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"not a {BUNDLE_FORMAT} or {CONSISTENCY_FORMAT} bundle")
    try:
        checkpoint, _ = verify_note(str(bundle["checkpoint"]), verifiers)
        entry = base64.b64decode(bundle["entry"], validate=True)
        proof = [base64.b64decode(node, validate=True) for node in bundle["proof"]]
        if checkpoint.size != bundle["tree_size"]:
            raise BundleError("the bundle's tree size differs from its checkpoint's")
        verify_inclusion(int(bundle["index"]), checkpoint.size, leaf_hash(entry), proof, checkpoint.root)
    except CheckpointError as exc:
        raise BundleError(f"checkpoint: {exc}") from None
    except ProofError as exc:
        raise BundleError(f"proof: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"malformed bundle: {exc}") from None
    return entry


def _check_consistency(bundle: dict[str, Any], verifiers: list[Verifier]) -> bytes:
    try:
        old, _ = verify_note(str(bundle["old_checkpoint"]), verifiers)
        new, _ = verify_note(str(bundle["checkpoint"]), verifiers)
        if old.origin != new.origin:
            raise BundleError("the two checkpoints are of different logs")
        proof = [base64.b64decode(node, validate=True) for node in bundle["proof"]]
        verify_consistency(old.size, new.size, old.root, new.root, proof)
    except CheckpointError as exc:
        raise BundleError(f"checkpoint: {exc}") from None
    except ProofError as exc:
        raise BundleError(f"proof: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"malformed bundle: {exc}") from None
    return f"log {new.origin} grew from {old.size} to {new.size} entries without rewriting any".encode()
