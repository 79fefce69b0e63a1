"""What an argument constraint returns when it refuses a value."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Refusal", "quote"]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a constraint refused an argument value.

    `rule` is a stable id (`paths.outside_roots`, `urls.private_address` …) that tests, audit
    entries and `bastion policy explain` pin; `reason` is one sentence a person understands,
    safe to print (values are quoted with `quote`, never echoed raw).
    """

    rule: str
    reason: str


def quote(value: str, limit: int = 80) -> str:
    """A value as it may appear in a reason: repr-escaped (no control characters) and shortened."""
    text = value if len(value) <= limit else value[: limit - 1] + "…"
    return repr(text)
