"""Shared value types: small, frozen, with no behaviour beyond describing themselves."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = ["Action", "Decision", "Era", "Reply", "RpcError", "is_error"]


class Era(StrEnum):
    """The two shapes of MCP: the `initialize` handshake (2024-11-05 … 2025-11-25) and the
    stateless per-request envelope (2026-07-28)."""

    HANDSHAKE = "handshake"
    MODERN = "modern"


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
                code if isinstance(code, int) else -32603,
                message if isinstance(message, str) else "error without a message",
                error.get("data"),  # pyright: ignore[reportUnknownMemberType]
            )
        return cls(-32603, "malformed error object")


Reply = dict[str, Any] | RpcError
"""The outcome of a request: its result object, or an error."""


def is_error(reply: Reply) -> bool:
    return isinstance(reply, RpcError)


class Action(StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    APPROVE = "approve"


@dataclass(frozen=True, slots=True)
class Decision:
    """What policy says about a call: the action, the id of the rule that decided, and why.

    `hidden` marks a tool-level denial: the tool is not listed to this client, and a call of
    it is answered exactly as for a tool that does not exist."""

    action: Action
    rule: str
    reason: str
    risk: str = ""
    hidden: bool = False

    def to_record(self) -> dict[str, str]:
        record = {"action": self.action.value, "rule": self.rule, "reason": self.reason}
        if self.risk:
            record["risk"] = self.risk
        return record
