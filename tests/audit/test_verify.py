"""Signed roots at any size verify, and the first wrong one is named by its size."""

from __future__ import annotations

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.audit import verify
from bastion.audit.checkpoint import Checkpoint, Signer, sign_checkpoint
from bastion.audit.merkle import CompactRange, leaf_hash
from bastion.store.audit import CheckpointRow, LogRow, StoredEntry

LOG = LogRow("abc", "bastion/test/abc", "test", 1, 0.0)
SIGNER = Signer.generate("k")


def rows(count: int) -> list[StoredEntry]:
    out: list[StoredEntry] = []
    for i in range(count):
        raw = rfc8785.dumps({"i": i, "log": "abc", "t": 1000 + i, "v": 1, "kind": "call.intent"})
        out.append(
            (i, leaf_hash(raw), raw, (1000 + i) / 1000, "call.intent", None, None, None, None, None, False, None)
        )
    return out


def checkpoints(data: list[StoredEntry], sizes: list[int], tamper: int | None = None) -> list[CheckpointRow]:
    found: list[CheckpointRow] = []
    edge = CompactRange()
    for position, row in enumerate(data, 1):
        leaf = row[1]
        edge.push(leaf)
        if position in sizes:
            root = edge.root() if position != tamper else bytes(32)
            note = sign_checkpoint(Checkpoint(LOG.origin, position, root), SIGNER)
            found.append(CheckpointRow(LOG.log_id, position, root, note, 0.0))
    return found


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 70), st.data())
def test_signed_roots_anywhere_verify_and_a_wrong_one_is_named(count: int, data: st.DataObject) -> None:
    entries = rows(count)
    sizes = sorted({count, *data.draw(st.lists(st.integers(1, count), max_size=6))})  # the tail is signed too
    report = verify.verify_log(LOG, entries, checkpoints(entries, sizes), [SIGNER.verifier])
    assert report.ok, [p.describe() for p in report.problems]
    assert report.size == count
    bad = data.draw(st.sampled_from(sizes))
    report = verify.verify_log(LOG, entries, checkpoints(entries, sizes, tamper=bad), [SIGNER.verifier])
    assert [(p.check, p.index) for p in report.problems][:1] == [("checkpoint", bad - 1)]
