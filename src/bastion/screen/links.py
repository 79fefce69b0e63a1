"""Links that carry data out: markup that makes a client fetch a URL holding data. Pure.

Exfiltration: markup that makes a client fetch a URL carrying data.

- `exfil.image`: a markdown image `![alt](url)`; `exfil.html_image`: `<img src=url>`;
  `exfil.reference_image`: `![alt][ref]` with its `[ref]: url` definition; `exfil.link`: a
  markdown link `[text](url)`. A URL carries data when it holds a placeholder for the model
  to fill (`{…}`, `[DATA]`, `<…>`, `$VAR`, an upper-case word as a query value) or a secret
  or e-mail address in its query (3), or a query value that is long and random (24+
  characters, 3.5+ bits each), sentence-like (five words or more), or a path segment of 32+
  characters of high-entropy non-hex text (2). Images load without a click: 2 or more is
  HIGH. Links need a click: 3 is HIGH, 2 LOW. A diagram or a badge with `?style=flat` is
  nothing.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from urllib.parse import parse_qsl, unquote_plus, urlsplit

from bastion.screen._scan import finditer_at
from bastion.screen.findings import Finding, Severity, excerpt
from bastion.screen.index import TextIndex, vocabulary

__all__ = ["Edit", "entropy", "exfiltration", "url_score"]

Edit = tuple[int, int, str]
"""A span of the text and the marker that replaces it."""

_MD_TARGET = re.compile(r"\]\(\s*<?([^)\s>]{1,2048})>?")
_HTML_IMG = re.compile(r"<img\b[^>]{0,2000}?\bsrc\s*=\s*[\"']?([^\"'\s>]{1,2048})[^>]{0,2000}>?")
_REF_USE = re.compile(r"!\[([^\]\n]{0,300})\]\[([^\]\n]{0,100})\]")
_REF_DEF = re.compile(r"^[ \t]{0,3}\[([^\]\n]{1,100})\]:[ \t]*<?([^\s>]{1,2048})>?", re.MULTILINE)
_PLACEHOLDER = re.compile(
    r"\{[^}]{0,60}\}|\[[a-z_ ]{2,60}\]|<[a-z_ ]{2,60}(?:>|$)|\$\{?[a-z_]{2,}|\b(?:insert|your_\w+|data_here|placeholder)\b|%s\b"
)
_UPPER_WORD = re.compile(r"[A-Z][A-Z_]{3,}")
_SECRET_SHAPE = re.compile(
    r"(?:AKIA|ASIA)[0-9A-Z]{16}|gh[pousr]_\w{20,}|sk-[\w-]{20,}|eyJ[\w-]{10,}|xox[abprs]-|AIza[\w-]{30,}"
)
_HEX = re.compile(r"[0-9a-fA-F]+")
_EMAIL = re.compile(r"\S@\S+\.\w")
_PLAIN_URL = re.compile(r"[^?{}\[\]<>$%/]{0,31}(?:/[^?{}\[\]<>$%/]{0,31})*\Z")  # no query, data or 32-character segment
_IMG = vocabulary([b"img"])


def entropy(value: str) -> float:
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values()) if n else 0.0


def url_score(url: str) -> tuple[int, str]:
    """How much data a URL carries (0 none, 2 likely, 3 surely) and its host."""
    if _PLAIN_URL.match(url):
        return 0, ""  # a plain link: the common case
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
    except ValueError:
        return 0, ""
    if parts.scheme not in ("http", "https", "") or not parts.netloc:
        return 0, ""
    score = 3 if _PLACEHOLDER.search(unquote_plus(url).lower()) else 0
    for _, value in parse_qsl(parts.query, keep_blank_values=True):
        if _SECRET_SHAPE.search(value) or _UPPER_WORD.fullmatch(value) or _EMAIL.search(value):
            score = 3
        elif len(value.split()) >= 5 or (len(value) >= 24 and entropy(value) >= 3.5):
            score = max(score, 2)
    for segment in parts.path.split("/"):
        stem = segment.split(".")[0]
        if len(stem) >= 32 and not _HEX.fullmatch(stem) and entropy(stem) >= 4.0:
            score = max(score, 2)
    return score, host


def _link_finding(
    rule: str, url: str, start: int, end: int, index: TextIndex, where: str
) -> tuple[Finding, Edit] | None:
    score, host = url_score(url)
    if score < 2:
        return None
    return _found(rule, score, host, start, end, index, where)


def _found(
    rule: str, score: int, host: str, start: int, end: int, index: TextIndex, where: str
) -> tuple[Finding, Edit]:
    image = rule != "exfil.link"
    severity = Severity.HIGH if image or score >= 3 else Severity.LOW
    shown = excerpt(host, 0, 0)[:60] or "?"
    marker = f"[bastion: removed {'image link' if image else 'link'} to {shown}]"
    return Finding(rule, severity, where, excerpt(index.text, start, end)), (start, end, marker)


def _bracket_open(text: str, close: int) -> int:
    """Where the `[` that `]` at `close` closes is, on the same paragraph; -1 if none."""
    opening = text.rfind("[", max(0, close - 400), close)
    if opening == -1 or "]" not in text[opening:close]:
        return opening  # the common case: no brackets nested in the link text
    depth = 0
    for j in range(close - 1, max(-1, close - 400), -1):
        char = text[j]
        if char == "]":
            depth += 1
        elif char == "[":
            if not depth:
                return j
            depth -= 1
    return -1


def exfiltration(index: TextIndex, where: str) -> list[tuple[Finding, Edit]]:
    text, low = index.text, index.low
    found: list[tuple[Finding, Edit] | None] = []
    if "]" in text:
        for match in finditer_at(_MD_TARGET, text, "]"):
            score, host = url_score(match.group(1))
            if score < 2:
                continue  # a plain link, whatever opens it
            opening = _bracket_open(text, match.start())
            if opening == -1:
                continue
            image = opening > 0 and text[opening - 1] == "!"
            close = text.find(")", match.end())
            end = match.end() if close == -1 or close - match.end() > 300 else close + 1
            rule = "exfil.image" if image else "exfil.link"
            found.append(_found(rule, score, host, opening - image, end, index, where))
        refs = {(m.group(2) or m.group(1)).lower() for m in finditer_at(_REF_USE, text, "!")} if "!" in text else None
        if refs:
            for match in _REF_DEF.finditer(text):
                if match.group(1).lower() in refs:
                    found.append(_link_finding("exfil.reference_image", match.group(2), *match.span(2), index, where))
    if not index.words.isdisjoint(_IMG):
        for match in finditer_at(_HTML_IMG, low, "<"):
            found.append(
                _link_finding("exfil.html_image", text[match.start(1) : match.end(1)], *match.span(), index, where)
            )
    return [item for item in found if item is not None]
