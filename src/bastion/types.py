"""Shared value types: small, frozen, with no behaviour beyond describing themselves."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bastion.codes import INTERNAL_ERROR

__all__ = ["Action", "Approved", "Decision", "Era", "Reply", "RiskClass", "RpcError", "Secret", "is_error"]


class Era(StrEnum):
    """The two shapes of MCP: the `initialize` handshake (2024-11-05 … 2025-11-25) and the
    stateless per-request envelope (2026-07-28)."""

    HANDSHAKE = "handshake"
    MODERN = "modern"


# What a tool can do, as `policy.risk` classifies it. It lives on the ground floor because config
# (risk overrides), policy (rules by risk) and the views all name it. A comment, not a docstring:
# pydantic would copy a docstring into the published config schema.
class RiskClass(StrEnum):
    READ = "read"
    WRITE = "write"
    DESTRUCTIVE = "destructive"
    EXEC = "exec"
    NETWORK = "network"


class Secret:
    """A secret value that does not show itself: repr and str are masked; `reveal()` gives it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode("utf-8"), other._value.encode("utf-8"))

    def __hash__(self) -> int:
        return hash((Secret, self._value))


@dataclass(frozen=True, slots=True)
class RpcError:
    """A JSON-RPC error as a value: what a refused or failed request returns."""

    code: int
    message: str
    data: Any = None

    def to_wire(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error

    @classmethod
    def from_wire(cls, error: Any) -> RpcError:
        if isinstance(error, dict):
            code = error.get("code")  # pyright: ignore[reportUnknownMemberType,reportUnknownVariableType]
            message = error.get("message")  # pyright: ignore[reportUnknownMemberType,reportUnknownVariableType]
            return cls(
                code if isinstance(code, int) else INTERNAL_ERROR,
                message if isinstance(message, str) else "error without a message",
                error.get("data"),  # pyright: ignore[reportUnknownMemberType]
            )
        return cls(INTERNAL_ERROR, "malformed error object")


Reply = dict[str, Any] | RpcError
"""The outcome of a request: its result object, or an error."""


def is_error(reply: Reply) -> bool:
    return isinstance(reply, RpcError)


class Action(StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    APPROVE = "approve"


@dataclass(frozen=True, slots=True)
class Approved:
    """Who let a held call through: the approval request answered (or the standing grant's), the
    person, and the channel they answered on (None for a standing grant, decided earlier)."""

    request: str
    by: str
    channel: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """What policy says about a call: the action, the id of the rule that decided, and why.

    `hidden` marks a tool-level denial: the tool is not listed to this client, and a call of
    it is answered exactly as for a tool that does not exist.

    The same value travels on the call (`Call.decision`) and grows there, never in the pure
    evaluation: the candidate policy's decision beside it, `enforced=False` on a monitored
    server, and who approved a held call. `to_record` is the one place its audit shape is made."""

    action: Action
    rule: str
    reason: str
    risk: str = ""
    hidden: bool = False
    candidate: Decision | None = None
    """What the candidate policy (`[policy] candidate`) decided for the same call: recorded, never applied."""
    enforced: bool = True
    """False when the decision is only recorded: a monitored server's refusal or approval wait."""
    approved: Approved | None = None

    def to_record(self) -> dict[str, Any]:
        """The decision as audit entries state it; `hidden` is not recorded (the rule says it)."""
        record: dict[str, Any] = {"action": self.action.value, "rule": self.rule, "reason": self.reason}
        if self.risk:
            record["risk"] = self.risk
        if self.candidate is not None:
            record["candidate"] = self.candidate.to_record()
        if not self.enforced:
            record["enforced"] = False
        if self.approved is not None:
            record["approval"] = self.approved.request
            record["approved_by"] = self.approved.by
            if self.approved.channel is not None:
                record["channel"] = self.approved.channel
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Decision:
        """A decision back from its record (`to_record`), for a hidden tool's reason as a listing kept it."""
        candidate = record.get("candidate")
        approved = (
            Approved(str(record["approval"]), str(record.get("approved_by", "")), record.get("channel"))
            if "approval" in record
            else None
        )
        return cls(
            Action(record["action"]),
            str(record["rule"]),
            str(record["reason"]),
            str(record.get("risk", "")),
            candidate=cls.from_record(candidate) if isinstance(candidate, Mapping) else None,  # pyright: ignore[reportUnknownArgumentType]
            enforced=record.get("enforced") is not False,
            approved=approved,
        )
