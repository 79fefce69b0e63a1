"""What a definition says about itself beyond its prose: annotations, preferences, tool counts. Pure.

- `listing.annotation_mismatch`: annotations that contradict the tool's name. `readOnlyHint:
  true` on a tool whose name says it writes or destroys (`delete_*`, `remove_*`, `drop_*`,
  `write_*`, `update_*`, `send_*`, `kill_*` …, in snake, kebab or camel case) is HIGH: a
  client that auto-approves read-only tools would run it unasked. `destructiveHint: false` on
  a destroying name is MEDIUM. A name that also says it only looks (`delete_preview`,
  `write_access_check`, `drop_dry_run`) is not a contradiction.
- `listing.preference`: a description that makes the model favour this tool over others.
  HIGH when absolute ("always use this tool instead of …", "prefer this tool over any other",
  "use this tool for all … requests", "this tool replaces …", "never call X again", "even if
  the user names another one"); LOW when it only says when it fits better ("use this instead
  of web search for local places"), as honest descriptions do.
- `listing.scope`: a description that reaches past its own tool to the whole session, the
  "line jumping" of a definition that acts before any call: "applies to the whole session",
  "global rule for the assistant", "for all future requests", "regardless of which tool the
  user wants", "whenever the user asks anything", "at the start of every conversation",
  "before responding to any request". HIGH when an action follows in the paragraph (send,
  read, delete, call, must …), MEDIUM otherwise.
- `listing.tool_count`: one server lists more tools than a client can weigh: LOW above 40
  (where some clients stop offering tools), MEDIUM above 128 (the most some model APIs take).
  A flood of tools crowds out the ones the user meant and hides a poisoned one among many.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, cast

from bastion.screen.findings import MARKER_HIDDEN, Finding, Severity, excerpt
from bastion.screen.index import TextIndex

__all__ = ["definition_findings", "preference_findings", "scope_findings", "tool_count_findings"]

_DESTROYS = frozenset(
    "delete remove drop purge destroy overwrite kill truncate reset wipe erase revoke terminate uninstall clear "
    "cancel ban shred unlink rm del".split()
)
_WRITES = frozenset(  # not "add", "create", "replace", "merge": pure tools use them too (add numbers, create a chart)
    "write update set send post move rename insert put patch modify edit deploy publish push transfer pay refund "
    "upload append save store grant invite disable enable archive restore commit".split()
)
_LOOKS = frozenset(
    "preview check status dry dryrun plan diff info count estimate validate simulate list get show history log "
    "logs stats describe read search find lookup query view inspect audit can permissions".split()
)
_NAME_PART = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")


def _name_words(name: str) -> list[str]:
    return [part.lower() for part in _NAME_PART.findall(name)]


def definition_findings(tool: Mapping[str, Any]) -> list[Finding]:
    """Annotations that contradict the tool's name (`listing.annotation_mismatch`)."""
    name, annotations = tool.get("name"), tool.get("annotations")
    if not isinstance(name, str) or not isinstance(annotations, Mapping):
        return []
    hints = cast(Mapping[str, Any], annotations)
    words = _name_words(name)
    if not words or not _LOOKS.isdisjoint(words):
        return []
    destroys = not _DESTROYS.isdisjoint(words)
    writes = destroys or not _WRITES.isdisjoint(words)
    if hints.get("readOnlyHint") is True and writes:
        return [Finding("listing.annotation_mismatch", Severity.HIGH, "annotations.readOnlyHint", excerpt(name, 0, 0))]
    if hints.get("destructiveHint") is False and destroys:
        return [
            Finding("listing.annotation_mismatch", Severity.MEDIUM, "annotations.destructiveHint", excerpt(name, 0, 0))
        ]
    return []


_ABSOLUTE = re.compile(
    r"\b(?:always|only|exclusively)\s+(?:use|prefer|call|choose|pick|select|route\s+\w+\s+(?:to|through))\s+"
    r"(?:this|these|it)\b(?:\s+(?:tool|function|one|server|instead))?"
    r"|\b(?:prefer|use|call|choose|pick)\s+this\s+(?:tool|function|one|server)?\s*(?:over|instead\s+of|rather\s+than)\s+"
    r"(?:any|all|every|each|other|the\s+(?:built-?in|default|native|other|standard))\b"
    r"|\b(?:use|call)\s+(?:this|it)\s+(?:tool\s+|function\s+)?for\s+(?:all|every|any|each)\b"
    r"|\bthis\s+(?:tool|function|server)\s+(?:replaces|supersedes|overrides|takes\s+over\s+from)\b"
    r"|\b(?:never|do\s+not|don'?t)\s+(?:use|call|invoke)\s+(?:the\s+)?[\w.`'\"-]+(?:\s+tool)?\s+(?:again|anymore|any\s+more)\b"
    r"|\beven\s+(?:if|when)\s+the\s+user\s+(?:names|asks\s+for|requests|wants|mentions|chooses)\b"
    r"|\bdrop-in\s+replacement\s+for\b"
)
_RELATIVE = re.compile(r"\b(?:use|prefer|call)\s+this\s+(?:tool\s+|one\s+)?(?:instead\s+of|over|rather\s+than)\b")
_TARGET = re.compile(r"\s*(?:the\s+)?[`'\"]?([\w.-]+)")
_RELATED = re.compile(r"\s+[\w.]+-(?:related|specific)\b")  # "for any Grafana-related question": one field
_GENERIC_NAME_WORDS = frozenset("get list search find read query tool tools run call fetch create update the".split())


def preference_findings(
    index: TextIndex, where: str, edits: list[tuple[int, int, str]], own: str = ""
) -> list[Finding]:
    """`listing.preference`: HIGH findings' sentences are added to `edits` (a strip removes them).
    A preference within one field is no hijack: "use this for any Sentry-related task", or any
    words of the tool's own name in the rest of the sentence, is LOW; "use this instead of
    `fromFile`" (one of the tool's own parameters) is nothing."""
    low = index.low
    if "this" not in low and "never" not in low and "user" not in low and "replacement" not in low:
        return []
    domain = {word for word in _name_words(own) if len(word) >= 4} - _GENERIC_NAME_WORDS
    found: list[Finding] = []
    relative: list[re.Match[str]] = []
    for match in _ABSOLUTE.finditer(low):
        after = low[match.end() : index.sentence(*match.span())[1]]
        if _RELATED.match(after) or (domain and any(word in after for word in domain)):
            relative.append(match)  # "for any Sentry-related task": bounded by the tool's own field
            continue
        first, last = index.sentence(*match.span())
        found.append(Finding("listing.preference", Severity.HIGH, where, excerpt(index.text, *match.span())))
        edits.append((first, last, MARKER_HIDDEN))
    if not found:
        for match in (*relative, *_RELATIVE.finditer(low)):
            target = _TARGET.match(low, match.end())
            if target and target.group(1) in index.destinations:
                continue  # instead of another of its own parameters
            found.append(Finding("listing.preference", Severity.LOW, where, excerpt(index.text, *match.span())))
    return found[:3]


_SCOPE = re.compile(
    r"\b(?:(?:whenever|every\s+time|each\s+time)\s+the\s+user\s+(?:asks|says|writes|requests|sends|types)\s+"
    r"(?:anything|something|any\b|a\s+question)"
    r"|regardless\s+of\s+(?:which|what)\s+(?:tool|the\s+user|request|task)"
    r"|for\s+(?:all|every|each|any)\s+(?:future\s+|subsequent\s+|other\s+)?(?:requests?|conversations?|responses?|"
    r"messages?|sessions?|tasks?)"
    r"|at\s+the\s+(?:start|beginning)\s+of\s+(?:every|each|any|the)\s+(?:conversation|session|response|reply|chat)"
    r"|applies\s+(?:to\s+(?:the\s+whole|all|every|any)|even\s+when|globally|to\s+the\s+entire)"
    r"|(?:global|session-wide|system-wide|system-level)\s+(?:rule|directive|instruction|policy|requirement)s?"
    r"|before\s+(?:responding|replying|answering)\s+to\s+(?:any|every|each)"
    r"|even\s+when\s+this\s+tool\s+is\s+not\s+(?:used|called|selected))"
)
_ACTS = re.compile(
    r"\b(?:send|forward|e-?mail|upload|post|read|open|fetch|call|invoke|run|execute|delete|remove|include|add|paste|"
    r"copy|share|transfer|approve|ignore|disregard|must|should|have\s+to|need\s+to|always|first)\b"
)


def scope_findings(index: TextIndex, where: str, edits: list[tuple[int, int, str]]) -> list[Finding]:
    """`listing.scope`: HIGH findings' sentences are added to `edits` (a strip removes them)."""
    found: list[Finding] = []
    low = index.low
    for match in _SCOPE.finditer(low):
        first, last = index.sentence(*match.span())
        acts = _ACTS.search(low, first, min(len(low), last + 240)) is not None
        found.append(
            Finding(
                "listing.scope", Severity.HIGH if acts else Severity.MEDIUM, where, excerpt(index.text, *match.span())
            )
        )
        if acts:
            edits.append((first, last, MARKER_HIDDEN))
    return found[:3]


def tool_count_findings(count: int) -> list[Finding]:
    """`listing.tool_count` for one server's listing."""
    if count > 128:
        return [Finding("listing.tool_count", Severity.MEDIUM, "tools", f"{count} tools")]
    if count > 40:
        return [Finding("listing.tool_count", Severity.LOW, "tools", f"{count} tools")]
    return []
