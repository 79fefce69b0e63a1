"""Verifying a large log on every core: worker processes read and check runs of rows
themselves (nothing but 32-byte leaf hashes comes back), the main process folds the tree.

Reading, hashing and parsing are most of the cost and need no order; folding and checking
signed roots is cheap and must be in order. Small logs are checked inline.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

from bastion.audit.verify import RUN, Checked, check_rows
from bastion.store.audit import AuditStore
from bastion.store.audit_open import open_store

__all__ = ["PARALLEL_FROM", "checked_runs"]

PARALLEL_FROM = 200_000
"""Below this many entries, starting worker processes costs more than it saves."""


def _check_run(home: Path, url: str | None, log_id: str, start: int, end: int) -> Checked:
    store = open_store(home, url)  # each worker reads through a connection of its own
    try:
        return check_rows(log_id, start, store.raw_entries(log_id, start, end))
    finally:
        store.close()


def checked_runs(
    store: AuditStore,
    home: Path | None,
    url: str | None,
    log_id: str,
    size: int,
    *,
    parallel_from: int = PARALLEL_FROM,
    run: int = RUN,
) -> Iterator[Checked]:
    """The log's rows as checked runs, in order; in worker processes when the log is large and the
    store can be reopened there (from `home` and `url`; without `home`, always here)."""
    workers = os.cpu_count() or 1
    if home is None or size < parallel_from or workers < 2:
        yield from _inline(store, log_id, size, run)
        return
    pending: deque[Future[Checked]] = deque()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        for start in range(0, size, run):
            pending.append(pool.submit(_check_run, home, url, log_id, start, min(start + run, size)))
            if len(pending) > 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    # Rows added after `size` was read belong to a later verification; the next checkpoint covers them.


def _inline(store: AuditStore, log_id: str, size: int, run: int) -> Iterator[Checked]:
    for start in range(0, size, run):
        yield check_rows(log_id, start, store.raw_entries(log_id, start, min(start + run, size)))
