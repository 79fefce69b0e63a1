"""The audit log's figures: durable appends/s with 64 concurrent callers, verification speed,
and inclusion proof size and time at a million entries.

Run: `.venv/bin/python bench/audit_bench.py [--entries 1000000] [--store sqlite|postgresql://…]`.
Every append is durable (one fsync per group-committed batch, SQLite synchronous=FULL).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import anyio

from bastion.audit.entry import Kind, Record
from bastion.audit.keys import Keyring
from bastion.audit.log import AuditLog
from bastion.audit.merkle import inclusion_proof, leaf_hash, perfect_root, verify_inclusion
from bastion.audit.parallel import checked_runs
from bastion.audit.payload import AUDIT_MASTER_KEY, PayloadCipher
from bastion.audit.verify import verify_log
from bastion.clock import SystemClock
from bastion.files import load_master_key
from bastion.store.audit import AuditStore
from bastion.store.audit_open import open_store

FIELDS = {
    "session": "stdio",
    "client": "agent-1",
    "server": {"name": "filesystem", "version": "2026.8.31"},
    "method": "tools/call",
    "tool": "read_text_file",
    "decision": {"action": "allow", "rule": "default", "reason": "read tool"},
}


async def fill(log: AuditLog, total: int, callers: int) -> float:
    """Append `total` entries from `callers` concurrent tasks; returns appends per second."""
    per_caller = total // callers

    async def caller(number: int) -> None:
        for i in range(per_caller):
            await log.append(
                Record(
                    Kind.CALL_INTENT, {**FIELDS, "request": f"{number}-{i}"}, {"arguments": {"path": f"/srv/{i}.txt"}}
                )
            )

    start = time.perf_counter()
    async with anyio.create_task_group() as tasks:
        for number in range(callers):
            tasks.start_soon(caller, number)
    return per_caller * callers / (time.perf_counter() - start)


async def build(store: AuditStore, home: Path, entries: int, callers: int) -> tuple[str, float]:
    rate = 0.0
    master = load_master_key(AUDIT_MASTER_KEY, home, {}, create=True)
    assert master is not None
    log = AuditLog(
        store, Keyring(home, "bastion-bench").signer(), PayloadCipher(master), SystemClock(), home, instance="bench"
    )
    async with anyio.create_task_group() as tasks:
        await tasks.start(log.run)
        rate = await fill(log, entries, callers)
        tasks.cancel_scope.cancel()
    return log.log_id, rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--callers", type=int, default=64)
    parser.add_argument("--store", default=None, help="sqlite (default, in a temp dir) or a postgresql:// URL")
    options = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bastion-audit-bench-"))
    store = open_store(home, options.store)
    built: tuple[str, float] = anyio.run(build, store, home, options.entries, options.callers)
    log_id, rate = built
    log = next(row for row in store.logs() if row.log_id == log_id)
    keyring = Keyring(home, "bastion-bench")

    start = time.perf_counter()
    runs = checked_runs(store, home, options.store, log_id, store.size(log_id))
    report = verify_log(log, runs, store.checkpoints(log_id), keyring.verifiers())
    verify_rate = report.size / (time.perf_counter() - start)
    assert report.ok, [p.describe() for p in report.problems]

    latest = store.latest_checkpoint(log_id)
    assert latest is not None
    size = latest.size
    timings: list[float] = []
    lengths: list[int] = []
    for index in (0, 1, size // 3, size // 2, size - 2, size - 1, 12345 % size, 777_777 % size):
        begin = time.perf_counter()
        proof = inclusion_proof(index, size, lambda level, idx: perfect_root(store.subtree_hashes(log_id, level, idx)))
        timings.append(time.perf_counter() - begin)
        lengths.append(len(proof))
        entry = next(store.entries(log_id, index, index + 1)).entry
        verify_inclusion(index, size, leaf_hash(entry), proof, latest.root)
    print(
        json.dumps(
            {
                "entries": size,
                "callers": options.callers,
                "durable_appends_per_s": round(rate),
                "verify_entries_per_s": round(verify_rate),
                "proof_hashes": max(lengths),
                "proof_bytes": max(lengths) * 32,
                "proof_ms_median": round(statistics.median(timings) * 1000, 3),
                "proof_ms_max": round(max(timings) * 1000, 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
