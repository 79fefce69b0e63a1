"""Salts and nonces for audit entries, drawn from the operating system's CSPRNG a page at a time.

Every entry needs fresh random bytes (a commitment salt, an AES-GCM nonce): one `getrandom`
call per draw cost more than hashing the entry. This pool reads 4 KiB at once and hands out
slices; each byte is handed out once. A forked child starts with an empty pool, so parent and
child never share bytes.
"""

from __future__ import annotations

import os
import threading

__all__ = ["random_bytes"]

_PAGE = 4096


class _Pool:
    """A page of random bytes and how much of it has been handed out (a draw slices, never shifts the rest)."""

    __slots__ = ("page", "taken")

    def __init__(self) -> None:
        self.page = b""
        self.taken = 0


_lock = threading.Lock()
_pool = _Pool()


def random_bytes(count: int) -> bytes:
    """`count` fresh bytes from os.urandom, never handed out before."""
    with _lock:  # held for a slice, never across an await: the log's thread and the event loop both draw
        pool = _pool
        end = pool.taken + count
        if end > len(pool.page):  # what is left is too short: it is dropped, never handed out
            pool.page, pool.taken, end = os.urandom(max(_PAGE, count)), 0, count
        drawn = pool.page[pool.taken : end]
        pool.taken = end
    return drawn


def _forget() -> None:
    _pool.page, _pool.taken = b"", 0


os.register_at_fork(after_in_child=_forget)
