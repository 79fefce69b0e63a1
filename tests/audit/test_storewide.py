"""The one verifier of a whole store: every listed log replayed, and what belongs to no listed log reported."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import rfc8785

from bastion.audit.checkpoint import Checkpoint, Signer, sign_checkpoint
from bastion.audit.storewide import STORE, verify_store
from bastion.store.audit import CheckpointRow, EntryRow, LogRow
from bastion.store.audit_sqlite import SqliteAuditStore

LOG = LogRow("0123456789abcdef", "bastion/test/0123456789abcdef", "test", 1, 0.0)
SIGNER = Signer.generate("k")


def leaf(raw: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + raw).digest()


def root(leaves: list[bytes]) -> bytes:
    """RFC 6962's tree hash."""
    if len(leaves) == 1:
        return leaves[0]
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + root(leaves[:split]) + root(leaves[split:])).digest()


def never_alive(_pid: int) -> bool:
    return False


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteAuditStore]:
    """A store with one log of three entries, all under a signed checkpoint."""
    store = SqliteAuditStore(tmp_path / "audit.db")
    store.create_log(LOG)
    raws = [rfc8785.dumps({"i": i, "log": LOG.log_id, "t": 1000 + i, "v": 1, "kind": "call.intent"}) for i in range(3)]
    store.append_batch(
        LOG.log_id,
        [EntryRow(i, leaf(raw), raw, (1000 + i) / 1000, "call.intent") for i, raw in enumerate(raws)],
        [],
        [],
    )
    head = root([leaf(raw) for raw in raws])
    note = sign_checkpoint(Checkpoint(LOG.origin, 3, head), SIGNER)
    store.add_checkpoint(CheckpointRow(LOG.log_id, 3, head, note, 2.0))
    yield store
    store.close()


def test_a_sound_store_has_one_clean_report_per_log(store: SqliteAuditStore) -> None:
    [report] = verify_store(store, [SIGNER.verifier], alive=never_alive)
    assert report.ok, [p.describe() for p in report.problems]
    assert (report.log_id, report.size, report.checkpoints) == (LOG.log_id, 3, 1)


def test_progress_is_reported_up_to_the_number_of_entries(store: SqliteAuditStore) -> None:
    seen: list[tuple[int, int]] = []
    verify_store(store, [SIGNER.verifier], alive=never_alive, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (3, 3)


def test_a_checkpoint_held_outside_for_a_log_the_store_lost_is_a_missing_log(store: SqliteAuditStore) -> None:
    lost = sign_checkpoint(Checkpoint("bastion/test/gone", 1, bytes(32)), SIGNER)
    reports = verify_store(store, [SIGNER.verifier], external=[lost], alive=never_alive)
    assert [(r.origin, [p.check for p in r.problems]) for r in reports[1:]] == [("bastion/test/gone", ["missing log"])]


def test_an_outside_checkpoint_no_trusted_key_signed_is_a_signature_problem(store: SqliteAuditStore) -> None:
    forged = sign_checkpoint(Checkpoint(LOG.origin, 3, bytes(32)), Signer.generate("mallory"))
    reports = verify_store(store, [SIGNER.verifier], external=[forged], alive=never_alive)
    checks = [p.check for r in reports for p in r.problems]
    assert checks
    assert set(checks) == {"signature"}


def test_an_empty_store_verifies_to_no_reports(tmp_path: Path) -> None:
    empty = SqliteAuditStore(tmp_path / "empty.db")
    try:
        assert verify_store(empty, [SIGNER.verifier]) == []
    finally:
        empty.close()


def test_rows_kept_under_a_log_the_store_does_not_list_are_a_missing_log(store: SqliteAuditStore) -> None:
    store.add_checkpoint(CheckpointRow("feedfeedfeedfeed", 1, bytes(32), "note", 0.0))
    reports = verify_store(store, [SIGNER.verifier], alive=never_alive)
    orphan = [(p.log_id, p.check, p.column) for r in reports for p in r.problems]
    assert orphan == [("feedfeedfeedfeed", "missing log", "log_id")]
    assert STORE not in [r.origin for r in reports]  # the orphan has its own report, not the store's
