"""Encrypted payloads: AES-256-GCM under per-day data keys, wrapped by one master key.

Redacting an entry deletes its ciphertext; crypto-shredding a day deletes that day's data
key, so every payload of that day becomes unreadable at once. Entries keep only salted
commitments, so neither touches a proof.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bastion.audit.randomness import random_bytes
from bastion.errors import StoreError
from bastion.files import MasterKey

__all__ = ["AUDIT_MASTER_KEY", "MASTER_KEY_ENV", "DayEpochs", "PayloadCipher", "epoch_of"]

MASTER_KEY_ENV = "BASTION_AUDIT_KEY"
"""Base64 of a 32-byte master key; if unset, a key file under BASTION_HOME (mode 0600) is used."""
AUDIT_MASTER_KEY = MasterKey(MASTER_KEY_ENV, "audit-master.key")
"""The payload master key: load it with `bastion.files.load_master_key(AUDIT_MASTER_KEY, …)`."""


def epoch_of(moment: float) -> str:
    """The day (UTC, YYYY-MM-DD) whose data key seals the payloads of entries written at `moment`."""
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d")


class DayEpochs:
    """`epoch_of` for a writer whose clock moves forward: the day is formatted once, not once per batch."""

    def __init__(self) -> None:
        self._start = self._end = 0.0
        self._epoch = ""

    def of(self, moment: float) -> str:
        if not self._start <= moment < self._end:
            self._epoch = epoch_of(moment)
            self._start = moment - moment % 86400
            self._end = self._start + 86400
        return self._epoch


class PayloadCipher:
    """Seals payloads under a data key; the data key travels wrapped by the master key."""

    def __init__(self, master: bytes) -> None:
        self._master = AESGCM(master)

    @staticmethod
    def new_data_key() -> bytes:
        return AESGCM.generate_key(bit_length=256)

    def wrap(self, epoch: str, data_key: bytes) -> bytes:
        nonce = secrets.token_bytes(12)
        return nonce + self._master.encrypt(nonce, data_key, f"bastion-data-key:{epoch}".encode())

    def unwrap(self, epoch: str, wrapped: bytes) -> bytes:
        try:
            return self._master.decrypt(wrapped[:12], wrapped[12:], f"bastion-data-key:{epoch}".encode())
        except (InvalidTag, ValueError):  # ValueError: too short to hold a nonce
            raise StoreError(f"the data key of {epoch} does not open with this master key") from None

    @staticmethod
    def seal(data_key: bytes, log_id: str, index: int, plaintext: bytes) -> bytes:
        return PayloadCipher.seal_with(AESGCM(data_key), log_id, index, plaintext)

    @staticmethod
    def seal_with(aead: AESGCM, log_id: str, index: int, plaintext: bytes) -> bytes:
        """`seal` with the data key's cipher made once (the log writer keeps one per day)."""
        nonce = random_bytes(12)
        return nonce + aead.encrypt(nonce, plaintext, f"{log_id}:{index}".encode())

    @staticmethod
    def open(data_key: bytes, log_id: str, index: int, sealed: bytes) -> bytes:
        try:
            return AESGCM(data_key).decrypt(sealed[:12], sealed[12:], f"{log_id}:{index}".encode())
        except (InvalidTag, ValueError):  # ValueError: too short to hold a nonce
            raise StoreError(f"payload {log_id}/{index} does not decrypt: it was altered or moved") from None
