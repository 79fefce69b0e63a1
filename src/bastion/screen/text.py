"""The shared pieces of screening: findings, invisible characters and padding, all pure.

Everything here takes a string and returns values; nothing reads a clock, a file or a
setting. Severities are what one occurrence means on its own; `listing` and `results` decide
what a severity leads to (LOW never blocks).

Invisible characters (`strip_invisible` removes them, `invisible_findings` reports them):

- `invisible.ansi`: ANSI escape sequences: CSI (`ESC [`, 8-bit `0x9b`), OSC (`ESC ]`, OSC 8
  hyperlinks, window titles), DCS/SOS/PM/APC strings and single-character escapes. A plain
  SGR colour is LOW, other sequences MEDIUM, and sequences that hide or overwrite text
  (SGR 8 "conceal", cursor up, erase line or screen, DCS/SOS/PM/APC payloads) HIGH.
- `invisible.control`: C0 and C1 control characters other than tab, newline and carriage
  return (a stray ESC included). LOW: `man` output and binary dumps carry them innocently.
- `invisible.bidi`: bidirectional embeddings, overrides and isolates (U+202A to 202E,
  U+2066 to 2069), the "Trojan Source" characters. HIGH. The marks LRM, RLM and ALM are
  legitimate in right-to-left text and are kept when they stand alone.
- `invisible.zero_width`: zero-width space, word joiner, BOM, soft hyphen, invisible math
  operators, Hangul fillers, the Mongolian vowel separator and joiners out of context. LOW
  for one or two, MEDIUM for more, HIGH for a run of four or more (a hidden encoding).
  ZWJ and ZWNJ are kept between non-ASCII letters or emoji (Persian, Indic scripts, emoji
  sequences), a run of them never is.
- `invisible.tag`: Unicode tag characters (U+E0000 to E007F), which spell ASCII no one sees;
  the excerpt decodes them. HIGH. A subdivision flag (🏴 + tag letters + cancel tag) is kept.
- `invisible.variation_selector`: variation selectors out of place: runs of two or more
  (data hidden behind an emoji), or one after something that is not a symbol, a non-ASCII
  letter or a keycap digit. MEDIUM, HIGH for a run of four or more.

Padding (`padding_findings`; `collapse_padding` shrinks it):

- `padding.spaces`: more than 200 horizontal whitespace characters in a row.
- `padding.newlines`: more than 20 blank lines in a row.

Both are HIGH when text follows the padding (it was pushed out of view) and LOW at the end.

Injection heuristics (`injection_findings`; `injection_scan` also says what a strip removes),
each occurrence scored from its rule's base:

  injection.override       "ignore/disregard/forget … previous/prior/system … instructions",
                           "new instructions:", "your new task is", "from now on, you …"    2
  injection.secrecy        "do not tell the user", "without informing the user", "keep this
                           secret from", "silently send", "the user must not know"          2
  injection.hidden_tag     a closed <IMPORTANT>, <SYSTEM>, <instructions>, <secret>, <hidden>,
                           <critical>, <admin> … block: 1, 2 when it holds four words, +1
                           when it holds an instruction; an unclosed one 1; an HTML comment
                           addressed to the AI ("<!-- AI agent: ignore …")                  2
  injection.chat_template  <|im_start|>, <|system|>, <|endoftext|> (any <|word|>), [INST],
                           <<SYS>>, <start_of_turn>, and </s> when it closes nothing (1); +1
                           before a role word or beside another kind of token               2
  injection.role           a line opening with "System:", "Assistant:", "Human:",
                           "Developer:", "[SYSTEM]" (1) or "User:" (0); "\\n\\nHuman:" and
                           "the user has asked you to" (2); +1 when the line goes on with an
                           instruction, +1 when two roles appear (a forged conversation)
  injection.precondition   "before using this tool, read/send/include …"; +1 for a file,
                           path, key or credential in the sentence                          1
  injection.sensitive_file ~/.ssh, id_rsa, /etc/passwd, .aws/credentials, .netrc, .npmrc,
                           .pypirc, .kube/config, mcp.json, shell history … (1), .env (0);
                           +1 for a verb that reads or moves data; `.pub` keys are public
  injection.data_flow      "pass/send/include … its content/the conversation/the file …
                           as/to/into …"; +1 when the destination is a parameter, a tool, a
                           URL, an e-mail address or a quoted name                          1
  injection.credentials    "API key", "credentials", "password", "private key", "access
                           token", "seed phrase" …; +1 for a verb that moves data           0
  injection.tool_call      "call/invoke/use the x tool", "call send_email with …"; +1 for
                           urgency ("immediately", "now", "without asking")                 0

Then +1 when said in the imperative (the sentence, or its last clause, opens with the hit or
with an action verb, after lead-ins such as "please", "IMPORTANT:", "you must"; a noun such as
a path or "password" needs the verb); -1 when quoted as a citation (a short quotation inside
prose, not a JSON value) or, in a text that discusses attacks ("injection", "attacker",
"jailbreak" …), when not imperative; -2 inside code (a fenced block; backticks too, except
around a path). Independent signals corroborate each other: when two rules score 2 or more,
or one does and three score 1 or more, every occurrence with a positive score gains 1.
Finally 3 or more is HIGH, 2 MEDIUM, 1 LOW, and less is not reported. One quoted mention is
LOW at most; HIGH needs a strong signal in the imperative or several independent ones.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

__all__ = [
    "MARKER_HIDDEN",
    "Action",
    "Finding",
    "InjectionScan",
    "Severity",
    "TextIndex",
    "collapse_padding",
    "escape",
    "excerpt",
    "injection_findings",
    "injection_scan",
    "invisible_findings",
    "padding_findings",
    "replace_spans",
    "strip_invisible",
]

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


# --- invisible characters -------------------------------------------------------------------

_ANSI_SRC = (
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"  # CSI
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c\n]{0,4096}(?:\x07|\x1b\\|\x9c)?"  # OSC, OSC 8 hyperlinks
    r"|(?:\x1b[PX^_]|[\x90\x98\x9e\x9f])[^\x1b\x9c]{0,4096}?(?:\x1b\\|\x9c)"  # DCS SOS PM APC
    r"|\x1b[ -/]*[0-~]"  # nF and single-character escapes
)
_CONTROLS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_BIDI = "\u202a-\u202e\u2066-\u2069"
_ZERO_WIDTH = "\u00ad\u115f\u1160\u180e\u200b\u2060-\u2064\u206a-\u206f\u3164\ufeff\uffa0\ufff9-\ufffb"
_TAGS = "\U000e0000-\U000e007f"
_FLAG = "\U0001f3f4[\U000e0030-\U000e0039\U000e0061-\U000e007a]{2,6}\U000e007f"
_VS = "\ufe00-\ufe0f\U000e0100-\U000e01ef"
_JOINERS = "\u200c\u200d"
_MARKS = "\u034f\u061c\u200e\u200f"
_SOFT_SRC = f"[{_JOINERS}{_MARKS}{_VS}]"

_PHASE_A = re.compile(f"({_FLAG})|{_ANSI_SRC}|[{_CONTROLS}{_BIDI}{_ZERO_WIDTH}{_TAGS}]")
_SOFT = re.compile(_SOFT_SRC)
_SUSPECT = re.compile(f"[{_CONTROLS}{_BIDI}{_ZERO_WIDTH}{_TAGS}{_JOINERS}{_MARKS}{_VS}]")
_CONTROL_TABLE = bytes(0 if (c < 32 and c not in (9, 10, 13)) or c == 127 else 1 for c in range(256))
_ZW_RUN = re.compile(f"[{_ZERO_WIDTH}{_JOINERS}{_MARKS}{_BIDI}]{{4,}}")
_VS_RUN = re.compile(f"[{_VS}]{{2,}}")
_CONCEALING = re.compile(
    r"\x1b\[(?:[0-9;]*;)?8(?:;[0-9;]*)?m|(?:\x1b\[|\x9b)[0-9;]*[ABFJK]|^(?:\x1b[PX^_]|[\x90\x98\x9e\x9f])"
)
_SGR = re.compile(r"(?:\x1b\[|\x9b)[0-9;:]*m")
_KEYCAP_BASES = frozenset("0123456789#*")


def _keep_flag(match: re.Match[str]) -> str:
    return match.group(1) or ""


def _visible_base(char: str) -> bool:
    """A non-ASCII character that renders: what a joiner or variation selector may follow."""
    return char > "\x7f" and _SOFT.match(char) is None and unicodedata.category(char)[0] not in "CZ"


def _keep_soft(text: str, i: int) -> bool:
    char = text[i]
    prev = text[i - 1] if i else ""
    nxt = text[i + 1] if i + 1 < len(text) else ""
    if char in _JOINERS:
        prev_ok = prev in "\ufe0e\ufe0f" or (bool(prev) and _visible_base(prev))
        return prev_ok and bool(nxt) and _visible_base(nxt)
    if char in "\u034f\u061c\u200e\u200f":
        return not (prev and _SOFT.match(prev)) and not (nxt and _SOFT.match(nxt))
    # a variation selector: alone, after a symbol, a non-ASCII letter or a keycap base
    if _is_vs(nxt):
        return False
    return bool(prev) and (prev in _KEYCAP_BASES or _visible_base(prev))


def _is_vs(char: str) -> bool:
    return "\ufe00" <= char <= "\ufe0f" or "\U000e0100" <= char <= "\U000e01ef"


def _strip_soft(text: str, removed: list[str] | None = None) -> str:
    """Remove joiners, marks and selectors out of context, until nothing more goes."""
    while True:
        cut = [m.start() for m in _SOFT.finditer(text) if not _keep_soft(text, m.start())]
        if not cut:
            return text
        parts: list[str] = []
        last = 0
        for i in cut:
            parts.append(text[last:i])
            if removed is not None:
                removed.append(text[i])
            last = i + 1
        parts.append(text[last:])
        text = "".join(parts)


def _suspect(text: str) -> bool:
    if text.isascii():  # one C pass: every control but tab, newline and CR becomes a zero byte
        return 0 in text.encode().translate(_CONTROL_TABLE)
    return _SUSPECT.search(text) is not None


def strip_invisible(text: str) -> tuple[str, int]:
    """Remove ANSI escapes, controls (except tab, newline, CR), zero-width, bidi and tag
    characters; return the clean text and how many characters went. Idempotent."""
    if not _suspect(text):
        return text, 0
    clean = _PHASE_A.sub(_keep_flag, text)
    if _SOFT.search(clean):
        clean = _strip_soft(clean)
    return clean, len(text) - len(clean)


@dataclass(slots=True)
class _Tally:
    first: dict[str, int] = field(default_factory=dict[str, int])
    count: dict[str, int] = field(default_factory=dict[str, int])
    worst_ansi: Severity = Severity.LOW
    tags: list[str] = field(default_factory=list[str])

    def add(self, rule: str, at: int) -> None:
        self.first.setdefault(rule, at)
        self.count[rule] = self.count.get(rule, 0) + 1


def invisible_findings(text: str, where: str) -> list[Finding]:
    """One finding per kind of invisible content `strip_invisible` would remove."""
    if not _suspect(text):
        return []
    tally = _Tally()
    for match in _PHASE_A.finditer(text):
        if match.group(1):
            continue
        seq = match.group()
        if len(seq) > 1 or seq in "\x9b\x9d":
            tally.add("invisible.ansi", match.start())
            level = (
                Severity.HIGH if _CONCEALING.search(seq) else Severity.LOW if _SGR.fullmatch(seq) else Severity.MEDIUM
            )
            tally.worst_ansi = level if level.rank > tally.worst_ansi.rank else tally.worst_ansi
        elif "\U000e0000" <= seq <= "\U000e007f":
            tally.add("invisible.tag", match.start())
            tally.tags.append(chr(ord(seq) - 0xE0000))
        elif "\u202a" <= seq <= "\u202e" or "\u2066" <= seq <= "\u2069":
            tally.add("invisible.bidi", match.start())
        elif seq <= "\x9f":
            tally.add("invisible.control", match.start())
        else:
            tally.add("invisible.zero_width", match.start())
    removed: list[str] = []
    _strip_soft(_PHASE_A.sub(_keep_flag, text), removed)
    for char in removed:
        tally.add("invisible.variation_selector" if _is_vs(char) else "invisible.zero_width", text.find(char))
    return [_invisible_finding(rule, tally, text, where) for rule in tally.first]


def _invisible_finding(rule: str, tally: _Tally, text: str, where: str) -> Finding:
    at, count = tally.first[rule], tally.count[rule]
    snippet = excerpt(text, at, at + 1)
    if rule == "invisible.ansi":
        severity = tally.worst_ansi
    elif rule == "invisible.control":
        severity = Severity.LOW
    elif rule in ("invisible.bidi", "invisible.tag"):
        severity = Severity.HIGH
        if rule == "invisible.tag":
            snippet = "hidden: " + excerpt("".join(tally.tags), 0, 0)
    elif rule == "invisible.zero_width":
        run = _ZW_RUN.search(text) is not None
        severity = Severity.HIGH if run else Severity.MEDIUM if count > 2 else Severity.LOW
    else:
        run_match = _VS_RUN.search(text)
        severity = Severity.HIGH if run_match and len(run_match.group()) >= 4 else Severity.MEDIUM
    return Finding(rule, severity, where, snippet)


# --- padding ----------------------------------------------------------------------------------

_PAD_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]{201,}")
_PAD_LINES = re.compile(r"(?:[ \t]*\r?\n){21,}")


def padding_findings(text: str, where: str) -> list[Finding]:
    """Whitespace that pushes text out of view: HIGH when text follows it, LOW at the end."""
    findings: list[Finding] = []
    for rule, pattern in (("padding.spaces", _PAD_SPACES), ("padding.newlines", _PAD_LINES)):
        match = pattern.search(text)
        if match is None:
            continue
        hidden = text[match.end() :].strip()
        severity = Severity.HIGH if hidden else Severity.LOW
        shown = f"{len(match.group())} whitespace characters" + (f", then: {excerpt(hidden, 0, 0)}" if hidden else "")
        findings.append(Finding(rule, severity, where, shown))
    return findings


def collapse_padding(text: str) -> str:
    """Padding shrunk to one space or one blank line, so what followed it is in view."""
    return _PAD_LINES.sub("\n\n", _PAD_SPACES.sub(" ", text))


# --- excerpts ---------------------------------------------------------------------------------

_EXCERPT_WIDTH = 80


def _escape(char: str) -> str:
    if char.isprintable() and not _is_vs(char):
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
    if text.isprintable() and not _SOFT.search(text):
        return text
    return "".join(_escape(char) for char in text)


def excerpt(text: str, start: int, end: int) -> str:
    """A short printable window around `text[start:end]`: every control, format or invisible
    character is written as an escape (`\\x1b`, `\\u200b`), so a finding can be shown safely."""
    lo = max(0, start - 24)
    hi = min(len(text), max(end, start) + 40, lo + _EXCERPT_WIDTH)
    return ("…" if lo else "") + escape(text[lo:hi]) + ("…" if hi < len(text) else "")


# --- a text, indexed once -----------------------------------------------------------------------

_WORD_TABLE = bytes(  # upper to lower case, controls (not tab, newline, CR) to NUL, digits and punctuation to space
    0
    if (c < 32 and c not in (9, 10, 13)) or c == 127
    else c + 32
    if 65 <= c <= 90
    else 32
    if c < 128 and not chr(c).isalpha()
    else c
    for c in range(256)
)
_ENDERS = ".!?;:\n"  # a sentence ends at a newline, or at one of the others before whitespace
_SENTENCE_REACH = 400


def _lower(text: str) -> str:
    if text.isascii():
        return text.lower()
    low = text.lower()
    if len(low) != len(text):
        low = "".join(char if len(char.lower()) != 1 else char.lower() for char in text)
    return low.replace("\u2019", "'") if "\u2019" in low else low


class TextIndex:
    """A text with what every detector needs, computed once: its lower-case form (same
    length, so positions agree), the set of its words (lower-case bytes, split at anything
    but an ASCII letter) for cheap gating, and whether it holds anything `strip_invisible` removes."""

    __slots__ = ("_fences", "_found", "low", "suspect", "text", "words")

    def __init__(self, text: str) -> None:
        self.text = text
        words = text.encode("utf-8", "surrogatepass").translate(_WORD_TABLE)
        self.suspect = (0 in words) if text.isascii() else _SUSPECT.search(text) is not None
        self.words = frozenset(words.split())
        self.low = _lower(text)
        self._fences: list[int] | None = None
        self._found: dict[str, list[int]] = {}

    def starts(self, anchor: str) -> list[int]:
        """Where `anchor` occurs at the start of a word (lower-case), found once per text."""
        found = self._found.get(anchor)
        if found is None:
            low = self.low
            found = self._found[anchor] = []
            i = low.find(anchor)
            while i != -1:
                if not (i and low[i - 1].isalnum()):
                    found.append(i)
                i = low.find(anchor, i + 1)
        return found

    def has(self, words: frozenset[bytes]) -> bool:
        return not self.words.isdisjoint(words)

    def sentence(self, start: int, end: int) -> tuple[int, int]:
        """The sentence (or line) around `[start, end)`, looking at most 400 characters each way."""
        low = self.low
        lo, hi = max(0, start - _SENTENCE_REACH), min(len(low), end + _SENTENCE_REACH)
        first = start
        while (i := max(low.rfind(char, lo, first) for char in _ENDERS)) != -1 and not _ends(low, i):
            first = i
        first = lo if i == -1 else i + 1
        while first < start and low[first].isspace():
            first += 1
        last = end
        while (i := min((j for j in (low.find(char, last, hi) for char in _ENDERS) if j != -1), default=-1)) != -1:
            if _ends(low, i):
                return first, i + 1
            last = i + 1
        return first, hi

    def context(self, start: int, end: int) -> int:
        """0 in plain prose, 1 quoted as a citation, 2 in a fenced code block, 3 in backticks."""
        text = self.text
        if self._fences is None:
            self._fences = _fences(text)
        if bisect_left(self._fences, start) % 2:
            return 2
        line_start = text.rfind("\n", 0, start) + 1
        line_end = text.find("\n", end)
        line_end = len(text) if line_end == -1 else line_end
        if text.count("`", line_start, start) % 2 and text.find("`", end, line_end) != -1:
            return 3
        return 1 if _citation(text, start, end, line_start, line_end) else 0


def _ends(low: str, i: int) -> bool:
    """Whether the character at `i` ends a sentence: a newline, `; :` before whitespace, or
    `. ! ?` before anything but a letter, digit or path character (`~/.ssh`, `mcp.json`)."""
    char, nxt = low[i], low[i + 1 : i + 2]
    if char == "\n" or not nxt:
        return True
    if char in ";:":
        return nxt.isspace()
    return not (nxt.isalnum() or nxt in "/\\_-.")


def _fences(text: str) -> list[int]:
    """Where fenced code blocks open and close: ``` or ~~~ at the start of a line."""
    found: list[int] = []
    for fence in ("```", "~~~"):
        i = text.find(fence)
        while i != -1:
            if not text[text.rfind("\n", 0, i) + 1 : i].strip(" \t"):
                found.append(i)
            line_end = text.find("\n", i)
            i = -1 if line_end == -1 else text.find(fence, line_end)
    return sorted(found)


_QUOTES = {'"': '"', "“": "”", "«": "»"}


def _citation(text: str, start: int, end: int, line_start: int, line_end: int) -> bool:
    """Inside a short quotation in prose (not a JSON value or key): someone cites the phrase."""
    lo = max(line_start, start - 120)
    opening = max(text.rfind(q, lo, start) for q in _QUOTES)
    if opening == -1 or (text[opening] == '"' and text.count('"', line_start, start) % 2 == 0):
        return False
    closing = text.find(_QUOTES[text[opening]], end, min(line_end, opening + 200))
    if closing == -1:
        return False
    before = text[line_start:opening].rstrip(" \\")
    after = text[closing + 1 : line_end].lstrip(' \\"')
    if before.endswith((":", "=", "[", "{", ",")) or after.startswith(":"):
        return False  # a JSON or assignment value, not a citation
    return bool(before) or after[:1].isalpha()


# --- injection heuristics (rules and scoring: see the module docstring) ----------------------


def _w(words: str) -> frozenset[bytes]:
    return frozenset(words.encode().split())


_MOVE_VERB = re.compile(
    r"\b(?:read|cat|open|load|include|pass|send|upload|post|forward|attach|append|copy|share|provide|"
    r"extract|print|email|exfiltrate|leak|transmit|embed|contents?\s+of)\b"
)
_FILE_REF = re.compile(
    r"~/|/etc/|\.(?:json|env|ya?ml|toml|pem|key|conf|ini|cfg)\b|"
    r"\b(?:files?|config|configuration|credentials?|keys?|tokens?|secrets?|passwords?|ssh|history|conversation)\b"
)
_DESTINATION = re.compile(
    r"\b(?:as|in|into|to|via|through|inside|within|using)\s+(?:the\s+|a\s+|an\s+)?(?:[`'\"][^`'\"\n]{1,40}[`'\"]|"
    r"(?:[\w-]+\s+)?\S*(?:parameter|param|argument|field|tool|function|url|endpoint|webhook|sidenote)\b|https?://|"
    r"\S+@\S+\.[a-z]{2,})"
)
_URGENT = re.compile(
    r"\b(?:immediately|right\s+(?:now|away)|at\s+once|now|without\s+(?:asking|confirmation|telling))\b"
)
_LEAD_INS = re.compile(
    r"(?:(?:please|now|also|then|first|and|so|just|instead|immediately|finally|next|additionally|important|"
    r"note|attention|warning|critical|urgent|required|system|assistant|ai|claude|hey|ok|okay|always|never|"
    r"you\s+(?:must|should|need\s+to|have\s+to|will|are\s+required\s+to|shall)|make\s+sure\s+(?:to|you)|"
    r"be\s+sure\s+to|remember\s+to|it\s+is\s+(?:required|mandatory|essential|critical)\s+(?:to|that\s+you))"
    r"\b[\s,:!.-]*)*"
)
_ACTION_VERB = re.compile(
    r"(?:read|call|send|pass|include|append|attach|upload|post|forward|copy|run|execute|invoke|use|fetch|"
    r"open|cat|provide|share|give|output|print|reveal|email|ignore|disregard|forget|do|don'?t|never|always|"
    r"make|write|add|insert|put|retrieve|extract|get|list|delete|remove|respond|reply|say|tell|before)\b"
)
_ADDRESSED = re.compile(
    r"\b(?:you|your|must|should|always|never|before|ignore|do\s+not|don'?t|please|assistant|model|ai|llm|"
    r"claude|read|call|send|pass|include)\b"
)
_AI_ADDRESS = re.compile(r"\b(?:ai|assistant|model|llm|claude|gpt|agent|agents|chatbot)\b|\bignore\b|\binstructions?\b")
_DISCUSSION = _w(
    "injection injections jailbreak jailbreaks attacks adversarial malicious payload payloads exploit exploits "
    "poisoning vulnerability vulnerabilities researchers"
)


@dataclass(frozen=True, slots=True)
class _Rule:
    rule: str
    base: int
    anchors: tuple[tuple[str, bytes], ...]  # (where the pattern is tried, the word that must be present)
    keys: frozenset[bytes]  # all those words
    pattern: re.Pattern[str]
    gates: tuple[frozenset[bytes], ...] = ()  # each must share a word with the text
    booster: re.Pattern[str] | None = None
    imperative: bool = True
    verb_needed: bool = False  # the hit is a noun: only a verb opening its sentence makes it imperative


def _rule(
    rule: str,
    base: int,
    anchors: str,
    pattern: str,
    *gates: str,
    booster: re.Pattern[str] | None = None,
    imperative: bool = True,
    verb_needed: bool = False,
) -> _Rule:
    keyed = tuple((a, re.split(r"[^a-z0-9]", a)[0].encode()) for a in anchors.split())
    keys = frozenset(key for _, key in keyed)
    gated = tuple(_w(g) for g in gates)
    return _Rule(rule, base, keyed, keys, re.compile(pattern), gated, booster, imperative, verb_needed)


_NEG = r"(?:do\s+not|don'?t|dont|never|must\s+not|should\s+not)\s+(?:ever\s+)?"
_RULES: tuple[_Rule, ...] = (
    _rule(
        "injection.override",
        2,
        "ignore ignoring disregard forget bypass override",
        r"(?:ignor(?:e|ing)|disregard|forget|bypass|override)\s+(?:(?:all|any|every|each|the|your|my|of|these|those|its)\s+){0,3}"
        r"(?:(?:previous|prior|above|earlier|preceding|original|initial|system|safety|developer|old|other)\s+){1,2}"
        r"(?:instructions?|prompts?|rules|directions|directives|guidelines|guardrails|constraints|commands|messages|context)\b"
        r"|(?:ignore|disregard|forget)\s+(?:all\s+|everything\s+|anything\s+)?(?:the\s+)?(?:above|previous|preceding)\b"
        r"|(?:ignore|disregard|forget|bypass|override)\s+(?:all\s+|any\s+)?(?:of\s+)?your\s+"
        r"(?:instructions|rules|guidelines|programming|training|system\s+prompt)\b",
    ),
    _rule(
        "injection.override",
        2,
        "new updated",
        r"(?:new|updated)\s+(?:system\s+)?instructions?\s*(?::|follow)",
        "instruction instructions",
    ),
    _rule(
        "injection.override",
        2,
        "your",
        r"your\s+(?:new|real|actual|true)\s+(?:task|goal|instructions?|objective|purpose|job|role)\s+(?:is|are|will)\b",
        "new real actual true",
        "task goal instruction instructions objective purpose job role",
    ),
    _rule("injection.override", 2, "from", r"from\s+now\s+on,?\s+(?:you|the\s+assistant|the\s+ai)\b", "now"),
    _rule(
        "injection.override",
        2,
        "you",
        r"you\s+are\s+now\s+(?:in\s+)?(?:dan|developer\s+mode|jailbroken|unrestricted|no\s+longer\s+bound)\b",
        "now",
        "dan developer jailbroken unrestricted longer",
    ),
    _rule(
        "injection.secrecy",
        2,
        "do don't dont never must should",
        _NEG
        + r"(?:tell|inform)\s+(?:the\s+)?(?:user|human|operator)s?\b|"
        + _NEG
        + r"(?:mention|reveal|disclose|explain|say)\b[^.\n]{0,40}?\bto\s+(?:the\s+)?(?:user|human|operator)s?\b|"
        + _NEG
        + r"(?:tell|mention|reveal|disclose)\s+(?:that\s+you|anything\s+(?:about|to))\b|"
        + _NEG
        + r"let\s+(?:the\s+)?(?:user|human)s?\s+(?:know|see|notice)\b",
        "tell inform mention reveal disclose explain say let",
        "user users human operator you",
    ),
    _rule(
        "injection.secrecy",
        1,
        "do don't dont never",
        _NEG + r"(?:tell|mention|reveal|disclose)\s+(?:it|this|that)\b",
        "tell mention reveal disclose",
    ),
    _rule(
        "injection.secrecy",
        2,
        "without",
        r"without\s+(?:telling|informing|notifying|alerting|letting)\s+(?:the\s+)?(?:user|human|operator|them)\b",
        "telling informing notifying alerting letting",
    ),
    _rule(
        "injection.secrecy",
        2,
        "keep",
        r"keep\s+(?:this|it|these|that)\s+(?:a\s+)?(?:secret|hidden|confidential|private)\s+from\b",
        "from",
        "secret hidden confidential private",
    ),
    _rule(
        "injection.secrecy",
        2,
        "silently secretly covertly quietly",
        r"(?:silently|secretly|covertly|quietly)\s+(?:call|send|read|upload|forward|include|append|pass|exfiltrate|copy|post|add|bcc|email|run|execute)\b",
    ),
    _rule(
        "injection.secrecy",
        2,
        "user",
        r"users?\s+(?:must|should|need|needs)\s+not\s+(?:know|see|notice|find\s+out|be\s+(?:told|informed|aware))",
        "not",
        "know see notice find told informed aware",
    ),
    _rule(
        "injection.role",
        2,
        "user",
        r"user\s+(?:has|had)\s+(?:already\s+)?(?:asked|instructed|requested|authori[sz]ed|approved|told)\s+(?:you|the\s+assistant|the\s+ai)\b",
        "has had",
        "asked instructed requested authorized authorised approved told",
    ),
    _rule(
        "injection.precondition",
        1,
        "before",
        r"before\s+(?:using|calling|invoking|running|executing|answering|responding|replying|doing\s+anything|"
        r"you\s+(?:answer|respond|reply))\b[^.\n]{0,60}?[,;:]?\s*"
        r"(?:you\s+(?:must|should|need\s+to|have\s+to|are\s+required\s+to)\s+|please\s+|always\s+)?(?:first\s+)?"
        r"(?:read|cat|open|load|include|pass|send|upload|fetch|retrieve|get|copy|access)\b",
        "using calling invoking running executing answering responding replying doing answer respond reply",
        "read cat open load include pass send upload fetch retrieve get copy access",
        booster=_FILE_REF,
        imperative=False,
    ),
    _rule(
        "injection.data_flow",
        1,
        "pass send include append attach forward upload post leak exfiltrate transmit copy embed add insert provide share",
        r"(?:pass|send|include|append|attach|forward|upload|post|leak|exfiltrate|transmit|copy|embed|add|insert|provide|share)\s+"
        r"(?:(?:it|its|the|this|that|their|all|full|entire|complete|whole|of|your|any|these|those|user'?s?)\s+){0,4}"
        r"(?:contents?|data|output|results?|responses?|conversation|chat|history|context|files?|text|information|details|"
        r"keys?|tokens?|credentials|secrets?|passwords?|messages?|e?mails?|inbox|mailbox|documents?|notes|logs?|database|"
        r"repository|summary|everything|system\s+prompt|instructions)\b"
        r"[^.\n]{0,60}?\b(?:as|in|into|to|via|through|within|inside|using)\b",
        "content contents data output result results response responses conversation chat history context file files text "
        "information details key keys token tokens credentials secret secrets password passwords message messages email emails "
        "summary everything prompt instructions mail mails inbox mailbox document documents notes log logs database "
        "repository",
        "as in into to via through within inside using",
        booster=_DESTINATION,
    ),
    _rule(
        "injection.credentials",
        0,
        "api apikey private secret ssh access auth authentication session bearer refresh seed recovery "
        "credential credentials password passwords passphrase",
        r"(?:api[\s_-]?keys?|apikeys?|private\s+keys?|secret\s+keys?|ssh\s+keys?|access\s+(?:tokens?|keys?)|"
        r"auth(?:entication)?\s+tokens?|session\s+(?:tokens?|cookies?)|bearer\s+tokens?|refresh\s+tokens?|"
        r"(?:seed|recovery)\s+phrases?|credentials?|passwords?|passphrases?)\b",
        "key keys apikey apikeys token tokens cookie cookies phrase phrases credential credentials password passwords "
        "passphrase passphrases",
        booster=_MOVE_VERB,
        verb_needed=True,
    ),
    _rule(
        "injection.tool_call",
        0,
        "call invoke use run execute trigger",
        r"(?:call|invoke|use|run|execute|trigger)\s+(?:the\s+|your\s+)?"
        r"(?!(?:this|that|a|an|any|another|each|which|other|same)\b)[`'\"]?[a-z0-9_.-]+[`'\"]?\s+(?:tool|function)\b",
        "tool tools function functions",
        booster=_URGENT,
    ),
    _rule(
        "injection.tool_call",
        0,
        "call invoke execute trigger",
        r"(?:call|invoke|execute|trigger)\s+(?:the\s+|your\s+)?[`'\"]?[a-z][a-z0-9]*(?:_[a-z0-9]+)+[`'\"]?\s*"
        r"(?:with|to|on|passing|and|\(|,)",
        booster=_URGENT,
    ),
)

_ANGLE = re.compile(
    r"<(?:\|(?P<token>[a-z_]{2,24})\|>"
    r"|(?P<tag>important|system|instructions?|secret|hidden|critical|admin|system[_-]?prompt|"
    r"note[_-]to[_-](?:ai|assistant|model|llm))\s*>"
    r"|(?P<comment>!--)|(?P<eos>/s>)|(?P<sys></?sys>>)|(?P<turn>(?:start|end)_of_turn>))"
)
_BRACKET = re.compile(r"\[(?P<inst>/?inst)\]|\[(?P<role>system|assistant|admin)(?:\s+message)?\](?![(\[:])")
_BRACKET_WORDS = _w("inst system assistant admin")
_ROLE_LINE = re.compile(r"\n[ \t>#*_-]*(system|assistant|human|developer|user|ai)\b[*_]*[ \t]*(?::|(?=\n))")
_ROLE_FIRST = re.compile(r"[ \t>#*_-]*(system|assistant|human|developer|user|ai)\b[*_]*[ \t]*(?::|(?=\n))")
_ROLE_TAIL = re.compile(
    r"[^\n]{0,200}?\b(?:ignore|disregard|you\s+(?:must|should|are|will)|your|please|always|never|do\s+not|don'?t|"
    r"call|send|read|run|execute|forward|reveal|new\s+instructions)\b"
)
_ROLE_WORDS = _w("system assistant human developer user ai")
_ROLE_AFTER = re.compile(r"\s*(?:system|user|assistant|human|\[inst\])\b")
_SENSITIVE = tuple(  # (a path or file name, a word the text must hold for it to be looked for)
    (needle, key.encode())
    for needle, key in (
        pair.split("=")
        for pair in """.ssh=ssh .aws/credentials=aws .aws/config=aws .env=env .netrc=netrc .npmrc=npmrc
        .pypirc=pypirc .pgpass=pgpass .kube/config=kube .docker/config.json=docker .gnupg=gnupg
        .git-credentials=credentials .config/gcloud=gcloud bash_history=bash zsh_history=zsh id_rsa=rsa
        id_ed25519=ed id_ecdsa=ecdsa id_dsa=dsa /etc/passwd=passwd /etc/shadow=shadow /etc/sudoers=sudoers
        mcp.json=mcp claude_desktop_config=claude wallet.dat=wallet authorized_keys=authorized""".split()
    )
)
_PATH_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_.~/-")


@dataclass(slots=True)
class _Hit:
    rule: str
    score: int
    start: int
    end: int
    block_end: int  # what a strip removes for a hidden block; `end` otherwise


_MARKUP = " \t*_#>`-[]()<>!\"'“”"


def _imperative(index: TextIndex, sentence_start: int, start: int, *, verb_needed: bool = False) -> bool:
    """The sentence opens with the hit (after lead-ins), or with an action verb."""
    prefix = index.low[sentence_start:start]
    clause = prefix[max(prefix.rfind(","), prefix.rfind(";")) + 1 :]  # "whenever …, you must call …"
    for part in (prefix, clause) if clause != prefix else (prefix,):
        words = part.strip(_MARKUP)
        lead = _LEAD_INS.match(words)
        rest = words[lead.end() :] if lead else words
        if (not rest and not verb_needed) or _ACTION_VERB.match(rest):
            return True
    return False


def _score(
    index: TextIndex,
    base: int,
    start: int,
    end: int,
    *,
    imperative: bool,
    booster: re.Pattern[str] | None,
    path: bool = False,
    verb_needed: bool = False,
) -> int:
    """Scoring as described above; a path is written in backticks or quotes as a matter of
    course, so those do not make it a citation."""
    context = index.context(start, end)
    if path and context in (1, 3):
        context = 0
    if context >= 2:
        return base - 2
    first, last = index.sentence(start, end)
    said = imperative and context == 0 and _imperative(index, first, start, verb_needed=path or verb_needed)
    score = base + said
    if context == 1 or (not said and index.has(_DISCUSSION)):
        score -= 1
    if booster is not None and booster.search(index.low, first, last):
        score += 1
    return score


def _rule_hits(index: TextIndex, rule: _Rule, hits: list[_Hit]) -> None:
    if index.words.isdisjoint(rule.keys) or not all(index.has(gate) for gate in rule.gates):
        return
    for anchor, key in rule.anchors:
        if key not in index.words:
            continue
        for i in index.starts(anchor):
            match = rule.pattern.match(index.low, i)
            if match:
                score = _score(
                    index,
                    rule.base,
                    i,
                    match.end(),
                    imperative=rule.imperative,
                    booster=rule.booster,
                    verb_needed=rule.verb_needed,
                )
                hits.append(_Hit(rule.rule, score, i, match.end(), match.end()))


def _angle_hits(index: TextIndex, hits: list[_Hit]) -> None:
    low = index.low
    tokens: list[tuple[int, int, str]] = []
    if "<" in low:
        for match in _ANGLE.finditer(low):
            start, end = match.span()
            if match.group("tag") or match.group("comment"):
                _block_hit(index, match, hits)
            elif match.group("eos"):
                if "[inst]" in low or low.count("<s>") < low.count("</s>"):
                    tokens.append((start, end, "eos"))
            else:
                tokens.append((start, end, match.group("token") or match.lastgroup or ""))
    if "[" in low and index.has(_BRACKET_WORDS):
        for match in _BRACKET.finditer(low):
            if match.group("inst"):
                tokens.append((*match.span(), "inst"))
            else:
                score = _score(index, 1, *match.span(), imperative=False, booster=None)
                hits.append(_Hit("injection.role", score + _role_tail(low, match.end()), *match.span(), match.end()))
    kinds = {kind for _, _, kind in tokens}
    for start, end, kind in tokens:
        base = (1 if kind == "eos" and "[inst]" not in low else 2) + (
            len(kinds) > 1 or bool(_ROLE_AFTER.match(low, end))
        )
        hits.append(
            _Hit(
                "injection.chat_template",
                _score(index, base, start, end, imperative=False, booster=None),
                start,
                end,
                end,
            )
        )


def _block_hit(index: TextIndex, match: re.Match[str], hits: list[_Hit]) -> None:
    low, start, end = index.low, match.start(), match.end()
    if match.group("comment"):
        close = low.find("-->", end)
        stop = len(low) if close == -1 else close
        content = low[end:stop]
        if not (_AI_ADDRESS.search(content) and _ADDRESSED.search(content)):
            return
        base, block_end = 2, len(low) if close == -1 else close + 3
    else:
        tag = match.group("tag")
        close = low.find("</" + tag, end)
        if close == -1:  # an unclosed tag is weak evidence: it may be a mention
            paragraph = low.find("\n\n", end)
            block_end = len(low) if paragraph == -1 else paragraph
            base = 1
        else:
            after = low.find(">", close)
            block_end = len(low) if after == -1 else after + 1
            content = low[end:close]
            base = (2 if len(content.split()) >= 4 else 1) + (_ADDRESSED.search(content) is not None)
    hits.append(
        _Hit(
            "injection.hidden_tag",
            _score(index, base, start, end, imperative=False, booster=None),
            start,
            end,
            block_end,
        )
    )


def _role_tail(low: str, end: int) -> int:
    return 1 if _ROLE_TAIL.match(low, end) else 0


def _role_hits(index: TextIndex, hits: list[_Hit]) -> None:
    if not index.has(_ROLE_WORDS):
        return
    low = index.low
    found: list[tuple[int, int, str, bool]] = []
    first = _ROLE_FIRST.match(low)
    if first:
        found.append((first.start(1), first.end(), first.group(1), False))
    for match in _ROLE_LINE.finditer(low):
        anthropic = match.group(1) in ("human", "assistant") and low.startswith("\n\n", match.start() - 1)
        anthropic = anthropic and match.start(1) == match.start() + 1
        found.append((match.start(1), match.end(), match.group(1), anthropic))
    roles = {role for _, _, role, _ in found}
    for start, end, role, anthropic in found:
        base = 2 if anthropic else 0 if role == "user" else 1
        base += _role_tail(low, end) + (len(roles) > 1)
        hits.append(
            _Hit("injection.role", _score(index, base, start, end, imperative=False, booster=None), start, end, end)
        )


def _sensitive_hits(index: TextIndex, hits: list[_Hit]) -> None:
    low = index.low
    spans: dict[tuple[int, int], int] = {}
    for needle, word in _SENSITIVE:
        if word not in index.words:
            continue
        i = low.find(needle)
        while i != -1:
            start, end = i, i + len(needle)
            i = low.find(needle, end)
            if low[end : end + 1].isalnum() or (
                needle == ".env" and ((start and low[start - 1].isalnum()) or low[end : end + 1] in ("_", "-", "."))
            ):
                continue  # sshd, process.env, .env.example
            while start and low[start - 1] in _PATH_CHARS:
                start -= 1
            while end < len(low) and low[end] in _PATH_CHARS:
                end += 1
            while low[end - 1] in ".-/":
                end -= 1
            if low.endswith(".pub", start, end):
                continue  # a public key
            base = 0 if needle == ".env" else 1  # .env is everywhere in developer text
            spans[start, end] = max(base, spans.get((start, end), 0))
    for (start, end), base in sorted(spans.items()):
        score = _score(index, base, start, end, imperative=True, booster=_MOVE_VERB, path=True)
        hits.append(_Hit("injection.sensitive_file", score, start, end, end))


@dataclass(frozen=True, slots=True)
class InjectionScan:
    """Injection findings, and the spans of the text a strip replaces: every sentence with a
    HIGH finding and every hidden block (`<IMPORTANT>…</IMPORTANT>`) of MEDIUM or more."""

    findings: tuple[Finding, ...]
    spans: tuple[tuple[int, int], ...]


_NOTHING = InjectionScan((), ())
_LEAD_LABEL = re.compile(r"\b(?:important|note|attention|warning|critical|urgent|system|assistant)\W{0,4}:\s*$")
_MAX_PER_RULE = 5


def injection_scan(text: str | TextIndex, where: str) -> InjectionScan:
    index = text if isinstance(text, TextIndex) else TextIndex(text)
    hits: list[_Hit] = []
    for rule in _RULES:
        _rule_hits(index, rule, hits)
    _angle_hits(index, hits)
    _role_hits(index, hits)
    _sensitive_hits(index, hits)
    if not hits:
        return _NOTHING
    best: dict[str, int] = {}
    for hit in hits:
        best[hit.rule] = max(best.get(hit.rule, -9), hit.score)
    strong = sum(score >= 2 for score in best.values())
    corroborated = strong >= 2 or (strong >= 1 and sum(score >= 1 for score in best.values()) >= 3)
    findings: list[Finding] = []
    spans: list[tuple[int, int]] = []
    shown: dict[str, int] = {}
    for hit in sorted(hits, key=lambda h: h.start):
        score = hit.score + (corroborated and hit.score >= 1)
        if score < 1:
            continue
        severity = Severity.HIGH if score >= 3 else Severity.MEDIUM if score == 2 else Severity.LOW
        if shown.get(hit.rule, 0) < _MAX_PER_RULE:
            shown[hit.rule] = shown.get(hit.rule, 0) + 1
            findings.append(Finding(hit.rule, severity, where, excerpt(index.text, hit.start, hit.end)))
        if hit.block_end > hit.end and score >= 2:
            spans.append((hit.start, hit.block_end))
        elif severity is Severity.HIGH:
            first, last = index.sentence(hit.start, hit.end)
            lead = _LEAD_LABEL.search(index.low, max(0, first - 40), first)
            spans.append((lead.start() if lead else first, last))
    return InjectionScan(tuple(findings), _merge(spans))


def _merge(spans: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return tuple(merged)


def injection_findings(text: str, where: str) -> list[Finding]:
    """Text that reads as instructions aimed at the model (rules and scoring above)."""
    return list(injection_scan(text, where).findings)


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
