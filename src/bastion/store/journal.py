"""The intent journal: a small file that makes a batch of audit rows durable before the store has them.

A strict call's intent must be durable before the call is forwarded. Committing it to SQLite with
`synchronous=FULL` writes several pages and flushes the WAL; writing the batch's rows in place into a
file written once with zeros when it was made, opened with `O_DSYNC`, is one small write whose
flush changes no file metadata: about a third of the CPU and half the wall time per sequential call
(`bench/durable_write_bench.py`). The SQLite store keeps the journaled rows in memory and commits them
(durably) a little later, together; then the journal starts again from its beginning.

The file lives beside the database (`audit.db.journal/`), so it shares the database's durability.
Each journal belongs to one open store and is held with an exclusive `flock` for its life. A journal
nobody holds was left by a process that stopped without committing everything: whoever opens the
store next replays it (`orphans`, `records`) before reading anything, then removes it.

A record is a header (magic, the journal's generation, body length, CRC-32 of generation and body)
and a body. Every restart from the beginning takes a new generation, so the records of an earlier
round that still lie behind the current one are never read as current: reading stops at the first
record that is torn, damaged or of another generation. Rows the store committed already are in
its tables; replay skips them by index.
"""

from __future__ import annotations

import base64
import fcntl
import os
import secrets
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from bastion.errors import StoreError
from bastion.files import fsync_directory

__all__ = ["JOURNAL_SIZE", "IntentJournal", "decode_rows", "encode_rows", "orphans", "records"]

JOURNAL_SIZE = 1 << 20
"""Bytes written once when a journal is made; a batch that no longer fits is committed to the store instead."""

_CHUNK = 1 << 16
_HEADER = struct.Struct("<4sQII")
_MAGIC = b"BJ01"
_SUFFIX = ".jnl"


class IntentJournal:
    """One open store's journal: records written in place, each durable when `write` returns."""

    def __init__(self, directory: Path, size: int = JOURNAL_SIZE) -> None:
        directory.mkdir(mode=0o700, exist_ok=True)
        token = secrets.token_hex(8)
        making = directory / f".{token}.new"
        self.path = directory / f"{token}{_SUFFIX}"
        self.size = size
        fd = os.open(making, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_DSYNC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # before its name is final: nobody replays it under us
            zeros = bytes(min(size, _CHUNK))  # in chunks: a gateway's peak memory would count a whole file's worth
            for offset in range(0, size, _CHUNK):
                os.pwrite(fd, zeros[: size - offset], offset)
            os.rename(making, self.path)  # the lock stays with the open file
            fsync_directory(directory)
        except BaseException:
            os.close(fd)
            making.unlink(missing_ok=True)
            raise
        self._fd = fd
        self._offset = 0
        self.generation = secrets.randbits(63)

    def room(self, length: int) -> bool:
        return self._offset + _HEADER.size + length <= self.size

    def write(self, body: bytes) -> None:
        """Append one record; durable when this returns (raises OSError if it may not be)."""
        generation = self.generation.to_bytes(8, "little")
        header = _HEADER.pack(_MAGIC, self.generation, len(body), zlib.crc32(body, zlib.crc32(generation)))
        record = header + body
        if os.pwrite(self._fd, record, self._offset) != len(record):
            raise OSError(f"short write to the audit journal {self.path}")
        self._offset += len(record)

    def restart(self) -> None:
        """Start again from the beginning: everything written so far is committed to the store."""
        self._offset = 0
        self.generation = (self.generation + 1) & ((1 << 63) - 1)

    def close(self) -> None:
        """Remove the journal: everything written to it is committed to the store."""
        self.path.unlink(missing_ok=True)
        os.close(self._fd)


def orphans(directory: Path) -> Iterator[tuple[Path, int]]:
    """Journals nobody holds, each with an open, locked descriptor (the caller closes it)."""
    if not directory.is_dir():
        return
    for path in sorted(directory.iterdir()):
        if path.name.startswith(".") and path.name.endswith(".new"):  # a journal being made, or never finished
            _remove_if_unheld(path)
            continue
        if path.suffix != _SUFFIX:
            continue
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # replayed by another process meanwhile
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # its store is open
            os.close(fd)
            continue
        if not path.exists():  # replayed and removed by another process between our open and lock
            os.close(fd)
            continue
        yield path, fd


def records(fd: int) -> Iterator[bytes]:
    """The current round's record bodies, in order, up to the first torn or foreign one."""
    data = os.pread(fd, os.fstat(fd).st_size, 0)
    offset, generation = 0, None
    while offset + _HEADER.size <= len(data):
        magic, gen, length, crc = _HEADER.unpack_from(data, offset)
        body = data[offset + _HEADER.size : offset + _HEADER.size + length]
        if magic != _MAGIC or len(body) != length or (generation is not None and gen != generation):
            return
        if zlib.crc32(body, zlib.crc32(gen.to_bytes(8, "little"))) != crc:
            return
        generation = gen
        yield body
        offset += _HEADER.size + length


def encode_rows(log_id: str, entries: list[tuple[Any, ...]], nodes: list[tuple[Any, ...]]) -> bytes:
    """A batch's store rows (`audit_entries` and `audit_nodes` columns, log id first) as one record body."""
    return orjson.dumps([log_id, [_plain(row[1:]) for row in entries], [_plain(row[1:]) for row in nodes]])


def decode_rows(body: bytes, where: Path) -> tuple[str, list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The rows `encode_rows` made, each with its log id first again. Raises StoreError if malformed."""
    try:
        log_id, entries, nodes = _shaped(orjson.loads(body), list, 3)
        log_id = _shaped(log_id, str)
        entry_rows = [(log_id, *_typed(_shaped(row, list, 11), _ENTRY_BYTES)) for row in _shaped(entries, list)]
        node_rows = [(log_id, *_typed(_shaped(row, list, 3), _NODE_BYTES)) for row in _shaped(nodes, list)]
    except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
        raise StoreError(f"the audit journal {where} holds a record that is not a batch of rows: {exc}") from None
    return log_id, entry_rows, node_rows


_ENTRY_BYTES = frozenset({1, 2, 10})
"""Positions (after the log id) of the entry columns that are bytes: leaf, entry, sealed payload."""
_NODE_BYTES = frozenset({2})


def _shaped(value: Any, kind: type, length: int | None = None) -> Any:
    if not isinstance(value, kind) or (length is not None and len(value) != length):
        raise TypeError(f"expected a {kind.__name__}" + (f" of {length}" if length is not None else ""))
    return value


def _plain(row: tuple[Any, ...]) -> list[Any]:
    return [base64.b64encode(v).decode("ascii") if isinstance(v, bytes) else v for v in row]


def _typed(row: list[Any], binary: frozenset[int]) -> tuple[Any, ...]:
    return tuple(base64.b64decode(v, validate=True) if i in binary and v is not None else v for i, v in enumerate(row))


def _remove_if_unheld(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        path.unlink(missing_ok=True)
    except BlockingIOError:
        pass
    finally:
        os.close(fd)
