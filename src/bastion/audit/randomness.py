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
_lock = threading.Lock()
_pool = bytearray()


def random_bytes(count: int) -> bytes:
    """`count` fresh bytes from os.urandom, never handed out before."""
    with _lock:  # held for a slice, never across an await: the log's thread and the event loop both draw
        if len(_pool) < count:
            _pool.extend(os.urandom(max(_PAGE, count)))
        drawn = bytes(_pool[:count])
        del _pool[:count]
    return drawn


def _forget() -> None:
    _pool.clear()


os.register_at_fork(after_in_child=_forget)
