"""The approval state machine, as values: a request waits, and the first decision wins.

    PENDING ──approve──▶ APPROVED
       │ ──deny─────▶ DENIED
       └──timeout───▶ EXPIRED

A decision names who made it and through which channel, and its scope: this call only (the
default), the rest of the client's session, or a time window. A scope wider than the call
becomes a standing grant that later calls of the same tool by the same client match without
asking again. Everything here is pure; the store and the channels are the edges.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

__all__ = [
    "Approval",
    "Grant",
    "Scope",
    "Status",
    "Verdict",
    "decide",
    "grant_for",
    "mask_arguments",
    "new_id",
]

SECRET_NAMES = re.compile(r"(pass(word)?|secret|token|api[_-]?key|auth|credential|private[_-]?key|cookie)", re.I)
SECRET_VALUES = re.compile(
    r"(sk-[A-Za-z0-9_-]{16,}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,}|xox[abpr]-[\w-]{10,}|AKIA[0-9A-Z]{16}"
    r"|AIza[0-9A-Za-z_-]{30,}|-----BEGIN [A-Z ]*PRIVATE KEY-----)"
)


class Status(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"


class Scope(StrEnum):
    CALL = "call"
    SESSION = "session"
    WINDOW = "window"


@dataclass(frozen=True, slots=True)
class Verdict:
    """A person's (or a channel's) answer."""

    approve: bool
    by: str
    channel: str
    """cli, dashboard, webhook, elicitation (the client's own user: a weaker assurance)."""
    at: float
    scope: Scope = Scope.CALL
    until: float | None = None
    """For a window scope: when the standing grant ends."""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Approval:
    """One call waiting for a person, with everything they need to decide."""

    id: str
    created: float
    expires: float
    gateway: str
    client: str
    session: str
    server: str
    tool: str
    risk: str
    arguments: str
    """Pretty-printed JSON, secrets masked."""
    why: str
    """Why policy asked (the rule's reason)."""
    recent: tuple[str, ...] = ()
    """What the agent did just before in this session, newest last."""
    status: Status = Status.PENDING
    verdict: Verdict | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "created": self.created,
            "expires": self.expires,
            "gateway": self.gateway,
            "client": self.client,
            "session": self.session,
            "server": self.server,
            "tool": self.tool,
            "risk": self.risk,
            "arguments": self.arguments,
            "why": self.why,
            "recent": list(self.recent),
            "status": self.status.value,
        }
        if self.verdict is not None:
            v = self.verdict
            data["decision"] = {
                "by": v.by,
                "channel": v.channel,
                "at": v.at,
                "scope": v.scope.value,
                "until": v.until,
                "reason": v.reason,
            }
        return data


@dataclass(frozen=True, slots=True)
class Grant:
    """A standing approval from a session- or window-scoped decision."""

    client: str
    server: str
    tool: str
    session: str | None
    """Set for a session scope: only calls of this session match."""
    until: float | None
    """Set for a window scope: calls before this moment match."""
    approval: str
    by: str

    def covers(self, client: str, session: str, server: str, tool: str, now: float) -> bool:
        if (client, server, tool) != (self.client, self.server, self.tool):
            return False
        if self.session is not None and session != self.session:
            return False
        return self.until is None or now < self.until


def new_id() -> str:
    return "apr_" + secrets.token_hex(8)


def decide(approval: Approval, verdict: Verdict) -> Approval | None:
    """The request after a verdict, or None when it was decided (or expired) already: the first decision wins."""
    if approval.status is not Status.PENDING:
        return None
    if verdict.at >= approval.expires:
        return replace(approval, status=Status.EXPIRED)
    return replace(approval, status=Status.APPROVED if verdict.approve else Status.DENIED, verdict=verdict)


def grant_for(approval: Approval) -> Grant | None:
    """The standing grant an approved, wider-than-one-call decision makes."""
    verdict = approval.verdict
    if approval.status is not Status.APPROVED or verdict is None or verdict.scope is Scope.CALL:
        return None
    session = approval.session if verdict.scope is Scope.SESSION else None
    until = verdict.until if verdict.scope is Scope.WINDOW else None
    return Grant(approval.client, approval.server, approval.tool, session, until, approval.id, verdict.by)


def mask_arguments(arguments: object) -> str:
    """Arguments for a person to read: pretty JSON with values under secret-looking names, and
    secret-looking values anywhere, masked."""
    return json.dumps(_mask(arguments, None), indent=2, ensure_ascii=False, sort_keys=True, default=str)


def _mask(value: object, name: str | None) -> object:
    if isinstance(value, Mapping):
        return {str(k): _mask(v, str(k)) for k, v in value.items()}  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, list):
        return [_mask(v, name) for v in value]  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, str):
        if name is not None and SECRET_NAMES.search(name):
            return "••••••••"
        return SECRET_VALUES.sub("••••••••", value)
    return value
