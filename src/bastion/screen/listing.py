"""Screening what a server says about itself before a client sees it: tools, prompts,
resources and instructions.

Every string a model reads is screened: a tool's name, title and description, its annotations,
and every string of its input and output schemas at any depth (property descriptions and
titles, `default`, `const`, `enum` and `examples` values, property names); a prompt's name,
title, description, arguments and, for a fetched prompt, its message texts; a resource's or
resource template's name, title and description; a server's instructions. `_meta` and `icons`
are not read, nor, outside schemas, `data`, `blob`, `uri`, `mimeType`, `type` and `role` (they
are not prose).

Rules, besides the shared `invisible.*` (never less than MEDIUM here: no definition needs a
control or a hidden character), `padding.*`, `injection.*` (`bastion.screen.injection`; a
tool's own parameter names count as destinations for data, and a property's own description
asking for data is raised a level), `exfil.*` (`bastion.screen.links`, always HIGH here) and
`listing.annotation_mismatch`, `listing.preference`, `listing.scope`
(`bastion.screen.definition`):

- `listing.shadowing`: a text names a tool of another server (`other_tools`, the names as
  each server gives them). MEDIUM; HIGH when the sentence bends how that tool is used
  ("must", "always", "never", "instead", "whenever", "all", "do not", "only", "bcc",
  "deprecated", "before calling", "replacement" …). A name that is a plain word (`search`,
  `fetch`) counts only in code (`` `fetch` ``) or next to the word "tool". A name shared with
  the screened tool is not shadowing.
- `listing.value_instructions`: a `default`, `const`, `enum` or `examples` value of five
  words or more that reads as an instruction (second person, a modal, "ignore", "please").
  MEDIUM. Injection findings in such a value gain one level (it is an odd place to talk).
- `listing.name`: a tool, prompt or property name outside `[A-Za-z0-9_.-]{1,128}`, the MCP
  spec's alphabet: LOW, MEDIUM with non-ASCII characters (a look-alike of another name). A
  resource's name is a label and is screened as text.

Hidden characters beside an instruction are an evasion: injection findings in a text that
held invisible characters or padding gain one level, and what hid behind an escape sequence
is screened on its own.

Actions: `flag` returns the item unchanged; `strip` removes invisible characters and ANSI
escapes (a run of tag characters or of four or more invisible ones becomes
`[bastion: removed hidden text]`), collapses padding, and replaces every hidden block
(`<IMPORTANT>…</IMPORTANT>`) and every sentence with a HIGH injection, shadowing, preference
or scope finding with the marker; an instruction-like value becomes the marker. Names are
never rewritten (the server would not know the call), so under `strip` a name with a MEDIUM
or HIGH finding blocks the item. `block` drops the item (None) when a finding reaches
`block_at` (MEDIUM by default, or HIGH); LOW never blocks. For instructions under `block`,
such a finding sets `InstructionsVerdict.block_server`: the caller lists nothing the server
offers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, cast

from bastion.screen.definition import definition_findings, preference_findings, scope_findings
from bastion.screen.findings import MARKER_HIDDEN, Action, Finding, Severity, at_least, excerpt, raised, replace_spans
from bastion.screen.index import TextIndex
from bastion.screen.injection import injection_scan
from bastion.screen.invisible import (
    collapse_padding,
    hidden_segments,
    invisible_findings,
    padding_findings,
    strip_invisible,
)
from bastion.screen.links import exfiltration

__all__ = [
    "BlockAt",
    "InstructionsVerdict",
    "ListingVerdict",
    "screen_instructions",
    "screen_prompt",
    "screen_resource",
    "screen_server_instructions",
    "screen_tool",
]

BlockAt = Literal["medium", "high"]
"""The lowest severity at which `block` drops an item (LOW never blocks)."""


@dataclass(frozen=True, slots=True)
class ListingVerdict:
    item: Mapping[str, Any] | None  # the (possibly stripped) definition to list; None when blocked
    findings: tuple[Finding, ...]


@dataclass(frozen=True, slots=True)
class InstructionsVerdict:
    """A server's screened instructions. `block_server` is set under `block` when a finding
    reaches `block_at`: the server said something poisoned about itself, so none of what it
    offers should be listed (its instructions are None then too)."""

    text: str | None
    findings: tuple[Finding, ...]
    block_server: bool


def screen_tool(
    tool: Mapping[str, Any],
    action: Action,
    other_tools: frozenset[str] = frozenset(),
    block_at: BlockAt = "medium",
) -> ListingVerdict:
    own = tool.get("name")
    screen = _Screen(action, _others(other_tools, own if isinstance(own, str) else ""), Severity(block_at))
    screen.params = _parameters(tool)
    screen.own = own if isinstance(own, str) else ""
    walked = screen.walk(tool, "")
    screen.findings += definition_findings(tool)
    return screen.verdict(tool, walked)


def screen_prompt(prompt: Mapping[str, Any], action: Action, block_at: BlockAt = "medium") -> ListingVerdict:
    screen = _Screen(action, frozenset(), Severity(block_at))
    return screen.verdict(prompt, screen.walk(prompt, ""))


def screen_resource(resource: Mapping[str, Any], action: Action, block_at: BlockAt = "medium") -> ListingVerdict:
    """A resource or resource template as listed: its name, title and description. Its name is
    a label for people, not an identifier, so the tool-name alphabet does not apply."""
    screen = _Screen(action, frozenset(), Severity(block_at), identifiers=False)
    return screen.verdict(resource, screen.walk(resource, ""))


def screen_server_instructions(text: str | None, action: Action, block_at: BlockAt = "medium") -> InstructionsVerdict:
    if text is None:
        return InstructionsVerdict(None, (), block_server=False)
    screen = _Screen(action, frozenset(), Severity(block_at))
    verdict = screen.verdict({"instructions": text}, {"instructions": screen.text(text, "instructions", "text")})
    kept = None if verdict.item is None else cast(str, verdict.item["instructions"])
    return InstructionsVerdict(kept, verdict.findings, block_server=verdict.item is None)


def screen_instructions(text: str | None, action: Action) -> tuple[str | None, tuple[Finding, ...]]:
    """The instructions as listed (None when blocked) and the findings: `screen_server_instructions`
    without the server-wide verdict."""
    verdict = screen_server_instructions(text, action)
    return verdict.text, verdict.findings


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
    r"\b(?:must|always|never|instead|whenever|all|do\s+not|don'?t|only|should|redirect|bcc|cc|replace[sd]?|override|"
    r"ignore|deprecated|broken|unreliable|before\s+(?:calling|using|you\s+call)|after\s+(?:calling|using)|"
    r"drop-in|replacement|official)\b"
)
_INSTRUCTION_LIKE = re.compile(
    r"\b(?:you|your|must|should|always|never|ignore|please|do\s+not|don'?t|before|instead)\b"
)
_PROPERTY = re.compile(r"(?:^|\.)properties\.[^.]+\.(?:description|title)$")
_DATA_RULES = frozenset({"injection.data_flow", "injection.credentials", "injection.sensitive_file"})


@lru_cache(maxsize=16)
def _others(other_tools: frozenset[str], own: str) -> frozenset[str]:
    return frozenset(name.lower() for name in other_tools) - {own.lower()}


@dataclass(slots=True)
class _Screen:
    action: Action
    others: frozenset[str]
    block_at: Severity = Severity.MEDIUM
    findings: list[Finding] = field(default_factory=list[Finding])
    bad_name: bool = False
    params: frozenset[str] = frozenset()
    identifiers: bool = True  # `name` is an identifier (tools, prompts), not a label (resources)
    own: str = ""  # the tool's name

    def verdict(self, item: Mapping[str, Any], stripped: Any) -> ListingVerdict:
        findings = tuple(self.findings)
        if self.action == "flag":
            return ListingVerdict(item, findings)
        if self.action == "block":
            floor = max(self.block_at.rank, Severity.MEDIUM.rank)  # LOW never blocks
            blocked = any(f.severity.rank >= floor for f in findings)
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
            elif key == "name" and not schema and isinstance(item, str) and self.identifiers:
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
        index = TextIndex(clean, self.params)
        scan = injection_scan(index, where, spans_at=Severity.MEDIUM if found else Severity.HIGH)
        injections = list(scan.findings)
        edits = [(start, end, MARKER_HIDDEN) for start, end in scan.spans]
        if found:  # hidden characters beside instructions: an evasion; what hid behind escapes, read on its own
            injections = [raised(f) if f.severity.rank >= Severity.MEDIUM.rank else f for f in injections]
            for segment in hidden_segments(base):
                injections += (raised(f) for f in injection_scan(segment, where).findings)
        if _PROPERTY.search(where):  # a property's own description: the property is where data would go
            injections = [raised(f) if f.rule in _DATA_RULES else f for f in injections]
        found += preference_findings(index, where, edits, self.own)
        found += scope_findings(index, where, edits)
        found += [_at_least(f, Severity.HIGH) for f, _ in exfiltration(index, where)]
        value_alarm = False
        if kind == "value":
            injections = [raised(f) for f in injections]
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
    return at_least(finding, floor)


def _parameters(tool: Mapping[str, Any]) -> frozenset[str]:
    """The tool's own top-level argument names, lower case: where a description may ask data to go."""
    schema = tool.get("inputSchema")
    properties = cast(Mapping[str, Any], schema).get("properties") if isinstance(schema, Mapping) else None
    if not isinstance(properties, Mapping):
        return frozenset()
    return frozenset(str(name).lower() for name in cast(Mapping[Any, Any], properties) if len(str(name)) >= 3)


def _printable(key: object) -> str:
    text = str(key)
    return text if text.isprintable() and len(text) <= 64 else excerpt(text, 0, 0)
