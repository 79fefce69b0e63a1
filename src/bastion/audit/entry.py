"""The audit entry: versioned canonical JSON (RFC 8785) that the Merkle tree commits to.

An entry says what happened and to whom, never what was said: arguments and results appear
only as salted commitments, SHA-256 over a domain tag, a per-entry random salt, the field
name and the canonical JSON of the value. The values themselves live encrypted in a separate
payload that can be redacted or crypto-shredded later while every proof stays valid.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, cast

import orjson

from bastion.audit.canonical import canonical, canonical_any
from bastion.audit.randomness import random_bytes

__all__ = [
    "ENTRY_VERSION",
    "Kind",
    "Record",
    "SealedRecord",
    "commit",
    "encode_entry",
    "format_time",
    "index_columns",
    "seal",
]

ENTRY_VERSION = 1
_COMMIT_TAG = b"bastion-commitment-v1\x00"


class Kind(StrEnum):
    """What an entry records. One log holds them all: one complete population for an auditor."""

    CALL_INTENT = "call.intent"
    CALL_OUTCOME = "call.outcome"
    CALL_DENIED = "call.denied"
    CALL_ERROR = "call.error"
    """A request the gateway itself failed on (an unexpected exception): answered -32603, and recorded."""
    LISTING = "listing.admitted"
    GATEWAY_START = "gateway.start"
    GATEWAY_STOP = "gateway.stop"
    CONFIG = "config.loaded"
    KEY_ROTATED = "key.rotated"
    PAYLOAD_REDACTED = "payload.redacted"
    PAYLOADS_SHREDDED = "payload.shredded"
    SERVER_STATE = "server.state"
    POLICY_CHANGE = "policy.change"
    SANDBOX_FINDING = "sandbox.finding"
    PIN_DRIFT = "pin.drift"
    PIN_CHANGE = "pin.change"
    CLIENT_CHANGE = "client.change"
    APPROVAL_REQUESTED = "approval.requested"
    APPROVAL_DECIDED = "approval.decided"
    HEARTBEAT = "heartbeat"
    CHECK_FLIP = "check.flip"
    ALERT_CHANGE = "alert.change"
    ALERT_SENT = "alert.sent"
    ALERT_TRIAGE = "alert.triage"
    SCREEN_FINDING = "screen.finding"
    SECRET_CHANGE = "secret.change"  # noqa: S105 (an entry kind, not a secret)
    IDENTITY_CHANGE = "identity.change"
    AUTH_DENIED = "auth.denied"
    """A bearer token refused at the HTTP front (expired, wrong audience, missing scope …): why, never the token."""


@dataclass(frozen=True, slots=True)
class Record:
    """An event to record: its public fields, and the values to commit to and encrypt."""

    kind: Kind
    fields: Mapping[str, Any] = field(default_factory=dict[str, Any])
    secret: Mapping[str, Any] = field(default_factory=dict[str, Any])
    """Field name → value (arguments, result …): committed in the entry, stored only encrypted."""


@dataclass(frozen=True, slots=True)
class SealedRecord:
    """A record with its commitments computed; `payload` is what gets encrypted (salt included)."""

    kind: Kind
    fields: Mapping[str, Any]
    commitments: Mapping[str, str]
    payload: bytes | None


def commit(salt: bytes, name: str, canonical_value: bytes) -> str:
    digest = hashlib.sha256(_COMMIT_TAG + salt + name.encode("utf-8") + b"\x00" + canonical_value)
    return digest.hexdigest()


def seal(record: Record) -> SealedRecord:
    """Commit to the secret values with a fresh salt.

    The payload keeps the salt and each value's canonical text, so whoever may decrypt it can
    re-check every commitment byte for byte.
    """
    if not record.secret:
        return SealedRecord(record.kind, record.fields, {}, None)
    salt = random_bytes(16)
    commitments: dict[str, str] = {}
    values: dict[str, str] = {}
    for name, value in record.secret.items():
        text = canonical_any(value)
        commitments[name] = commit(salt, name, text)
        values[name] = text.decode("utf-8")
    payload = orjson.dumps({"salt": salt.hex(), "values": values})
    return SealedRecord(record.kind, record.fields, commitments, payload)


def format_time(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def encode_entry(index: int, moment: float, log_id: str, sealed: SealedRecord) -> bytes:
    """The canonical bytes of entry `index`: what the leaf hash covers."""
    entry: dict[str, Any] = {
        **sealed.fields,
        "v": ENTRY_VERSION,
        "i": index,
        "log": log_id,
        "t": round(moment * 1000),
        "kind": str(sealed.kind),  # a StrEnum's text, without the enum's property lookup
    }
    if sealed.commitments:
        entry["commitments"] = dict(sealed.commitments)
    return canonical(entry)


def index_columns(fields: Mapping[str, Any]) -> tuple[str | None, str | None, str | None, str | None]:
    """What the store indexes an entry by besides its kind and time: (server name, tool, client, decision).

    The writer fills the columns with this and the verifier recomputes it from the entry, so the two
    can never drift apart. Only text is indexed; anything else is None.
    """
    server, decision = fields.get("server"), fields.get("decision")
    name = cast(Mapping[str, Any], server).get("name") if _is_mapping(server) else None
    action = cast(Mapping[str, Any], decision).get("action") if _is_mapping(decision) else None
    tool, client = fields.get("tool"), fields.get("client")
    return (
        name if isinstance(name, str) else None,
        tool if isinstance(tool, str) else None,
        client if isinstance(client, str) else None,
        action if isinstance(action, str) else None,
    )


def _is_mapping(value: object) -> bool:
    return type(value) is dict or isinstance(value, Mapping)  # the exact type first: no ABC look-up
