"""The values detectors read and write: a call as seen by the gateway, and a signal about it.

`CallEvent` is one tool call after its outcome is known. `Signal` is what a detector says about
the traffic: a stable `key` (the alert store deduplicates on it), a `Severity`, a one-line
summary safe to show and log, the moment it refers to and structured details. A signal with
`recovery=True` says the condition behind `key` has cleared (`Alerts.apply` resolves the alert).

Keys read as `detector:name=value,name=value`, built by `signal_key`, for example
`first_use:server=fs,tool=write_file`. `Signal.server` names the server a signal is about (empty
when it is about a client only): the alert store uses it to hold alerts about the tools of a
server whose health alert is open.

Severity by risk class (`severity_for_risk`): read is INFO, write WARNING, network, destructive and
exec CRITICAL; an unknown class counts as write, like a tool without evidence in the inventory.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "OUTCOMES",
    "RISKS",
    "CallEvent",
    "Severity",
    "Signal",
    "severity_for_risk",
    "signal_key",
]

RISKS = ("read", "write", "network", "destructive", "exec")
"""Risk classes of a tool, least dangerous first (the inventory's `RISK_ORDER`)."""

OUTCOMES = ("ok", "tool_error", "error", "denied")
"""How a call ended: answered, answered with `isError`, failed (transport/protocol), refused."""


@dataclass(frozen=True, slots=True)
class CallEvent:
    """One tool call, seen after its outcome: who called what, how dangerous, how it ended."""

    at: float
    client: str
    server: str
    tool: str
    risk: str
    outcome: str
    latency_ms: float


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 for INFO, 1 for WARNING, 2 for CRITICAL: for comparisons."""
        return _RANK[self]


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}

_RISK_SEVERITY = {
    "read": Severity.INFO,
    "write": Severity.WARNING,
    "network": Severity.CRITICAL,
    "destructive": Severity.CRITICAL,
    "exec": Severity.CRITICAL,
}


def severity_for_risk(risk: str) -> Severity:
    """INFO for read, WARNING for write (and an unknown class), CRITICAL for network, destructive, exec."""
    return _RISK_SEVERITY.get(risk, Severity.WARNING)


def signal_key(detector: str, **parts: str) -> str:
    """`detector:name=value,…` in the order given: `signal_key("volume", server="fs")`."""
    return detector + ":" + ",".join(f"{name}={value}" for name, value in parts.items())


@dataclass(frozen=True, slots=True)
class Signal:
    """What a detector noticed. `at` is the moment it refers to, from the event or the caller."""

    detector: str
    key: str
    severity: Severity
    summary: str
    at: float
    details: Mapping[str, Any] = field(default_factory=dict[str, Any])
    server: str = ""
    recovery: bool = False
