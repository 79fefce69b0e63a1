"""Per-server secrets: AES-256-GCM at rest in BASTION_HOME/secrets.db, one set per server.

Each value is sealed with a fresh nonce and additional data binding server, name and
version, so a ciphertext copied to another row does not open. The master key comes from
BASTION_SECRETS_KEY, the OS keyring (BASTION_SECRETS_KEYRING=1), or a 0600 key file. The
store keeps a sealed check value, so a wrong master key stops it at open rather than mixing
keys. Revoking erases the ciphertext (SQLite secure_delete) and leaves the server unable to
start until a new value is set. Values never enter an exception message or a log line.
"""

from __future__ import annotations

import base64
import importlib
import os
import re
import sqlite3
from collections.abc import Mapping
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bastion.config.model import ENV_NAME, ENV_NAME_FIX
from bastion.errors import SecretError, StoreError
from bastion.files import MasterKey, Refuse, decode_key, load_master_key
from bastion.store.sqlite_db import open_private, transaction
from bastion.types import Secret

__all__ = [
    "KEYRING_ENV",
    "MASTER_KEY_ENV",
    "SECRETS_MASTER_KEY",
    "Secret",
    "SecretInfo",
    "SecretStore",
    "check_secret_name",
    "check_server_name",
    "refusal",
]

MASTER_KEY_ENV = "BASTION_SECRETS_KEY"
"""Base64 of the 32-byte master key of the secret store."""
KEYRING_ENV = "BASTION_SECRETS_KEYRING"
"""Set to 1 to keep the master key in the OS keyring (needs the `keyring` package)."""
KEYRING_SERVICE, KEYRING_USER = "bastion", "secrets-master"

_SERVER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_STORE = "*"  # the `server` of a SecretError about the store itself, not one server's secret
_KEY_CHECK = b"bastion-secrets-key-check-v1"
SCHEMA = """
CREATE TABLE IF NOT EXISTS secrets (
    server TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL, ciphertext BLOB,
    created REAL NOT NULL, updated REAL NOT NULL, revoked REAL, by TEXT NOT NULL,
    PRIMARY KEY (server, name)
);
CREATE TABLE IF NOT EXISTS secrets_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """What may be shown about a secret: never its value."""

    server: str
    name: str
    version: int
    created: float
    updated: float
    revoked: float | None
    by: str


def check_server_name(server: str) -> str:
    if not _SERVER.match(server):
        raise SecretError(
            server, "", "is not a server name", "use 1-64 letters, digits, '-' or '_', as in bastion.toml"
        )
    return server


def check_secret_name(server: str, name: str) -> str:
    if not ENV_NAME.match(name):
        raise SecretError(server, name, "is not an environment variable name", ENV_NAME_FIX)
    return name


def refusal(server: str) -> Refuse:
    """How `bastion.files` refuses a key file of `server` ("*": the store's own): a SecretError."""

    def refuse(subject: str, detail: str, fix: str) -> SecretError:
        return SecretError(server, subject, detail, fix)

    return refuse


SECRETS_MASTER_KEY = MasterKey(MASTER_KEY_ENV, "secrets-master.key", refusal(_STORE))
"""The secret store's master key, unless it is in the OS keyring."""


class _Keyring(Protocol):
    def get_password(self, service_name: str, username: str) -> str | None: ...
    def set_password(self, service_name: str, username: str, password: str) -> None: ...


def _keyring_key(create: bool) -> bytes | None:
    try:
        keyring = cast(_Keyring, importlib.import_module("keyring"))
        errors = importlib.import_module("keyring.errors")
    except ImportError:
        raise SecretError(
            _STORE, "master key", f"{KEYRING_ENV}=1 but the keyring package is not installed", "pip install keyring"
        ) from None
    failure = cast(type[Exception], errors.KeyringError)
    try:
        stored = keyring.get_password(KEYRING_SERVICE, KEYRING_USER)
        if stored is None and create:
            stored = base64.b64encode(AESGCM.generate_key(bit_length=256)).decode("ascii")
            keyring.set_password(KEYRING_SERVICE, KEYRING_USER, stored)
    except failure as exc:
        raise SecretError(
            _STORE,
            "master key",
            f"the OS keyring failed: {type(exc).__name__}",
            f"unset {KEYRING_ENV} to use a key file",
        ) from None
    if stored is None:
        return None
    return decode_key(stored, f"the keyring entry {KEYRING_SERVICE}/{KEYRING_USER}", SECRETS_MASTER_KEY.refuse)


def _master_key(home: Path, environ: Mapping[str, str], *, create: bool) -> bytes | None:
    """The key from BASTION_SECRETS_KEY, else the OS keyring when asked for, else the key file."""
    if not environ.get(MASTER_KEY_ENV) and environ.get(KEYRING_ENV) == "1":
        return _keyring_key(create)
    return load_master_key(SECRETS_MASTER_KEY, home, environ, create=create)


def _aad(server: str, name: str, version: int) -> bytes:
    return f"bastion-secret-v1\x00{server}\x00{name}\x00{version}".encode()


def _unreadable(path: Path, exc: sqlite3.Error | OSError) -> StoreError:
    return StoreError(
        f"cannot open the secret store {path}: {exc}\n  fix: restore it from a backup (it opens only with its "
        "master key), or move it aside and set each server's secrets again: bastion secrets set SERVER NAME"
    )


def _has_key_check(path: Path) -> bool:
    """Whether a store already exists there, sealed under some master key (then no new key is made)."""
    if not path.exists():
        return False
    try:
        db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise _unreadable(path, exc) from exc
    try:
        if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'secrets_meta'").fetchone() is None:
            return False  # created, never written
        return db.execute("SELECT 1 FROM secrets_meta WHERE key = 'key_check'").fetchone() is not None
    except sqlite3.Error as exc:
        raise _unreadable(path, exc) from exc
    finally:
        db.close()


class SecretStore:
    def __init__(self, path: Path, master: bytes) -> None:
        """Open the store at `path` with its master key; SecretError if the key is not the store's."""
        self.path = path
        try:
            # secure_delete: an erased ciphertext does not linger in free pages
            self._db = open_private(path, pragmas=("secure_delete=ON",))
            self._db.executescript(SCHEMA)
        except (sqlite3.DatabaseError, OSError) as exc:
            raise _unreadable(path, exc) from exc
        self._aead = AESGCM(master)
        self._check_key()

    @classmethod
    def open(cls, home: Path, environ: Mapping[str, str]) -> SecretStore:
        """The store of BASTION_HOME; its master key is created on first use, never replaced."""
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = home / "secrets.db"
        master = _master_key(home, environ, create=not _has_key_check(path))
        if master is None:
            raise SecretError(
                _STORE,
                "master key",
                f"{path} exists but its master key is missing",
                f"restore {home / 'keys' / 'secrets-master.key'}, or set {MASTER_KEY_ENV} or {KEYRING_ENV}=1",
            )
        return cls(path, master)

    def close(self) -> None:
        self._db.close()

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self._db, f"secret store {self.path}")

    def _rows(self, query: str, parameters: tuple[str, ...]) -> list[tuple[Any, ...]]:
        try:
            return self._db.execute(query, parameters).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"secret store {self.path}: {exc}") from exc

    def _check_key(self) -> None:
        with self._tx() as db:
            row = db.execute("SELECT value FROM secrets_meta WHERE key = 'key_check'").fetchone()
            if row is None:
                nonce = os.urandom(12)
                sealed = nonce + self._aead.encrypt(nonce, _KEY_CHECK, b"bastion-secrets-key-check")
                db.execute("INSERT INTO secrets_meta VALUES ('key_check', ?)", (sealed,))
                return
        try:
            self._aead.decrypt(row[0][:12], row[0][12:], b"bastion-secrets-key-check")
        except InvalidTag:
            raise SecretError(
                _STORE,
                "master key",
                f"the master key does not open {self.path}",
                f"use the key the store was created with ({MASTER_KEY_ENV}, {KEYRING_ENV} or keys/secrets-master.key)",
            ) from None

    # -- changes -----------------------------------------------------------------------------------------------

    def set(self, server: str, name: str, value: Secret, by: str, now: float) -> int:
        """Store a new value; returns its version (1 for a new secret, the previous one + 1 otherwise)."""
        return self._write(server, name, value, by, now, must_exist=False)

    def rotate(self, server: str, name: str, value: Secret, by: str, now: float) -> int:
        """Replace an existing secret's value; returns the new version."""
        return self._write(server, name, value, by, now, must_exist=True)

    def revoke(self, server: str, name: str, by: str, now: float) -> int:
        """Erase the value and mark the secret revoked; returns the version revoked."""
        check_secret_name(check_server_name(server), name)
        with self._tx() as db:
            row = db.execute("SELECT version, revoked FROM secrets WHERE server = ? AND name = ?", (server, name))
            found = row.fetchone()
            if found is None:
                raise SecretError(server, name, "does not exist", f"see: bastion secrets list {server}")
            if found[1] is not None:
                raise SecretError(
                    server, name, "is revoked already", f"set a new value: bastion secrets set {server} {name}"
                )
            db.execute(
                "UPDATE secrets SET ciphertext = NULL, revoked = ?, updated = ?, by = ? WHERE server = ? AND name = ?",
                (now, now, by, server, name),
            )
        with suppress(sqlite3.Error):  # best effort: drop the old pages from the WAL too
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return int(found[0])

    def _write(self, server: str, name: str, value: Secret, by: str, now: float, *, must_exist: bool) -> int:
        check_secret_name(check_server_name(server), name)
        plain = value.reveal().encode("utf-8")
        if not plain:
            raise SecretError(server, name, "an empty value is not a secret", "give a non-empty value")
        if b"\x00" in plain:
            raise SecretError(server, name, "the value contains a NUL character", "environment values cannot hold one")
        with self._tx() as db:
            found = db.execute("SELECT version, created FROM secrets WHERE server = ? AND name = ?", (server, name))
            row = found.fetchone()
            if row is None and must_exist:
                raise SecretError(
                    server, name, "does not exist yet", f"set it first: bastion secrets set {server} {name}"
                )
            version = 1 if row is None else int(row[0]) + 1
            created = now if row is None else float(row[1])
            nonce = os.urandom(12)
            sealed = nonce + self._aead.encrypt(nonce, plain, _aad(server, name, version))
            db.execute(
                "INSERT OR REPLACE INTO secrets VALUES (?, ?, ?, ?, ?, ?, NULL, ?)",
                (server, name, version, sealed, created, now, by),
            )
        return version

    # -- reading -----------------------------------------------------------------------------------------------

    def list(self, server: str | None = None) -> list[SecretInfo]:
        """Every secret (of one server), without values."""
        query = "SELECT server, name, version, created, updated, revoked, by FROM secrets"
        if server is None:
            rows = self._rows(query + " ORDER BY server, name", ())
        else:
            rows = self._rows(query + " WHERE server = ? ORDER BY name", (check_server_name(server),))
        return [SecretInfo(*row) for row in rows]

    def environment(self, server: str) -> dict[str, str]:
        """Every secret of a server, decrypted, for its environment; SecretError if any cannot be given."""
        rows = self._rows(
            "SELECT name, version, ciphertext FROM secrets WHERE server = ? ORDER BY name", (check_server_name(server),)
        )
        return {name: self._open(server, name, version, sealed) for name, version, sealed in rows}

    def current(self, server: str, name: str) -> Secret | None:
        """One secret's live value; None if it was never set; SecretError if it was revoked or altered."""
        check_secret_name(check_server_name(server), name)
        rows = self._rows("SELECT version, ciphertext FROM secrets WHERE server = ? AND name = ?", (server, name))
        if not rows:
            return None
        version, sealed = rows[0]
        return Secret(self._open(server, name, version, sealed))

    def _open(self, server: str, name: str, version: int, sealed: bytes | None) -> str:
        if sealed is None:
            raise SecretError(
                server,
                name,
                f"version {version} was revoked",
                f"set a new value: bastion secrets set {server} {name}",
            )
        try:
            plain = self._aead.decrypt(sealed[:12], sealed[12:], _aad(server, name, version))
        except InvalidTag:
            raise SecretError(
                server,
                name,
                "does not decrypt: it was altered or moved",
                f"set it again: bastion secrets set {server} {name}",
            ) from None
        return plain.decode("utf-8")

    def versions(self, server: str) -> dict[str, int]:
        """Name → version of a server's live secrets, for the records that name them."""
        rows = self._rows(
            "SELECT name, version FROM secrets WHERE server = ? AND revoked IS NULL ORDER BY name",
            (check_server_name(server),),
        )
        return {str(name): int(version) for name, version in rows}
