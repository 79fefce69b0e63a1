"""The log's signing keys under BASTION_HOME/keys: Ed25519, private files 0600, rotation kept.

Every key ever used stays listed (public part) in `audit-verifiers.txt`, so checkpoints
signed before a rotation keep verifying. Key files are written and read through
`bastion.files` (atomic, 0600, refused when open to others).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bastion.audit.checkpoint import CheckpointError, Signer, Verifier
from bastion.errors import StoreError
from bastion.files import read_private, write_private

__all__ = ["Keyring"]

_KEY_FILE = re.compile(r"^audit-signing-(\d+)\.key$")


class Keyring:
    def __init__(self, home: Path, name: str) -> None:
        self.directory = home / "keys"
        self.name = name

    def signer(self, *, create: bool = True) -> Signer:
        """The current signing key; the first one is created on first use."""
        numbers = self._numbers()
        if not numbers:
            if not create:
                raise StoreError(f"no audit signing key in {self.directory}")
            return self.rotate()
        return self._load(numbers[-1])

    def rotate(self) -> Signer:
        numbers = self._numbers()
        number = numbers[-1] + 1 if numbers else 1
        private = Ed25519PrivateKey.generate()
        raw = private.private_bytes_raw()
        write_private(self.directory / f"audit-signing-{number}.key", raw)
        signer = Signer(self.name, private)
        with (self.directory / "audit-verifiers.txt").open("a", encoding="utf-8") as listing:
            listing.write(signer.verifier.encode() + "\n")
            listing.flush()
            os.fsync(listing.fileno())
        return signer

    def verifiers(self) -> list[Verifier]:
        path = self.directory / "audit-verifiers.txt"
        if not path.exists():
            return []
        found: list[Verifier] = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    found.append(Verifier.decode(line))
                except CheckpointError as exc:
                    raise StoreError(f"{path}:{number}: {exc}") from None
        return found

    def _numbers(self) -> list[int]:
        if not self.directory.exists():
            return []
        return sorted(int(m.group(1)) for p in self.directory.iterdir() if (m := _KEY_FILE.match(p.name)))

    def _load(self, number: int) -> Signer:
        path = self.directory / f"audit-signing-{number}.key"
        raw = read_private(path)
        if len(raw) != 32:
            raise StoreError(f"{path} is not an Ed25519 private key")
        private = Ed25519PrivateKey.from_private_bytes(raw)
        public = Signer(self.name or "bastion", private).verifier.public
        # A key keeps the name it was created with: the name is part of its key id.
        name = next((v.name for v in self.verifiers() if v.public == public), self.name or "bastion")
        return Signer(name, private)
