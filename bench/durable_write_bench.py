"""What one durable write costs, for issue 13 §5: can a sequential call's intent be made durable
before it is forwarded more cheaply than by the strict audit store's own commit?

Each way writes what a sequential call commits (two entries of about 700 bytes, their sealed
payloads and, every 16 entries, a stored subtree node) and returns only once the write would
survive a power cut, except the one marked as not durable. For each: the process's CPU time
(user + system, so the kernel's side of the flush counts) and the wall time per write, the
median of `--rounds` rounds of `--writes` writes, in a directory on the filesystem the audit
log would use (`--dir`, default the system's temporary directory).

- `audit store, journaled`: Bastion's SQLite audit store as a sequential call uses it
  (`try_append_batch`): the batch written to the intent journal, the held rows committed
  together every 0.1 s (`bastion.store.journal`; session 9);
- `audit store, synchronous=FULL`: the same store committing every batch (`append_batch`: what
  a sequential call's intent cost before the journal), WAL, a passive WAL checkpoint every 1,000
  writes as the log writer's once-a-second checkpoint would make at about that rate;
- `audit store, synchronous=NORMAL`: the same with the WAL not flushed per commit (not durable:
  a power cut may lose the last commits; for reference only);
- `journal, overwrite + O_DSYNC`: a preallocated file written once at creation, each record
  written in place with `O_DSYNC` (the bare write the intent journal makes);
- `journal, append + fdatasync`: records appended to a growing file, then `fdatasync`.

    .venv/bin/python bench/durable_write_bench.py [--writes 2000] [--rounds 3] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bastion.store.audit import EntryRow, LogRow, NodeRow, PayloadRow
from bastion.store.audit_sqlite import SqliteAuditStore

ENTRY = os.urandom(700)
SEALED = os.urandom(400)
RECORD = ENTRY * 2 + SEALED * 2  # what a journal record would hold for the same two entries


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def audit_store(directory: Path, synchronous: str, *, journaled: bool = False) -> Callable[[int], None]:
    store = SqliteAuditStore(directory / f"audit-{synchronous.lower()}-{journaled}.db")
    store._db.execute(f"PRAGMA synchronous={synchronous}")  # pyright: ignore[reportPrivateUsage]
    store.create_log(LogRow("bench", "bench", "bench", os.getpid(), time.time()))

    def write(i: int) -> None:
        idx = 2 * i
        entries = [
            EntryRow(
                n, os.urandom(32), ENTRY, time.time(), "call.intent" if n == idx else "call.result", "echo", "echo"
            )
            for n in (idx, idx + 1)
        ]
        nodes = [NodeRow(4, n // 16, os.urandom(32)) for n in (idx, idx + 1) if n % 16 == 15]
        payloads = [PayloadRow(n, "2026-12-06", SEALED) for n in (idx, idx + 1)]
        if not journaled:
            store.append_batch("bench", entries, nodes, payloads)
        elif not store.try_append_batch("bench", entries, nodes, payloads):
            raise RuntimeError("the audit store was busy")
        if i % 1000 == 999:
            store._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()  # pyright: ignore[reportPrivateUsage]

    return write


def journal_overwrite(directory: Path, writes: int) -> Callable[[int], None]:
    path = directory / "journal-overwrite"
    slot = 4096
    with path.open("wb") as file:  # written once, so that later writes change no metadata
        file.write(b"\0" * slot * writes)
        file.flush()
        os.fsync(file.fileno())
    fd = os.open(path, os.O_WRONLY | os.O_DSYNC)

    def write(i: int) -> None:
        os.pwrite(fd, RECORD, slot * (i % writes))

    return write


def journal_append(directory: Path) -> Callable[[int], None]:
    fd = os.open(directory / "journal-append", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def write(_: int) -> None:
        os.write(fd, RECORD)
        os.fdatasync(fd)

    return write


def measure(write: Callable[[int], None], writes: int, rounds: int) -> tuple[float, float]:
    cpus: list[float] = []
    walls: list[float] = []
    done = 1  # write 0 was the warm-up
    for _ in range(rounds):
        started_cpu, started = cpu(), time.perf_counter()
        for i in range(done, done + writes):
            write(i)
        done += writes
        cpus.append((cpu() - started_cpu) / writes * 1e6)
        walls.append((time.perf_counter() - started) / writes * 1e6)
    return statistics.median(cpus), statistics.median(walls)


def main() -> None:
    parser = argparse.ArgumentParser(description="What one durable write costs (issue 13 §5).")
    parser.add_argument("--writes", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="where the files go (default: a temporary directory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as name:
        directory = Path(name)
        ways: list[tuple[str, Callable[[int], None]]] = [
            ("audit store, journaled", audit_store(directory, "FULL", journaled=True)),
            ("audit store, synchronous=FULL", audit_store(directory, "FULL")),
            ("audit store, synchronous=NORMAL (not durable)", audit_store(directory, "NORMAL")),
            ("journal, overwrite + O_DSYNC", journal_overwrite(directory, args.writes)),
            ("journal, append + fdatasync", journal_append(directory)),
        ]
        print(f"{'way':<48} {'CPU µs/write':>13} {'wall µs/write':>14}")
        for label, write in ways:
            write(0)  # files and pages in place before timing
            cpu_us, wall_us = measure(write, args.writes, args.rounds)
            print(f"{label:<48} {cpu_us:>13.1f} {wall_us:>14.1f}", flush=True)


if __name__ == "__main__":
    main()
