"""Tampering for real: change a byte, delete, swap, truncate, rewrite the tail, roll back —
`bastion audit verify` (the offline verifier) catches each one and says where."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import anyio
import pytest
from tests.audit.conftest import Backend
from tests.conftest import BASTION

from bastion.audit.entry import Kind, Record
from bastion.audit.keys import Keyring
from bastion.audit.log import AuditLog
from bastion.audit.merkle import CompactRange, leaf_hash
from bastion.audit.payload import AUDIT_MASTER_KEY, PayloadCipher
from bastion.clock import SystemClock
from bastion.files import load_master_key

pytestmark = pytest.mark.e2e


async def write_log(backend: Backend, home: Path, entries: int = 24) -> str:
    """A log of `entries` tool-call entries with signed checkpoints at 10 and at the end."""
    store = backend.open()
    signer = Keyring(home, "bastion-test").signer()
    master = load_master_key(AUDIT_MASTER_KEY, home, {}, create=True)
    assert master is not None
    log = AuditLog(store, signer, PayloadCipher(master), SystemClock(), home, instance="test")
    async with anyio.create_task_group() as tasks:
        await tasks.start(log.run)
        for i in range(entries):
            await log.append(Record(Kind.CALL_INTENT, {"tool": f"t{i}", "client": "c"}, {"arguments": {"n": i}}))
            if i == 9:
                await log.checkpoint()
        tasks.cancel_scope.cancel()
    store.close()
    return log.log_id


def verify(backend: Backend, home: Path, *extra: str) -> tuple[int, str]:
    env = {**os.environ, "BASTION_HOME": str(home)}
    done = subprocess.run(
        [*BASTION, "audit", "verify", "--store", backend.url, "--json", *extra],
        capture_output=True,
        env=env,
        check=False,
        timeout=60,
    )
    return done.returncode, done.stdout.decode() + done.stderr.decode()


@pytest.fixture
def written(backend: Backend, tmp_path: Path) -> tuple[Backend, Path, str]:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    log_id = anyio.run(write_log, backend, home)
    return backend, home, log_id


def test_an_untouched_log_verifies(written: tuple[Backend, Path, str]) -> None:
    backend, home, _log = written
    code, output = verify(backend, home)
    assert code == 0, output
    assert json.loads(output)["logs"][0]["size"] == 24


def test_one_changed_byte_is_caught_at_its_index(written: tuple[Backend, Path, str]) -> None:
    backend, home, log = written
    [(entry,)] = backend.sql("SELECT entry FROM audit_entries WHERE log_id = ? AND idx = 7", (log,))
    tampered = bytes(entry).replace(b'"t7"', b'"t8"')
    backend.sql("UPDATE audit_entries SET entry = ? WHERE log_id = ? AND idx = 7", (tampered, log))
    code, output = verify(backend, home)
    assert code == 1
    assert "index 7: entry bytes" in output


def test_a_changed_byte_with_a_recomputed_leaf_breaks_the_signed_root(written: tuple[Backend, Path, str]) -> None:
    backend, home, log = written
    [(entry,)] = backend.sql("SELECT entry FROM audit_entries WHERE log_id = ? AND idx = 3", (log,))
    tampered = bytes(entry).replace(b'"t3"', b'"tX"')
    backend.sql(  # the index column too, so that only the signed root can tell
        "UPDATE audit_entries SET entry = ?, leaf = ?, tool = 'tX' WHERE log_id = ? AND idx = 3",
        (tampered, leaf_hash(tampered), log),
    )
    code, output = verify(backend, home)
    assert code == 1
    assert re.search(r"index \d+: checkpoint: the signed root", output), output


def test_a_deleted_entry_is_a_gap(written: tuple[Backend, Path, str]) -> None:
    backend, home, log = written
    backend.sql("DELETE FROM audit_entries WHERE log_id = ? AND idx = 5", (log,))
    code, output = verify(backend, home)
    assert code == 1
    assert "index 5: gap" in output


def test_two_swapped_entries_are_caught(written: tuple[Backend, Path, str]) -> None:
    backend, home, log = written
    rows = backend.sql(
        "SELECT idx, leaf, entry FROM audit_entries WHERE log_id = ? AND idx IN (12, 13) ORDER BY idx", (log,)
    )
    for (idx, _leaf, _entry), (_other, leaf, entry) in zip(rows, reversed(rows), strict=True):
        backend.sql(
            "UPDATE audit_entries SET leaf = ?, entry = ? WHERE log_id = ? AND idx = ?", (leaf, entry, log, idx)
        )
    code, output = verify(backend, home)
    assert code == 1
    assert "index 12: order" in output


def test_a_truncated_tail_is_caught_even_with_its_checkpoints_removed(written: tuple[Backend, Path, str]) -> None:
    backend, home, log = written
    backend.sql("DELETE FROM audit_entries WHERE log_id = ? AND idx >= 15", (log,))
    code, output = verify(backend, home)
    assert code == 1
    assert "truncated" in output
    backend.sql("DELETE FROM audit_checkpoints WHERE log_id = ? AND size > 15", (log,))
    code, output = verify(backend, home)
    assert code == 1, "the witness checkpoint outside the store still covers the deleted entries"
    assert "truncated" in output


def test_a_tail_rewritten_with_recomputed_hashes_but_without_the_key_is_caught(
    written: tuple[Backend, Path, str],
) -> None:
    backend, home, log = written
    rows = backend.sql("SELECT idx, entry FROM audit_entries WHERE log_id = ? ORDER BY idx", (log,))
    edge = CompactRange()
    for idx, entry in rows:
        raw = bytes(entry)
        if idx >= 12:
            raw = raw.replace(b'"c"', b'"someone-else"')
        leaf = leaf_hash(raw)
        for level, node_idx, value in edge.append(leaf):
            if level:
                backend.sql(
                    "UPDATE audit_nodes SET hash = ? WHERE log_id = ? AND level = ? AND idx = ?",
                    (value, log, level, node_idx),
                )
        client = "someone-else" if idx >= 12 else "c"
        backend.sql(
            "UPDATE audit_entries SET entry = ?, leaf = ?, client = ? WHERE log_id = ? AND idx = ?",
            (raw, leaf, client, log, idx),
        )
    code, output = verify(backend, home)
    assert code == 1
    assert re.search(r"index \d+: checkpoint: the signed root", output), output


def test_a_store_rolled_back_to_an_older_copy_is_caught(backend: Backend, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    anyio.run(write_log, backend, home, 5)
    restore = backend.snapshot()
    anyio.run(write_log, backend, home, 5)
    assert verify(backend, home)[0] == 0
    restore()
    code, output = verify(backend, home)
    assert code == 1
    assert "missing log" in output or "truncated" in output


def test_a_forged_checkpoint_is_refused(written: tuple[Backend, Path, str]) -> None:
    backend, home, log = written
    [(note,)] = backend.sql("SELECT note FROM audit_checkpoints WHERE log_id = ? AND size = 10", (log,))
    forged = str(note).replace("\n10\n", "\n9\n")
    backend.sql("UPDATE audit_checkpoints SET note = ? WHERE log_id = ? AND size = 10", (forged, log))
    code, output = verify(backend, home)
    assert code == 1
    assert "signature" in output


def test_verification_needs_a_trusted_key_not_the_stores_word(
    written: tuple[Backend, Path, str], tmp_path: Path
) -> None:
    backend, home, _log = written
    stranger = Keyring(tmp_path / "other", "bastion-test").signer().verifier.encode()
    code, output = verify(backend, home, "--key", stranger)
    assert code == 1
    assert "signature" in output
