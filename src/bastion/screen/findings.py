"""Findings and how they are shown: severities, short escaped excerpts, span replacement.

Severities are what one occurrence means on its own; `listing` and `results` decide what a
severity leads to (LOW never blocks).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from bastion.screen._chars import SOFT, is_vs

__all__ = ["MARKER_HIDDEN", "Action", "Finding", "Severity", "at_least", "escape", "excerpt", "raised", "replace_spans"]

Action = Literal["flag", "strip", "block"]
MARKER_HIDDEN = "[bastion: removed hidden text]"


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        """1, 2, 3: for comparisons (`finding.severity.rank >= Severity.MEDIUM.rank`)."""
        return _RANK[self]


_RANK = {Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3}


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing a screener noticed. `excerpt` is short, escaped and printable."""

    rule: str
    severity: Severity
    where: str
    excerpt: str


_UP = {Severity.LOW: Severity.MEDIUM, Severity.MEDIUM: Severity.HIGH, Severity.HIGH: Severity.HIGH}


def raised(finding: Finding) -> Finding:
    """The finding one level up: what it says is odder where it was found."""
    return Finding(finding.rule, _UP[finding.severity], finding.where, finding.excerpt)


def at_least(finding: Finding, floor: Severity) -> Finding:
    if finding.severity.rank >= floor.rank:
        return finding
    return Finding(finding.rule, floor, finding.where, finding.excerpt)


_EXCERPT_WIDTH = 80


def _escape(char: str) -> str:
    if char.isprintable() and not is_vs(char):
        return char
    code = ord(char)
    if char in "\n\t\r":
        return {"\n": "\\n", "\t": "\\t", "\r": "\\r"}[char]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


_ASCII_ESCAPES = {code: _escape(chr(code)) for code in (*range(32), 127)}


def escape(text: str) -> str:
    """`text` with every control, format or invisible character written as an escape."""
    if text.isascii():
        return text.translate(_ASCII_ESCAPES)
    if text.isprintable() and not SOFT.search(text):
        return text
    return "".join(_escape(char) for char in text)


def excerpt(text: str, start: int, end: int) -> str:
    """A short printable window around `text[start:end]`: every control, format or invisible
    character is written as an escape (`\\x1b`, `\\u200b`), so a finding can be shown safely."""
    lo = max(0, start - 24)
    hi = min(len(text), max(end, start) + 40, lo + _EXCERPT_WIDTH)
    return ("…" if lo else "") + escape(text[lo:hi]) + ("…" if hi < len(text) else "")


def replace_spans(text: str, edits: Iterable[tuple[int, int, str]]) -> str:
    """`text` with each `(start, end, marker)` span replaced by its marker; of overlapping
    spans the one that starts first wins."""
    parts: list[str] = []
    last = 0
    for start, end, marker in sorted(edits):
        if start < last:
            continue
        parts.append(text[last:start])
        parts.append(marker)
        last = end
    parts.append(text[last:])
    return "".join(parts)
