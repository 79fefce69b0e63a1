"""Verification in worker processes finds exactly what the inline verifier finds."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from tests.audit.conftest import Backend
from tests.audit.test_tamper import write_log

from bastion.audit.keys import Keyring
from bastion.audit.merkle import leaf_hash
from bastion.audit.parallel import checked_runs
from bastion.audit.verify import LogReport, verify_log

pytestmark = pytest.mark.e2e


def both(backend: Backend, home: Path) -> tuple[LogReport, LogReport]:
    store = backend.open()
    [log] = store.logs()
    verifiers = Keyring(home, "").verifiers()
    size = store.size(log.log_id)
    reports = tuple(
        verify_log(
            log,
            checked_runs(store, home, backend.url, log.log_id, size, parallel_from=threshold, run=5),
            store.checkpoints(log.log_id),
            verifiers,
        )
        for threshold in (0, 1 << 40)  # in workers, then inline
    )
    store.close()
    return reports[0], reports[1]


def test_workers_agree_with_inline_checking_on_a_good_and_a_tampered_log(backend: Backend, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    log_id = anyio.run(write_log, backend, home, 24)
    parallel, inline = both(backend, home)
    assert parallel.ok
    assert inline.ok
    assert parallel.size == inline.size == 24
    [(entry,)] = backend.sql("SELECT entry FROM audit_entries WHERE log_id = ? AND idx = 17", (log_id,))
    tampered = bytes(entry).replace(b'"t17"', b'"tXX"')
    backend.sql(  # the index column too, so that only the signed root can tell
        "UPDATE audit_entries SET entry = ?, leaf = ?, tool = 'tXX' WHERE log_id = ? AND idx = 17",
        (tampered, leaf_hash(tampered), log_id),
    )
    parallel, inline = both(backend, home)
    assert [p.describe() for p in parallel.problems] == [p.describe() for p in inline.problems]
    assert parallel.problems[0].check == "checkpoint"
