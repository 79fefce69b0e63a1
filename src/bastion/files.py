"""Files that must be whole and private: atomic replacement, 0600 key files, master keys.

Every file Bastion rewrites in place (keys, witnesses, bastion.lock, bastion.toml, a client's
config) goes through `replace_atomically`: a uniquely named temporary beside the target,
created with O_EXCL and its final mode, written, fsynced, renamed over the target, then the
directory fsynced. A crash leaves the old file or the new one, never half of either, and
never a temporary with looser permissions than the file it becomes.

Private files (keys) are refused when anyone but their owner may read them: Bastion stops
with a typed error naming the fix rather than use a key others may have copied. Errors are
built by the caller's `Refuse`, so the secret store raises `SecretError` and the audit log
`StoreError` from one implementation.

Ground floor: the standard library and `bastion.errors` only.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from bastion.errors import BastionError, StoreError

__all__ = [
    "KEY_SIZE",
    "MasterKey",
    "Refuse",
    "create_once",
    "current_mode",
    "decode_key",
    "fsync_directory",
    "load_master_key",
    "read_private",
    "refuse_as_store_error",
    "replace_atomically",
    "write_new",
    "write_private",
]

KEY_SIZE = 32
"""Bytes in a master key (AES-256)."""

Refuse = Callable[[str, str, str], BastionError]
"""(subject: the file or variable at fault, what is wrong, how to fix it) → the error to raise."""


def refuse_as_store_error(subject: str, detail: str, fix: str) -> BastionError:
    """The default refusal: a StoreError whose message says what is wrong and how to fix it."""
    del subject  # the detail names the file already
    return StoreError(f"{detail}; {fix}")


def fsync_directory(directory: Path) -> None:
    """Make a rename or a new name in `directory` durable (POSIX: the entry lives in the directory)."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def current_mode(path: Path, default: int) -> int:
    """The permission bits of `path`, or `default` when there is no such file yet."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        return default


def write_new(path: Path, data: bytes, mode: int) -> None:
    """Create `path` with `data` and exactly `mode`, durably; FileExistsError if the name is taken.

    A failed write leaves nothing behind: the half-written file is removed before the error goes on.
    """
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(descriptor, "wb") as file:
            os.fchmod(file.fileno(), mode)  # exactly `mode`: the umask may have narrowed it
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def replace_atomically(path: Path, data: bytes, *, mode: int) -> None:
    """Replace (or create) `path` with `data` and `mode`: all of it or none of it, durably.

    The temporary beside the target has a unique name (two writers never share one) and is
    created with `mode`, so a secret is never readable by others, not even for a moment.
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    write_new(temporary, data, mode)
    try:
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def write_private(path: Path, data: bytes) -> None:
    """Replace `path` with `data`, readable only by its owner (0600; missing parents made 0700)."""
    for directory in reversed([path.parent, *path.parent.parents]):
        if not directory.exists():
            directory.mkdir(mode=0o700)
    replace_atomically(path, data, mode=0o600)


def read_private(path: Path, refuse: Refuse = refuse_as_store_error) -> bytes:
    """A key file's bytes, refused if anyone but its owner may read or write it."""
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise refuse(path.name, f"{path} is readable by others (mode {mode:o})", f"run: chmod 600 {path}")
    return path.read_bytes()


def create_once(path: Path, data: bytes, refuse: Refuse = refuse_as_store_error) -> bytes:
    """Write a private file (0600, 0700 parents) unless it exists; return what the file holds.

    The content is complete before the name appears (a link to a fsynced temporary file), and
    when two processes race, both end up with the one that won.
    """
    staged = path.with_name(f".{path.name}.{secrets.token_hex(6)}.new")
    write_private(staged, data)
    try:
        os.link(staged, path)
    except FileExistsError:
        return read_private(path, refuse)
    finally:
        staged.unlink()
    fsync_directory(path.parent)
    return data


@dataclass(frozen=True, slots=True)
class MasterKey:
    """Where one 32-byte master key lives: base64 in an environment variable, else a key file
    `BASTION_HOME/keys/<file>` (0600) that is created on first use when asked."""

    env: str
    file: str
    refuse: Refuse = refuse_as_store_error

    def path(self, home: Path) -> Path:
        return home / "keys" / self.file


_NEW_KEY = "generate one with: openssl rand -base64 32"


def decode_key(encoded: str, source: str, refuse: Refuse = refuse_as_store_error) -> bytes:
    """A 32-byte key from its base64 text; `source` names where the text came from, for the error."""
    try:
        key = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        raise refuse(source, f"{source} is not base64", _NEW_KEY) from None
    if len(key) != KEY_SIZE:
        raise refuse(source, f"{source} must decode to {KEY_SIZE} bytes, not {len(key)}", _NEW_KEY)
    return key


def load_master_key(key: MasterKey, home: Path, environ: Mapping[str, str], *, create: bool) -> bytes | None:
    """The master key from its environment variable or its key file; None when absent and not to be created.

    A key file open to others, or one that is not 32 bytes, is refused (never replaced): data
    sealed under it would be lost with it.
    """
    encoded = environ.get(key.env)
    if encoded:
        return decode_key(encoded, key.env, key.refuse)
    path = key.path(home)
    if path.exists():
        found = read_private(path, key.refuse)
    elif create:
        found = create_once(path, secrets.token_bytes(KEY_SIZE), key.refuse)
    else:
        return None
    if len(found) != KEY_SIZE:
        raise key.refuse(path.name, f"{path} is not a {KEY_SIZE}-byte key", f"restore it from a backup ({_NEW_KEY})")
    return found
