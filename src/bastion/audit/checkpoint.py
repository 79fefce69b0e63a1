"""Checkpoints in the C2SP tlog-checkpoint format, signed as C2SP signed notes with Ed25519.

A checkpoint is three lines — origin, tree size, base64 root hash — and a signed note
appends a blank line and one signature line per signer:
`— <key name> <base64(4-byte key id ‖ 64-byte signature)>`. The key id is the first four
bytes of SHA-256(key name ‖ "\\n" ‖ 0x01 ‖ public key). Verifier keys are written as
`<name>+<hex key id>+<base64(0x01 ‖ public key)>`, the note ecosystem's usual form.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "Signer",
    "Verifier",
    "key_id",
    "parse_checkpoint",
    "sign_checkpoint",
    "verify_note",
]

ED25519 = 0x01
_NAME = re.compile(r"^[^\s+]+$")
_SIGNATURE_LINE = re.compile(r"^\u2014 (\S+) ([A-Za-z0-9+/=]+)$")


class CheckpointError(ValueError):
    """A checkpoint or note that is malformed or whose signature does not verify."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def body(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode('ascii')}\n"


def key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ED25519]) + public).digest()[:4]


@dataclass(frozen=True, slots=True)
class Verifier:
    name: str
    public: bytes

    @property
    def id(self) -> bytes:
        return key_id(self.name, self.public)

    def encode(self) -> str:
        return f"{self.name}+{self.id.hex()}+{base64.b64encode(bytes([ED25519]) + self.public).decode('ascii')}"

    @classmethod
    def decode(cls, text: str) -> Verifier:
        try:
            name, hex_id, encoded = text.strip().split("+", 2)
            raw = base64.b64decode(encoded, validate=True)
        except (ValueError, binascii.Error):
            raise CheckpointError(f"not a verifier key (NAME+KEYID+KEY): {text.strip()[:80]!r}") from None
        if len(raw) != 33 or raw[0] != ED25519:
            raise CheckpointError("verifier key is not an Ed25519 key")
        verifier = cls(name, raw[1:])
        if verifier.id.hex() != hex_id.lower():
            raise CheckpointError("verifier key id does not match its name and key")
        return verifier

    def check(self, text: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, text)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True, slots=True)
class Signer:
    name: str
    private: Ed25519PrivateKey

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise CheckpointError(f"key name {self.name!r} must have no spaces or '+'")

    @classmethod
    def generate(cls, name: str) -> Signer:
        return cls(name, Ed25519PrivateKey.generate())

    @property
    def verifier(self) -> Verifier:
        public = self.private.public_key().public_bytes_raw()
        return Verifier(self.name, public)

    def sign(self, text: bytes) -> str:
        signature = self.private.sign(text)
        blob = base64.b64encode(self.verifier.id + signature).decode("ascii")
        return f"\u2014 {self.name} {blob}\n"


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer) -> str:
    body = checkpoint.body()
    return f"{body}\n{signer.sign(body.encode('utf-8'))}"


def parse_checkpoint(body: str) -> Checkpoint:
    lines = body.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise CheckpointError("a checkpoint has an origin, a size and a root hash, each on its own line")
    origin, size_text, root_text = lines[0], lines[1], lines[2]
    if not origin:
        raise CheckpointError("the checkpoint's origin line is empty")
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise CheckpointError(f"the checkpoint's size {size_text!r} is not a decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error:
        raise CheckpointError("the checkpoint's root hash is not base64") from None
    if len(root) != 32:
        raise CheckpointError("the checkpoint's root hash is not 32 bytes")
    return Checkpoint(origin, int(size_text), root)


def verify_note(note: str, verifiers: list[Verifier]) -> tuple[Checkpoint, Verifier]:
    """Check a signed checkpoint against trusted keys; returns it and the key that signed it."""
    body, separator, signatures = note.partition("\n\n")
    if not separator:
        raise CheckpointError("the note has no signature block")
    body += "\n"
    checkpoint = parse_checkpoint(body)
    by_id = {(v.name, v.id): v for v in verifiers}
    for line in signatures.splitlines():
        match = _SIGNATURE_LINE.match(line)
        if match is None:
            raise CheckpointError(f"malformed signature line: {line[:80]!r}")
        try:
            blob = base64.b64decode(match.group(2), validate=True)
        except binascii.Error:
            raise CheckpointError("a signature is not base64") from None
        verifier = by_id.get((match.group(1), blob[:4]))
        if verifier is not None and verifier.check(body.encode("utf-8"), blob[4:]):
            return checkpoint, verifier
    raise CheckpointError("no signature by a trusted key verifies")
