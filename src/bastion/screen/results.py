"""Screening what a tool returns: invisible characters, injections, exfiltration links, secrets.

`screen_result` reads every text block (`content[i].text`), embedded resource text
(`content[i].resource.text`) and string leaf of `structuredContent`; image and audio data is
never touched. Findings are placed as `result[0].text`, `result[1].resource.text`,
`structuredContent.rows[2].note`. The rules are those of `invisible` (ANSI escapes, invisible
Unicode, bare carriage returns), `injection` (read on the text with look-alikes folded, and
on every encoded blob it holds, decoded once: `normalize`), `links` (`exfil.*`) and
`secrets` (`secret.*`); each module's docstring lists its rules. Rule ids are stable.

No finding shows a piece of a secret: when a text holds one, every other finding whose
excerpt shows six or more of its characters has the excerpt withheld.

With `listed`, the names of the tools the server lists, a result that orders a call of any
other tool is `injection.tool_transfer`, and a false error naming one is raised a level.

Policy: an action applies to findings at or above its threshold: injections HIGH (the
heuristics are the noisiest), exfiltration and secrets MEDIUM, invisible characters any. The
default strips all of them (`ResultPolicy()`): a HIGH injection's sentence becomes the marker.
`strip` replaces what was found with a visible marker (`[bastion: redacted secret]`,
`[bastion: removed image link to evil.example]`, `[bastion: removed suspected instructions]`);
`block` makes the whole result None, which the caller turns into an error. With
`invisible="flag"` a text is left as it came unless another rule rewrites it, in which case
the rewritten text is the clean one. Detectors always read the clean text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from operator import is_not
from typing import Any, Literal, cast

from bastion.screen.findings import Action, Finding, Severity, escape, raised, replace_spans
from bastion.screen.index import TextIndex
from bastion.screen.injection import injection_scan
from bastion.screen.invisible import hidden_segments, invisible_findings, strip_invisible
from bastion.screen.links import Edit, exfiltration
from bastion.screen.normalize import encoded_blobs
from bastion.screen.secrets import MARKER_SECRET, secrets

__all__ = ["MARKER_INSTRUCTIONS", "MARKER_SECRET", "ResultPolicy", "ResultVerdict", "screen_result"]

MARKER_INSTRUCTIONS = "[bastion: removed suspected instructions]"
_MEDIUM = Severity.MEDIUM.rank


@dataclass(frozen=True, slots=True)
class ResultPolicy:
    injections: Action = "strip"
    exfiltration: Action = "strip"
    secrets: Action = "strip"
    invisible: Literal["strip", "flag"] = "strip"


@dataclass(frozen=True, slots=True)
class ResultVerdict:
    result: dict[str, Any] | None  # None when blocked
    findings: tuple[Finding, ...]
    changed: bool


def screen_result(
    result: Mapping[str, Any], policy: ResultPolicy, listed: frozenset[str] | None = None
) -> ResultVerdict:
    """Screens a `tools/call` result. `listed`: the names of the tools the server lists, when
    known; a result that tells the model to call any other tool is `injection.tool_transfer`."""
    screen = _Screen(policy, None if listed is None else _lower(listed))
    replaced: dict[str, Any] = {}
    content = result.get("content")
    if isinstance(content, list):
        blocks = cast("list[Any]", content)
        screened = [screen.block(item, i) for i, item in enumerate(blocks)]
        if any(map(is_not, screened, blocks)):
            replaced["content"] = screened
    if "structuredContent" in result:
        structured = screen.walk(result["structuredContent"], "structuredContent")
        if structured is not result["structuredContent"]:
            replaced["structuredContent"] = structured
    findings = tuple(screen.findings)
    if screen.blocked:
        return ResultVerdict(None, findings, True)
    if replaced:
        return ResultVerdict({**result, **replaced}, findings, True)
    return ResultVerdict(result if isinstance(result, dict) else dict(result), findings, False)


@dataclass(slots=True)
class _Screen:
    policy: ResultPolicy
    listed: frozenset[str] | None = None
    findings: list[Finding] = field(default_factory=list[Finding])
    blocked: bool = False

    def block(self, item: Any, i: int) -> Any:
        if type(item) is not dict and not isinstance(item, Mapping):  # a dict without asking the ABC
            return item
        block = cast("Mapping[str, Any]", item)
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            text = self.text(block["text"], f"result[{i}].text")
            return block if text is block["text"] else {**block, "text": text}
        resource = block.get("resource")
        if kind == "resource" and isinstance(resource, Mapping):
            inner = cast("Mapping[str, Any]", resource)
            if isinstance(inner.get("text"), str):
                text = self.text(inner["text"], f"result[{i}].resource.text")
                return block if text is inner["text"] else {**block, "resource": {**inner, "text": text}}
        return block

    def walk(self, value: Any, where: str) -> Any:
        if isinstance(value, str):
            return self.text(value, where)
        if value is None or isinstance(value, int | float):  # a JSON number, boolean or null
            return value
        if type(value) is dict or isinstance(value, Mapping):
            items = cast("Mapping[Any, Any]", value)
            new = {key: self.walk(item, f"{where}.{escape(str(key))}") for key, item in items.items()}
            return new if any(new[key] is not items[key] for key in new) else items
        if isinstance(value, list):
            elements = cast("list[Any]", value)
            new_list = [self.walk(item, f"{where}[{i}]") for i, item in enumerate(elements)]
            return new_list if any(map(is_not, new_list, elements)) else elements
        return value

    def text(self, text: str, where: str) -> str:
        index = TextIndex(text)
        clean = text
        findings: list[Finding] = []
        hidden: list[str] = []
        evasive = False  # hidden characters beside what it says
        if index.suspect:
            stripped, removed = strip_invisible(text)
            if removed:
                findings += invisible_findings(text, where)
                hidden = hidden_segments(text)
                clean = stripped
                index = TextIndex(clean)
                evasive = any(f.severity.rank >= Severity.MEDIUM.rank for f in findings)
        edits: list[Edit] = []
        instructions: list[Edit] = []
        scan = injection_scan(
            index, where, spans_at=Severity.MEDIUM if evasive else Severity.HIGH, listed=self.listed, mentions=False
        )
        if scan.findings:
            said = [raised(f) for f in scan.findings] if evasive else list(scan.findings)
            findings += said
            if any(f.severity is Severity.HIGH for f in said):
                instructions += [(s, e, MARKER_INSTRUCTIONS) for s, e in scan.spans]
        inner: list[tuple[str, int, int]] = [(segment, *_span(clean, segment)) for segment in hidden] if hidden else []
        inner += [(blob.decoded, blob.start, blob.end) for blob in encoded_blobs(clean)]
        for segment, start, end in inner:
            said = [
                raised(f)
                for f in injection_scan(segment, f"{where}[hidden]", listed=self.listed, mentions=False).findings
            ]
            findings += said
            if end > start and any(f.severity is Severity.HIGH for f in said):
                instructions.append((start, end, MARKER_INSTRUCTIONS))
        if instructions:
            self.act(self.policy.injections, edits, instructions)
        links = exfiltration(index, where)
        found_secrets = secrets(index, where)
        if found_secrets:  # no other finding may show a piece of a secret in its excerpt
            values = [clean[start:end] for _, (start, end, _) in found_secrets]
            findings = [_scrubbed(f, values) for f in findings]
            links = [(_scrubbed(f, values), edit) for f, edit in links]
        if links or found_secrets:
            checks: tuple[tuple[list[tuple[Finding, Edit]], Action], ...] = (
                (links, self.policy.exfiltration),
                (found_secrets, self.policy.secrets),
            )
            for found, acting in checks:
                if found:
                    findings += (finding for finding, _ in found)
                    self.act(acting, edits, [edit for finding, edit in found if finding.severity.rank >= _MEDIUM])
        if findings:
            self.findings += findings
        out = replace_spans(clean, edits) if edits else clean if self.policy.invisible == "strip" else text
        return text if out == text else out

    def act(self, action: Action, edits: list[Edit], found: list[Edit]) -> None:
        if not found or action == "flag":
            return
        if action == "block":
            self.blocked = True
        else:
            edits.extend(found)


@lru_cache(maxsize=64)
def _lower(names: frozenset[str]) -> frozenset[str]:
    return frozenset(name.lower() for name in names)


def _span(text: str, segment: str) -> tuple[int, int]:
    """Where `segment` is in `text`, or an empty span (it was stripped with its escape sequence)."""
    at = text.find(segment)
    return (at, at + len(segment)) if at != -1 else (0, 0)


def _scrubbed(finding: Finding, secrets: list[str]) -> Finding:
    """The finding, its excerpt withheld if it shows six or more characters of a secret."""
    for secret in secrets:
        shown = escape(secret)
        if any(shown[i : i + 6] in finding.excerpt for i in range(max(1, len(shown) - 5))):
            return Finding(finding.rule, finding.severity, finding.where, MARKER_SECRET)
    return finding
