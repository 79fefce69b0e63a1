"""Per-server identities: one Ed25519 key pair per server under BASTION_HOME/identities.

A server's identity id is "srv_" and the first 16 hex digits of SHA-256 over its raw public
key, so records can name which identity a server had. Rotating keeps the old private key as
`<server>.key.<n>` (retired), so anything signed before can still be attributed.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bastion.errors import SecretError
from bastion.files import create_once, read_private, write_private
from bastion.identity.secrets import check_server_name, refusal

__all__ = ["ServerIdentities", "ServerIdentity"]


@dataclass(frozen=True, slots=True)
class ServerIdentity:
    """The public side of a server's identity."""

    server: str
    id: str
    public_key: str
    """Base64 of the raw 32-byte Ed25519 public key."""


def _raw(private: Ed25519PrivateKey) -> bytes:
    return private.private_bytes_raw()


def _identity(server: str, private: Ed25519PrivateKey) -> ServerIdentity:
    public = private.public_key().public_bytes_raw()
    return ServerIdentity(server, "srv_" + hashlib.sha256(public).hexdigest()[:16], base64.b64encode(public).decode())


class ServerIdentities:
    def __init__(self, home: Path) -> None:
        self.directory = home / "identities"

    def identity(self, server: str) -> ServerIdentity:
        """The server's current identity; its key pair is created on first use."""
        return _identity(server, self._current(server))

    def rotate(self, server: str) -> ServerIdentity:
        """Give the server a new key pair; the old private key is kept, retired, as `<server>.key.<n>`."""
        current = self._path(server)
        self._private_directory()
        if current.exists():
            read_private(current, refusal(server))  # a key open to others is refused, not quietly retired
            number = len(self._retired(server)) + 1
            while True:
                try:
                    os.link(current, current.with_name(f"{current.name}.{number}"))
                    break
                except FileExistsError:
                    number += 1
        private = Ed25519PrivateKey.generate()
        write_private(current, _raw(private))
        return _identity(server, private)

    def sign(self, server: str, data: bytes) -> bytes:
        """An Ed25519 signature over `data` with the server's current key."""
        return self._current(server).sign(data)

    def history(self, server: str) -> list[ServerIdentity]:
        """Every identity the server had, oldest first; the last is the current one."""
        paths = [*self._retired(server), self._path(server)]
        return [_identity(server, self._load(server, path)) for path in paths if path.exists()]

    def attribute(self, server: str, data: bytes, signature: bytes) -> ServerIdentity | None:
        """Which of the server's identities, current or retired, signed `data`; None if none did."""
        for identity in reversed(self.history(server)):
            public = Ed25519PublicKey.from_public_bytes(base64.b64decode(identity.public_key))
            try:
                public.verify(signature, data)
            except InvalidSignature:
                continue
            return identity
        return None

    def _path(self, server: str) -> Path:
        return self.directory / f"{check_server_name(server)}.key"

    def _retired(self, server: str) -> list[Path]:
        if not self.directory.exists():
            return []
        pattern = re.compile(rf"^{re.escape(check_server_name(server))}\.key\.(\d+)$")
        found = [(int(m.group(1)), path) for path in self.directory.iterdir() if (m := pattern.match(path.name))]
        return [path for _, path in sorted(found)]

    def _current(self, server: str) -> Ed25519PrivateKey:
        path = self._path(server)
        self._private_directory()
        if not path.exists():
            create_once(path, _raw(Ed25519PrivateKey.generate()), refusal(server))
        return self._load(server, path)

    def _private_directory(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.directory.stat().st_mode & 0o077:
            os.chmod(self.directory, 0o700)

    @staticmethod
    def _load(server: str, path: Path) -> Ed25519PrivateKey:
        raw = read_private(path, refusal(server))
        if len(raw) != 32:
            raise SecretError(
                server, "identity key", f"{path} is not an Ed25519 private key", "restore it from a backup"
            )
        return Ed25519PrivateKey.from_private_bytes(raw)
