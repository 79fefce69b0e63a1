"""Screening what a tool returns: invisible characters, injections, exfiltration links, secrets.

`screen_result` reads every text block (`content[i].text`), embedded resource text
(`content[i].resource.text`) and string leaf of `structuredContent`; image and audio data is
never touched. Findings are placed as `result[0].text`, `result[1].resource.text`,
`structuredContent.rows[2].note`. Besides the shared `invisible.*` and `injection.*` rules
(`bastion.screen.text`), these rules are checked (ids are stable):

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

Secrets (the excerpt shows a prefix and a length, never the secret):

- `secret.aws_access_key` `AKIA…`/`ASIA…` (LOW when it says EXAMPLE, as AWS's docs do);
  `secret.github_token` `ghp_` `gho_` `ghu_` `ghs_` `ghr_` `github_pat_`; `secret.slack_token`
  `xox[abprs]-`; `secret.anthropic_key` `sk-ant-…`; `secret.openai_key` `sk-…` (mixed
  letters and digits, a 16+ character run); `secret.google_api_key` `AIza…`;
  `secret.stripe_key` `sk_live_`/`rk_live_` (HIGH), `sk_test_`/`rk_test_` (MEDIUM);
  `secret.private_key` a PEM `-----BEGIN … PRIVATE KEY-----` block (LOW when its body is a
  placeholder); `secret.jwt` three base64url parts, the first two JSON (`eyJ`): all HIGH.
- `secret.assignment`: `password=`, `secret:`, `api_key =`, `"token": "…"`, `DB_PASSWORD=` …
  with a value of 8+ characters holding a digit or a symbol and 3+ bits of entropy per
  character, not a placeholder, reference or type (`${VAR}`, `process.env.X`, `changeme`,
  `Optional[str]`). MEDIUM; HIGH when the value looks generated (12+ characters, three
  kinds of character, 3.5+ bits each).

No finding shows a piece of a secret: when a text holds one, every other finding whose
excerpt shows six or more of its characters has the excerpt withheld.

Policy: an action applies to findings at or above its threshold: injections HIGH (the
heuristics are the noisiest), exfiltration and secrets MEDIUM, invisible characters any.
`strip` replaces what was found with a visible marker (`[bastion: redacted secret]`,
`[bastion: removed image link to evil.example]`, `[bastion: removed suspected instructions]`);
`block` makes the whole result None, which the caller turns into an error. With
`invisible="flag"` a text is left as it came unless another rule rewrites it, in which case
the rewritten text is the clean one. Detectors always read the clean text.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast
from urllib.parse import parse_qsl, unquote_plus, urlsplit

from bastion.screen.text import (
    Action,
    Finding,
    Severity,
    TextIndex,
    escape,
    excerpt,
    injection_scan,
    invisible_findings,
    replace_spans,
    strip_invisible,
)

__all__ = ["MARKER_INSTRUCTIONS", "MARKER_SECRET", "ResultPolicy", "ResultVerdict", "screen_result"]

MARKER_SECRET = "[bastion: redacted secret]"  # noqa: S105 - a marker, not a password
MARKER_INSTRUCTIONS = "[bastion: removed suspected instructions]"


@dataclass(frozen=True, slots=True)
class ResultPolicy:
    injections: Action = "flag"
    exfiltration: Action = "strip"
    secrets: Action = "strip"
    invisible: Literal["strip", "flag"] = "strip"


@dataclass(frozen=True, slots=True)
class ResultVerdict:
    result: dict[str, Any] | None  # None when blocked
    findings: tuple[Finding, ...]
    changed: bool


def screen_result(result: Mapping[str, Any], policy: ResultPolicy) -> ResultVerdict:
    screen = _Screen(policy)
    replaced: dict[str, Any] = {}
    content = result.get("content")
    if isinstance(content, list):
        blocks = cast(list[Any], content)
        screened = [screen.block(item, i) for i, item in enumerate(blocks)]
        if any(new is not old for new, old in zip(screened, blocks, strict=True)):
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
    findings: list[Finding] = field(default_factory=list[Finding])
    blocked: bool = False

    def block(self, item: Any, i: int) -> Any:
        if not isinstance(item, Mapping):
            return item
        block = cast(Mapping[str, Any], item)
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            text = self.text(block["text"], f"result[{i}].text")
            return block if text is block["text"] else {**block, "text": text}
        resource = block.get("resource")
        if kind == "resource" and isinstance(resource, Mapping):
            inner = cast(Mapping[str, Any], resource)
            if isinstance(inner.get("text"), str):
                text = self.text(inner["text"], f"result[{i}].resource.text")
                return block if text is inner["text"] else {**block, "resource": {**inner, "text": text}}
        return block

    def walk(self, value: Any, where: str) -> Any:
        if isinstance(value, str):
            return self.text(value, where)
        if isinstance(value, Mapping):
            items = cast(Mapping[Any, Any], value)
            new = {key: self.walk(item, f"{where}.{escape(str(key))}") for key, item in items.items()}
            return new if any(new[key] is not items[key] for key in new) else items
        if isinstance(value, list):
            elements = cast(list[Any], value)
            new_list = [self.walk(item, f"{where}[{i}]") for i, item in enumerate(elements)]
            return new_list if any(a is not b for a, b in zip(new_list, elements, strict=True)) else elements
        return value

    def text(self, text: str, where: str) -> str:
        index = TextIndex(text)
        clean = text
        findings: list[Finding] = []
        if index.suspect:
            stripped, removed = strip_invisible(text)
            if removed:
                findings += invisible_findings(text, where)
                clean = stripped
                index = TextIndex(clean)
        edits: list[tuple[int, int, str]] = []
        scan = injection_scan(index, where)
        findings += scan.findings
        if any(f.severity is Severity.HIGH for f in scan.findings):
            self.act(self.policy.injections, edits, [(s, e, MARKER_INSTRUCTIONS) for s, e in scan.spans])
        exfiltration = _exfiltration(index, where)
        secrets = _secrets(index, where)
        if secrets:  # no other finding may show a piece of a secret in its excerpt
            values = [clean[start:end] for _, (start, end, _) in secrets]
            findings = [_scrubbed(f, values) for f in findings]
            exfiltration = [(_scrubbed(f, values), edit) for f, edit in exfiltration]
        checks: tuple[tuple[list[tuple[Finding, tuple[int, int, str]]], Action], ...] = (
            (exfiltration, self.policy.exfiltration),
            (secrets, self.policy.secrets),
        )
        for found, acting in checks:
            findings += (finding for finding, _ in found)
            self.act(acting, edits, [edit for finding, edit in found if finding.severity.rank >= Severity.MEDIUM.rank])
        self.findings += findings
        out = replace_spans(clean, edits) if edits else clean if self.policy.invisible == "strip" else text
        return text if out == text else out

    def act(self, action: Action, edits: list[tuple[int, int, str]], found: list[tuple[int, int, str]]) -> None:
        if not found or action == "flag":
            return
        if action == "block":
            self.blocked = True
        else:
            edits.extend(found)


def _scrubbed(finding: Finding, secrets: list[str]) -> Finding:
    """The finding, its excerpt withheld if it shows six or more characters of a secret."""
    for secret in secrets:
        shown = escape(secret)
        if any(shown[i : i + 6] in finding.excerpt for i in range(max(1, len(shown) - 5))):
            return Finding(finding.rule, finding.severity, finding.where, MARKER_SECRET)
    return finding


# --- exfiltration -------------------------------------------------------------------------------

_MD_TARGET = re.compile(r"\]\(\s*<?([^)\s>]{1,2048})>?")
_HTML_IMG = re.compile(r"<img\b[^>]{0,2000}?\bsrc\s*=\s*[\"']?([^\"'\s>]{1,2048})[^>]{0,2000}>?")
_REF_USE = re.compile(r"!\[([^\]\n]{0,300})\]\[([^\]\n]{0,100})\]")
_REF_DEF = re.compile(r"^[ \t]{0,3}\[([^\]\n]{1,100})\]:[ \t]*<?([^\s>]{1,2048})>?", re.MULTILINE)
_PLACEHOLDER = re.compile(
    r"\{[^}]{0,60}\}|\[[a-z_ ]{2,60}\]|<[a-z_ ]{2,60}>|\$\{?[a-z_]{2,}|\b(?:insert|your_\w+|data_here|placeholder)\b|%s\b"
)
_UPPER_WORD = re.compile(r"[A-Z][A-Z_]{3,}")
_SECRET_SHAPE = re.compile(
    r"(?:AKIA|ASIA)[0-9A-Z]{16}|gh[pousr]_\w{20,}|sk-[\w-]{20,}|eyJ[\w-]{10,}|xox[abprs]-|AIza[\w-]{30,}"
)
_HEX = re.compile(r"[0-9a-fA-F]+")
_EMAIL = re.compile(r"\S@\S+\.\w")
_DATA_CHARS = re.compile(r"[{}\[\]<>$%]")


def _entropy(value: str) -> float:
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values()) if n else 0.0


def _url_score(url: str) -> tuple[int, str]:
    """How much data a URL carries (0 none, 2 likely, 3 surely) and its host."""
    if "?" not in url and not _DATA_CHARS.search(url) and max(map(len, url.split("/"))) < 32:
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
        elif len(value.split()) >= 5 or (len(value) >= 24 and _entropy(value) >= 3.5):
            score = max(score, 2)
    for segment in parts.path.split("/"):
        stem = segment.split(".")[0]
        if len(stem) >= 32 and not _HEX.fullmatch(stem) and _entropy(stem) >= 4.0:
            score = max(score, 2)
    return score, host


def _link_finding(
    rule: str, url: str, start: int, end: int, index: TextIndex, where: str
) -> tuple[Finding, tuple[int, int, str]] | None:
    score, host = _url_score(url)
    image = rule != "exfil.link"
    if score < 2:
        return None
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


def _exfiltration(index: TextIndex, where: str) -> list[tuple[Finding, tuple[int, int, str]]]:
    text, low = index.text, index.low
    found: list[tuple[Finding, tuple[int, int, str]] | None] = []
    if "]" in text:
        for match in _MD_TARGET.finditer(text):
            opening = _bracket_open(text, match.start())
            if opening == -1:
                continue
            image = opening > 0 and text[opening - 1] == "!"
            close = text.find(")", match.end())
            end = match.end() if close == -1 or close - match.end() > 300 else close + 1
            rule = "exfil.image" if image else "exfil.link"
            found.append(_link_finding(rule, match.group(1), opening - image, end, index, where))
        refs = {(m.group(2) or m.group(1)).lower() for m in _REF_USE.finditer(text)} if "!" in text else set[str]()
        if refs:
            for match in _REF_DEF.finditer(text):
                if match.group(1).lower() in refs:
                    found.append(_link_finding("exfil.reference_image", match.group(2), *match.span(2), index, where))
    if b"img" in index.words:
        for match in _HTML_IMG.finditer(low):
            found.append(
                _link_finding("exfil.html_image", text[match.start(1) : match.end(1)], *match.span(), index, where)
            )
    return [item for item in found if item is not None]


# --- secrets ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Secret:
    rule: str
    severity: Severity
    pattern: re.Pattern[str]
    words: frozenset[bytes]  # one must be in the text's word set (empty: always tried)


def _words(words: str) -> frozenset[bytes]:
    return frozenset(words.encode().split())


_SECRETS = (
    _Secret(
        "secret.aws_access_key",
        Severity.HIGH,
        re.compile(r"A(?:[KS]IA[0-9A-Z]{16}(?![0-9A-Za-z])|Iza[0-9A-Za-z_\-]{35}(?![0-9A-Za-z_\-]))"),
        frozenset(),
    ),
    _Secret(
        "secret.github_token",
        Severity.HIGH,
        re.compile(r"gh[pousr]_[A-Za-z0-9]{36,255}"),
        _words("ghp gho ghu ghs ghr"),
    ),
    _Secret("secret.github_token", Severity.HIGH, re.compile(r"github_pat_[A-Za-z0-9_]{22,255}"), _words("github")),
    _Secret(
        "secret.slack_token",
        Severity.HIGH,
        re.compile(r"xox[abprs]-[A-Za-z0-9-]{10,250}"),
        _words("xoxa xoxb xoxp xoxr xoxs"),
    ),
    _Secret("secret.anthropic_key", Severity.HIGH, re.compile(r"sk-ant-[A-Za-z0-9_\-]{20,250}"), _words("sk")),
    _Secret(
        "secret.openai_key",
        Severity.HIGH,
        re.compile(r"sk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,250}"),
        _words("sk"),
    ),
    _Secret("secret.stripe_key", Severity.HIGH, re.compile(r"sk_live_[0-9A-Za-z]{16,250}"), _words("live")),
    _Secret("secret.stripe_key", Severity.HIGH, re.compile(r"rk_live_[0-9A-Za-z]{16,250}"), _words("live")),
    _Secret("secret.stripe_key", Severity.MEDIUM, re.compile(r"[sr]k_test_[0-9A-Za-z]{16,250}"), _words("test")),
    _Secret(
        "secret.private_key",
        Severity.HIGH,
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]{0,16384}?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
            r"|[A-Za-z0-9+/=\s:,-]{0,16384})"
        ),
        _words("private"),
    ),
    _Secret(
        "secret.jwt",
        Severity.HIGH,
        re.compile(r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),
        frozenset(),
    ),
)
_ASSIGN_ANCHORS = (  # a name that ends a key, and the words (camelCase ones too) that show it may be there
    ("password", _words("password passwords dbpassword adminpassword userpassword")),
    ("passwd", _words("passwd")),
    ("passphrase", _words("passphrase")),
    ("pwd", _words("pwd")),
    ("secret", _words("secret secrets clientsecret appsecret")),
    ("token", _words("token tokens authtoken accesstoken apitoken refreshtoken bearertoken")),
    ("apikey", _words("apikey")),
    ("key", _words("key apikey secretkey accesskey privatekey signingkey")),
    ("auth", _words("auth")),
)
_ASSIGN_WORDS = frozenset[bytes]().union(*(words for _, words in _ASSIGN_ANCHORS))
_ASSIGN_TAIL = re.compile(r"s?[\"']?[ \t]*[:=][ \t]*[\"']?([^\s\"'`,;<>(){}\[\]]{8,256})")
_NOT_A_SECRET = re.compile(
    r"example|placeholder|changeme|change_me|your|xxxx|\*\*\*|redacted|dummy|sample|\$\{|\{\{|%\(|env|secret|password|token"
    r"|^https?:|^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+$|^\d+$"
)
_BASE64_BODY = re.compile(r"[A-Za-z0-9+/=]{64,}")


def _mask(value: str) -> str:
    return f"{excerpt(value[:4], 0, 0)}… [{len(value)} characters]"


def _secret_severity(rule: _Secret, value: str) -> Severity | None:
    if rule.rule == "secret.aws_access_key" and "EXAMPLE" in value:
        return Severity.LOW
    if rule.rule == "secret.private_key" and not _BASE64_BODY.search(value.replace("\n", "").replace("\r", "")):
        return Severity.LOW
    if rule.rule == "secret.openai_key":
        body = value.removeprefix("sk-")
        classes = any(c.isupper() for c in body) + any(c.islower() for c in body) + any(c.isdigit() for c in body)
        if classes < 2 or max(len(run) for run in re.split(r"[_-]", body)) < 16:
            return None
    return rule.severity


def _secrets(index: TextIndex, where: str) -> list[tuple[Finding, tuple[int, int, str]]]:
    text = index.text
    found: list[tuple[Finding, tuple[int, int, str]]] = []
    taken: list[tuple[int, int]] = []
    for rule in _SECRETS:
        if rule.words and index.words.isdisjoint(rule.words):
            continue
        for match in rule.pattern.finditer(text):
            start, end = match.span()
            if start and (text[start - 1].isalnum() or text[start - 1] == "_"):
                continue
            severity = _secret_severity(rule, match.group())
            if severity is None or any(s < end and start < e for s, e in taken):
                continue
            taken.append((start, end))
            rule_id = "secret.google_api_key" if match.group().startswith("AIza") else rule.rule
            found.append((Finding(rule_id, severity, where, _mask(match.group())), (start, end, MARKER_SECRET)))
    if not index.words.isdisjoint(_ASSIGN_WORDS):
        _assignments(index, where, found, taken)
    return found


def _assignments(
    index: TextIndex, where: str, found: list[tuple[Finding, tuple[int, int, str]]], taken: list[tuple[int, int]]
) -> None:
    text, low = index.text, index.low
    for anchor, words in _ASSIGN_ANCHORS:
        if index.words.isdisjoint(words):
            continue
        i = low.find(anchor)
        while i != -1:
            prev = text[i - 1] if i else " "
            compound = prev in "_-." or (text[i].isupper() and prev.islower())  # db_password, apiKey
            match = _ASSIGN_TAIL.match(text, i + len(anchor))
            if (compound or (anchor != "key" and not prev.isalnum())) and match:
                start, end = match.span(1)
                if _secret_value(match.group(1), text, end) and not any(s < end and start < e for s, e in taken):
                    taken.append((start, end))
                    name = excerpt(text[max(0, i - 16) : i + len(anchor)].split()[-1], 0, 0)
                    severity = Severity.HIGH if _strong(match.group(1)) else Severity.MEDIUM
                    found.append(
                        (Finding("secret.assignment", severity, where, f"{name}=…"), (start, end, MARKER_SECRET))
                    )
            i = low.find(anchor, i + 1)


def _strong(value: str) -> bool:
    """Looks generated: 12+ characters, three kinds of character, 3.5+ bits each."""
    kinds = any(c.islower() for c in value) + any(c.isupper() for c in value) + any(c.isdigit() for c in value)
    kinds += any(not c.isalnum() for c in value)
    return len(value) >= 12 and kinds >= 3 and _entropy(value) >= 3.5


def _secret_value(value: str, text: str, end: int) -> bool:
    if text[end : end + 1] in ("(", "[", "."):
        return False  # a call, an index or a type: Optional[str], os.getenv(…)
    if (_NOT_A_SECRET.search(value.lower()) and not _NOT_A_SECRET.search(value)) or _NOT_A_SECRET.search(value):
        return False
    has_other = any(c.isdigit() for c in value) or any(not c.isalnum() for c in value)
    return has_other and _entropy(value) >= 3.0
