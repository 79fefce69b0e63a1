"""Secrets in text: keys, tokens and passwords, found so they can be redacted. Pure.

Secrets (the excerpt shows a prefix and a length, never the secret):

- `secret.aws_access_key` `AKIA…`/`ASIA…` (LOW when it says EXAMPLE, as AWS's docs do);
  `secret.github_token` `ghp_` `gho_` `ghu_` `ghs_` `ghr_` `github_pat_`; `secret.slack_token`
  `xox[abprs]-`; `secret.anthropic_key` `sk-ant-…`; `secret.openai_key` `sk-…` (mixed
  letters and digits, a 16+ character run); `secret.google_api_key` `AIza…`;
  `secret.stripe_key` `sk_live_`/`rk_live_` (HIGH), `sk_test_`/`rk_test_` (MEDIUM);
  `secret.private_key` a PEM `-----BEGIN … PRIVATE KEY-----` block (LOW when its body is a
  placeholder); `secret.jwt` three base64url parts, the first two JSON (`eyJ`);
  `secret.slack_webhook` `https://hooks.slack.com/services/T…/B…/…`; `secret.gcp_service_account`
  the `private_key_id` of a Google service-account key file (its `private_key` is a PEM
  block): all HIGH.
- `secret.connection_string`: the password of a URL such as `postgres://app:…@db:5432/x`
  (PostgreSQL, MySQL, MongoDB, Redis, AMQP, SQL Server, LDAP, FTP, SMTP, HTTP), not a
  placeholder (`${DB_PASSWORD}`, `<password>`, `password`, `***`). Only the password is
  redacted. MEDIUM; HIGH when it looks generated.
- `secret.assignment`: `password=`, `secret:`, `api_key =`, `"token": "…"`, `DB_PASSWORD=` …
  with a value of 8+ characters holding a digit or a symbol and 3+ bits of entropy per
  character, not a placeholder, reference or type (`${VAR}`, `process.env.X`, `changeme`,
  `Optional[str]`). MEDIUM; HIGH when the value looks generated (12+ characters, three
  kinds of character, 3.5+ bits each).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bastion.screen.findings import Finding, Severity, excerpt
from bastion.screen.index import TextIndex, vocabulary
from bastion.screen.links import Edit, entropy

__all__ = ["MARKER_SECRET", "secret_rules", "secrets"]

MARKER_SECRET = "[bastion: redacted secret]"  # noqa: S105 - a marker, not a password


@dataclass(frozen=True, slots=True)
class _Secret:
    rule: str
    severity: Severity
    pattern: re.Pattern[str]
    words: frozenset[bytes]  # one must be in the text's word set (empty: always tried)
    char: str = ""  # a character every match holds, looked for first (memchr) when there are no words


def _words(words: str) -> frozenset[bytes]:
    return vocabulary(words.encode().split())


_SECRETS = (
    _Secret(
        "secret.aws_access_key",
        Severity.HIGH,
        re.compile(r"A(?:[KS]IA[0-9A-Z]{16}(?![0-9A-Za-z])|Iza[0-9A-Za-z_\-]{35}(?![0-9A-Za-z_\-]))"),
        frozenset(),
        "I",
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
        "secret.slack_webhook",
        Severity.HIGH,
        re.compile(
            r"https://hooks\.slack\.com/(?:services|workflows|triggers)/T[A-Z0-9]{6,}/[A-Z0-9]{6,}/[A-Za-z0-9]{16,}"
        ),
        _words("hooks"),
    ),
    _Secret(
        "secret.gcp_service_account",
        Severity.HIGH,
        re.compile(r"(?<=\"private_key_id\": \")[0-9a-f]{40}(?=\")|(?<=\"private_key_id\":\")[0-9a-f]{40}(?=\")"),
        _words("private"),
    ),
    _Secret(
        "secret.jwt",
        Severity.HIGH,
        re.compile(r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),
        frozenset(),
        "J",
    ),
)
_SECRET_WORDS = frozenset[bytes]().union(*(rule.words for rule in _SECRETS))
_UNGATED = tuple(rule for rule in _SECRETS if not rule.words)
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


def secrets(index: TextIndex, where: str) -> list[tuple[Finding, Edit]]:
    text = index.text
    found: list[tuple[Finding, Edit]] = []
    taken: list[tuple[int, int]] = []
    present = index.words & _SECRET_WORDS
    for rule in _SECRETS if present else _UNGATED:
        if (rule.words and present.isdisjoint(rule.words)) or (rule.char and rule.char not in text):
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
    if "@" in text and not index.words.isdisjoint(_URL_SCHEMES):  # every match holds `://` and `@`
        _connection_strings(index, where, found, taken)
    if not index.words.isdisjoint(_ASSIGN_WORDS):
        _assignments(index, where, found, taken)
    return found


_URL_SCHEMES = _words(
    "postgres postgresql mysql mariadb mongodb srv redis rediss amqp amqps mssql sqlserver oracle jdbc ldap ldaps ftp "
    "sftp smtp smtps http https"
)
_CONNECTION = re.compile(
    r"\b(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver|oracle|ldaps?|s?ftp|smtps?|"
    r"https?)(?:\+[a-z0-9]+)?://[^\s:/@\"'<>]{1,64}:([^\s@/\"'<>]{3,128})@[\w.-]+"
)
_PLACEHOLDER_PASSWORD = re.compile(
    r"^(?:\$\{?\w+\}?|%\(\w+\)s|\{\{?\s*\w+\s*\}?\}|<[^>]*>|\[[^\]]*\]|\*+|x+|pass(?:word)?|secret|changeme|"
    r"your[_-]?\w*|example|redacted|\.\.\.)$",
    re.IGNORECASE,
)


_SCHEME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789+"
_AT_REACH = 196  # a match's `@` is at most this far after its `://`: 3 + 64 + 1 + 128
_AT_TRIES = 16


def _separators(text: str) -> list[int]:
    """Where `://` is, in order, wherever an `@` follows within reach (a match needs one): looked
    for just before each `@`, or through the rest of the text once there have been many `@`."""
    found: list[int] = []
    lo = 0
    at = text.find("@")
    for _ in range(_AT_TRIES):
        if at == -1:
            return found
        i = text.find("://", max(lo, at - _AT_REACH), at)
        while i != -1:
            found.append(i)
            i = text.find("://", i + 3, at)
        lo = at + 1
        at = text.find("@", lo)
    i = text.find("://", lo) if at != -1 else -1
    while i != -1:
        found.append(i)
        i = text.find("://", i + 3)
    return found


def _connection_matches(text: str) -> list[re.Match[str]]:
    """`_CONNECTION.finditer(text)`, anchored on `://`. The regular expression alone is tried at
    every position of the text (its `\\b` and alternation give the engine no prefix to skip
    to), which cost more than all the other detectors together on a 4 KiB text. A match holds
    one `://`, an `@` after it, and starts where a word opens in the run of scheme characters
    (`[a-z0-9+]`) just before the `://`: at the run's start or after a `+`, so only those places
    are tried."""
    found: list[re.Match[str]] = []
    last_end = 0
    for i in _separators(text):
        if i < last_end:
            continue
        first = i
        while first > last_end:  # back to the start of the run, 32 characters a step
            lo = max(last_end, first - 32)
            kept = len(text[lo:first].rstrip(_SCHEME_CHARS))
            first = lo + kept
            if kept:
                break
        at = first
        while at != -1 and at < i:
            match = _CONNECTION.match(text, at)
            if match is not None:
                found.append(match)
                last_end = match.end()
                break
            at = text.find("+", at, i)
            at = -1 if at == -1 else at + 1
    return found


def _connection_strings(
    index: TextIndex, where: str, found: list[tuple[Finding, Edit]], taken: list[tuple[int, int]]
) -> None:
    for match in _connection_matches(index.text):
        password = match.group(1)
        start, end = match.span(1)
        if _PLACEHOLDER_PASSWORD.match(password) or any(s < end and start < e for s, e in taken):
            continue
        taken.append((start, end))
        severity = Severity.HIGH if _strong(password) else Severity.MEDIUM
        shown = excerpt(index.text[match.start() : start], 0, 0)[-40:] + "…"
        found.append((Finding("secret.connection_string", severity, where, shown), (start, end, MARKER_SECRET)))


def _assignments(index: TextIndex, where: str, found: list[tuple[Finding, Edit]], taken: list[tuple[int, int]]) -> None:
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
    return len(value) >= 12 and kinds >= 3 and entropy(value) >= 3.5


def _secret_value(value: str, text: str, end: int) -> bool:
    if text[end : end + 1] in ("(", "[", "."):
        return False  # a call, an index or a type: Optional[str], os.getenv(…)
    if (_NOT_A_SECRET.search(value.lower()) and not _NOT_A_SECRET.search(value)) or _NOT_A_SECRET.search(value):
        return False
    has_other = any(c.isdigit() for c in value) or any(not c.isalnum() for c in value)
    return has_other and entropy(value) >= 3.0


def secret_rules(text: str) -> list[str]:
    """The rules of the HIGH-severity secrets in a text (for outbound checks: is a key leaving?)."""
    return [
        finding.rule for finding, _edit in secrets(TextIndex(text), "argument") if finding.severity is Severity.HIGH
    ]
