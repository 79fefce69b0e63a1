"""Proof bundles: a third party with only the public key checks an entry's inclusion and the log's growth."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bastion.audit.checkpoint import Checkpoint, Signer, sign_checkpoint
from bastion.audit.proofs import BundleError, check_bundle, make_bundle, make_consistency_bundle
from bastion.store.audit import CheckpointRow, EntryRow, LogRow
from bastion.store.audit_sqlite import SqliteAuditStore

LOG = "0123456789abcdef"
ORIGIN = f"bastion/test/{LOG}"
ENTRIES = [f'{{"i":{i}}}'.encode() for i in range(5)]


def leaf(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def root(leaves: list[bytes]) -> bytes:
    """RFC 6962's tree hash, written out here so the module is checked against it."""
    if len(leaves) == 1:
        return leaves[0]
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + root(leaves[:split]) + root(leaves[split:])).digest()


@pytest.fixture
def signer() -> Signer:
    return Signer.generate("test-log")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteAuditStore]:
    store = SqliteAuditStore(tmp_path / "audit.db")
    store.create_log(LogRow(LOG, ORIGIN, "test", 1, 0.0))
    rows = [EntryRow(i, leaf(entry), entry, float(i), "heartbeat") for i, entry in enumerate(ENTRIES)]
    store.append_batch(LOG, rows, [], [])
    yield store
    store.close()


def checkpoint(size: int, signer: Signer) -> CheckpointRow:
    head = root([leaf(entry) for entry in ENTRIES[:size]])
    return CheckpointRow(LOG, size, head, sign_checkpoint(Checkpoint(ORIGIN, size, head), signer), 0.0)


def test_an_inclusion_bundle_checks_out_and_returns_its_entry(store: SqliteAuditStore, signer: Signer) -> None:
    bundle = make_bundle(store, LOG, 3, checkpoint(5, signer))
    assert (bundle["index"], bundle["tree_size"]) == (3, 5)
    assert check_bundle(bundle, [signer.verifier]) == ENTRIES[3]


def test_an_index_beyond_the_checkpoint_has_no_bundle(store: SqliteAuditStore, signer: Signer) -> None:
    with pytest.raises(BundleError):
        make_bundle(store, LOG, 5, checkpoint(5, signer))


def test_a_bundle_with_a_changed_entry_fails_its_proof(store: SqliteAuditStore, signer: Signer) -> None:
    bundle: dict[str, Any] = make_bundle(store, LOG, 1, checkpoint(5, signer))
    other = make_bundle(store, LOG, 2, checkpoint(5, signer))
    with pytest.raises(BundleError):
        check_bundle({**bundle, "entry": other["entry"]}, [signer.verifier])


def test_a_bundle_signed_by_an_untrusted_key_fails(store: SqliteAuditStore, signer: Signer) -> None:
    bundle = make_bundle(store, LOG, 0, checkpoint(5, signer))
    with pytest.raises(BundleError):
        check_bundle(bundle, [Signer.generate("someone-else").verifier])


def test_a_consistency_bundle_proves_the_log_only_grew(store: SqliteAuditStore, signer: Signer) -> None:
    old = checkpoint(3, signer)
    bundle = make_consistency_bundle(store, LOG, old.note, checkpoint(5, signer), [signer.verifier])
    said = check_bundle(bundle, [signer.verifier])
    assert said == f"log {ORIGIN} grew from 3 to 5 entries without rewriting any".encode()


def test_an_older_checkpoint_larger_than_the_latest_is_refused(store: SqliteAuditStore, signer: Signer) -> None:
    with pytest.raises(BundleError):
        make_consistency_bundle(store, LOG, checkpoint(5, signer).note, checkpoint(3, signer), [signer.verifier])


@pytest.mark.parametrize("bundle", [{}, {"format": "something-else/1"}, {"format": "bastion-inclusion-proof/1"}])
def test_a_malformed_or_foreign_bundle_is_refused(bundle: dict[str, Any], signer: Signer) -> None:
    with pytest.raises(BundleError):
        check_bundle(bundle, [signer.verifier])
