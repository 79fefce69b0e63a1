"""Screening what a server says about itself before a client sees it: tools, prompts, instructions.

Every string a model reads is screened: a tool's name, title and description, its annotations,
and every string of its input and output schemas at any depth (property descriptions and
titles, `default`, `const`, `enum` and `examples` values, property names); a prompt's name,
title, description, arguments and, for a fetched prompt, its message texts; a server's
instructions. `_meta` and `icons` are not read, nor, outside schemas, `data`, `blob`, `uri`,
`mimeType`, `type` and `role` (they are not prose).

Rules, besides the shared `invisible.*` (never less than MEDIUM here: no definition needs a
control or a hidden character), `padding.*` and `injection.*` (`bastion.screen.text`):

- `listing.shadowing`: a text names a tool of another server (`other_tools`, the names as
  each server gives them). MEDIUM; HIGH when the sentence bends how that tool is used
  ("must", "always", "never", "instead", "whenever", "all", "do not", "only", "bcc" …). A
  name that is a plain word (`search`, `fetch`) counts only in code (`` `fetch` ``) or
  next to the word "tool". A name shared with the screened tool is not shadowing.
- `listing.value_instructions`: a `default`, `const`, `enum` or `examples` value of five
  words or more that reads as an instruction (second person, a modal, "ignore", "please").
  MEDIUM. Injection findings in such a value gain one level (it is an odd place to talk).
- `listing.name`: a name (tool, argument, property) outside `[A-Za-z0-9_.-]{1,128}`, the
  MCP spec's alphabet: LOW, MEDIUM with non-ASCII characters (a look-alike of another name).

Actions: `flag` returns the item unchanged; `strip` removes invisible characters and ANSI
escapes (a run of tag characters or of four or more invisible ones becomes
`[bastion: removed hidden text]`), collapses padding, and replaces every hidden block
(`<IMPORTANT>…</IMPORTANT>`) and every sentence with a HIGH injection or shadowing finding
with the marker; an instruction-like value becomes the marker. Names are never rewritten
(the server would not know the call), so under `strip` a name with a MEDIUM or HIGH finding
blocks the item. `block` drops the item (None) when any finding is MEDIUM or more; LOW
never blocks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, cast

from bastion.screen.text import (
    MARKER_HIDDEN,
    Action,
    Finding,
    Severity,
    TextIndex,
    collapse_padding,
    excerpt,
    injection_scan,
    invisible_findings,
    padding_findings,
    replace_spans,
    strip_invisible,
)

__all__ = ["ListingVerdict", "screen_instructions", "screen_prompt", "screen_tool"]


@dataclass(frozen=True, slots=True)
class ListingVerdict:
    item: Mapping[str, Any] | None  # the (possibly stripped) definition to list; None when blocked
    findings: tuple[Finding, ...]


def screen_tool(tool: Mapping[str, Any], action: Action, other_tools: frozenset[str] = frozenset()) -> ListingVerdict:
    own = tool.get("name")
    screen = _Screen(action, _others(other_tools, own if isinstance(own, str) else ""))
    return screen.verdict(tool, screen.walk(tool, ""))


def screen_prompt(prompt: Mapping[str, Any], action: Action) -> ListingVerdict:
    screen = _Screen(action, frozenset())
    return screen.verdict(prompt, screen.walk(prompt, ""))


def screen_instructions(text: str | None, action: Action) -> tuple[str | None, tuple[Finding, ...]]:
    if text is None:
        return None, ()
    screen = _Screen(action, frozenset())
    verdict = screen.verdict({"instructions": text}, {"instructions": screen.text(text, "instructions", "text")})
    return (None if verdict.item is None else cast(str, verdict.item["instructions"])), verdict.findings


_Kind = Literal["text", "value"]
_SKIP = frozenset({"_meta", "icons"})
_NOT_PROSE = frozenset({"data", "blob", "uri", "mimeType", "type", "role"})
_SCHEMAS = frozenset({"inputSchema", "outputSchema"})
_NAME_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})
_VALUES = frozenset({"default", "const", "enum", "examples"})
_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
_WORD = re.compile(r"[A-Za-z0-9_.\-/:]{0,40}")
_HIDDEN_RUN = re.compile(
    "[\U000e0000-\U000e007f]+|[\u00ad\u115f\u1160\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\u3164\ufeff\ufe00-\ufe0f]{4,}"
)
_TOKEN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*[A-Za-z0-9_]")
_BENDING = re.compile(
    r"\b(?:must|always|never|instead|whenever|all|do\s+not|don'?t|only|should|redirect|bcc|cc|replace|override|ignore)\b"
)
_INSTRUCTION_LIKE = re.compile(
    r"\b(?:you|your|must|should|always|never|ignore|please|do\s+not|don'?t|before|instead)\b"
)
_UP = {Severity.LOW: Severity.MEDIUM, Severity.MEDIUM: Severity.HIGH, Severity.HIGH: Severity.HIGH}


@lru_cache(maxsize=16)
def _others(other_tools: frozenset[str], own: str) -> frozenset[str]:
    return frozenset(name.lower() for name in other_tools) - {own.lower()}


@dataclass(slots=True)
class _Screen:
    action: Action
    others: frozenset[str]
    findings: list[Finding] = field(default_factory=list[Finding])
    bad_name: bool = False

    def verdict(self, item: Mapping[str, Any], stripped: Any) -> ListingVerdict:
        findings = tuple(self.findings)
        if self.action == "flag":
            return ListingVerdict(item, findings)
        if self.action == "block":
            blocked = any(f.severity.rank >= Severity.MEDIUM.rank for f in findings)
            return ListingVerdict(None if blocked else item, findings)
        return ListingVerdict(None if self.bad_name else cast(Mapping[str, Any], stripped), findings)

    def walk(self, value: Any, where: str, *, schema: bool = False, names: bool = False, kind: _Kind = "text") -> Any:
        if isinstance(value, str):
            return self.text(value, where, kind)
        if isinstance(value, list):
            items = cast(list[Any], value)
            new_list = [self.walk(item, f"{where}[{i}]", schema=schema, kind=kind) for i, item in enumerate(items)]
            return new_list if any(a is not b for a, b in zip(new_list, items, strict=True)) else items
        if not isinstance(value, Mapping):
            return value
        mapping = cast(Mapping[Any, Any], value)
        out: dict[Any, Any] = {}
        for key, item in mapping.items():
            sub = f"{where}.{_printable(key)}" if where else _printable(key)
            if names:
                self.name(str(key), sub)
                out[key] = self.walk(item, sub, schema=True)
            elif not isinstance(key, str) or key in _SKIP or (not schema and key in _NOT_PROSE):
                out[key] = item
            elif key == "name" and not schema and isinstance(item, str):
                self.name(item, sub)
                out[key] = item
            else:
                inner = schema or key in _SCHEMAS
                child_kind: _Kind = "value" if (schema and key in _VALUES) or kind == "value" else "text"
                out[key] = self.walk(item, sub, schema=inner, names=inner and key in _NAME_MAPS, kind=child_kind)
        return out if any(out[key] is not mapping[key] for key in out) else mapping

    def name(self, name: str, where: str) -> None:
        found = [_at_least(f, Severity.MEDIUM) for f in invisible_findings(name, where)]
        if not _NAME.fullmatch(name):
            severity = Severity.LOW if name.isascii() else Severity.MEDIUM
            found.append(Finding("listing.name", severity, where, excerpt(name, 0, len(name))))
        self.findings.extend(found)
        if self.action == "strip" and any(f.severity.rank >= Severity.MEDIUM.rank for f in found):
            self.bad_name = True

    def text(self, text: str, where: str, kind: _Kind) -> str:
        if _WORD.fullmatch(text):
            return text  # "string", "object", "path", "utf-8": nothing to hide or say
        found = [_at_least(f, Severity.MEDIUM) for f in invisible_findings(text, where)]
        found += padding_findings(text, where)
        base = _HIDDEN_RUN.sub(_marker, text) if self.action == "strip" and found else text
        clean = collapse_padding(strip_invisible(base)[0]) if found else text
        index = TextIndex(clean)
        scan = injection_scan(index, where)
        injections = list(scan.findings)
        edits = [(start, end, MARKER_HIDDEN) for start, end in scan.spans]
        value_alarm = False
        if kind == "value":
            injections = [Finding(f.rule, _UP[f.severity], f.where, f.excerpt) for f in injections]
            if len(clean.split()) >= 5 and _INSTRUCTION_LIKE.search(index.low):
                found.append(Finding("listing.value_instructions", Severity.MEDIUM, where, excerpt(clean, 0, 0)))
            value_alarm = any(f.severity.rank >= Severity.MEDIUM.rank for f in (*found, *injections))
        found += injections
        if self.others:
            found += self.shadowing(index, where, edits)
        self.findings.extend(found)
        if self.action != "strip":
            return text
        if value_alarm:
            return MARKER_HIDDEN
        out = replace_spans(clean, edits) if edits else clean
        return text if out == text else out

    def shadowing(self, index: TextIndex, where: str, edits: list[tuple[int, int, str]]) -> list[Finding]:
        found: list[Finding] = []
        text, low = index.text, index.low
        for match in _TOKEN.finditer(low):
            name = match.group()
            if name not in self.others:
                continue
            start, end = match.span()
            if name.isalpha() and not (
                text[start - 1 : start] in ("`", "'", '"')
                or "tool" in low[max(0, start - 12) : start]
                or "tool" in low[end : end + 8]
            ):
                continue
            first, last = index.sentence(start, end)
            bending = _BENDING.search(low, first, last) is not None
            found.append(
                Finding(
                    "listing.shadowing", Severity.HIGH if bending else Severity.MEDIUM, where, excerpt(text, start, end)
                )
            )
            if bending:
                edits.append((first, last, MARKER_HIDDEN))
        return found


def _marker(match: re.Match[str]) -> str:
    """The marker for a hidden run, set off by spaces from the words around it."""
    text, start, end = match.string, match.start(), match.end()
    before = " " if start and not text[start - 1].isspace() else ""
    after = " " if end < len(text) and not text[end].isspace() else ""
    return before + MARKER_HIDDEN + after


def _at_least(finding: Finding, floor: Severity) -> Finding:
    if finding.severity.rank >= floor.rank:
        return finding
    return Finding(finding.rule, floor, finding.where, finding.excerpt)


def _printable(key: object) -> str:
    text = str(key)
    return text if text.isprintable() and len(text) <= 64 else excerpt(text, 0, 0)
