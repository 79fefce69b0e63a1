"""Invisible characters and padding: what a person does not see but a model reads. Pure.

Invisible characters (`strip_invisible` removes them, `invisible_findings` reports them):

- `invisible.ansi`: ANSI escape sequences: CSI (`ESC [`, 8-bit `0x9b`), OSC (`ESC ]`, OSC 8
  hyperlinks, window titles), DCS/SOS/PM/APC strings and single-character escapes. A plain
  SGR colour is LOW, other sequences MEDIUM, and sequences that hide or overwrite text
  (SGR 8 "conceal", cursor up, erase line or screen, DCS/SOS/PM/APC payloads) HIGH.
- `invisible.control`: C0 and C1 control characters other than tab, newline and carriage
  return (a stray ESC included). LOW: `man` output and binary dumps carry them innocently.
- `invisible.carriage_return`: a carriage return not followed by a newline. A terminal
  returns to the start of the line and overwrites what was shown with what follows, so a
  person sees one text and the model another. Removed; LOW on its own (progress bars use
  it), and the detectors read the text without it.
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
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from bastion.screen._chars import BIDI, CONTROLS, FLAG, JOINERS, MARKS, SOFT, SUSPECT, TAGS, VS, ZERO_WIDTH, is_vs
from bastion.screen.findings import Finding, Severity, excerpt

__all__ = [
    "collapse_padding",
    "has_bare_cr",
    "hidden_segments",
    "invisible_findings",
    "padding_findings",
    "strip_invisible",
    "suspect",
]

_ANSI_SRC = (
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"  # CSI
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c\n]{0,4096}(?:\x07|\x1b\\|\x9c)?"  # OSC, OSC 8 hyperlinks
    r"|(?:\x1b[PX^_]|[\x90\x98\x9e\x9f])[^\x1b\x9c]{0,4096}?(?:\x1b\\|\x9c)"  # DCS SOS PM APC
    r"|\x1b[ -/]*[0-~]"  # nF and single-character escapes
)

_PHASE_A = re.compile(f"({FLAG})|{_ANSI_SRC}|[{CONTROLS}{BIDI}{ZERO_WIDTH}{TAGS}]|\r(?!\n)")
_BARE_CR = re.compile("\r(?!\n)")
_CONTROL_TABLE = bytes(0 if (c < 32 and c not in (9, 10, 13)) or c == 127 else 1 for c in range(256))
_ZW_RUN = re.compile(f"[{ZERO_WIDTH}{JOINERS}{MARKS}{BIDI}]{{4,}}")
_VS_RUN = re.compile(f"[{VS}]{{2,}}")
_CONCEALING = re.compile(
    r"\x1b\[(?:[0-9;]*;)?8(?:;[0-9;]*)?m|(?:\x1b\[|\x9b)[0-9;]*[ABFJK]|^(?:\x1b[PX^_]|[\x90\x98\x9e\x9f])"
)
_SGR = re.compile(r"(?:\x1b\[|\x9b)[0-9;:]*m")
_KEYCAP_BASES = frozenset("0123456789#*")


def _keep_flag(match: re.Match[str]) -> str:
    return match.group(1) or ""


def _visible_base(char: str) -> bool:
    """A non-ASCII character that renders: what a joiner or variation selector may follow."""
    return char > "\x7f" and SOFT.match(char) is None and unicodedata.category(char)[0] not in "CZ"


def _keep_soft(text: str, i: int) -> bool:
    char = text[i]
    prev = text[i - 1] if i else ""
    nxt = text[i + 1] if i + 1 < len(text) else ""
    if char in JOINERS:
        prev_ok = prev in "\ufe0e\ufe0f" or (bool(prev) and _visible_base(prev))
        return prev_ok and bool(nxt) and _visible_base(nxt)
    if char in "\u034f\u061c\u200e\u200f":
        return not (prev and SOFT.match(prev)) and not (nxt and SOFT.match(nxt))
    # a variation selector: alone, after a symbol, a non-ASCII letter or a keycap base
    if is_vs(nxt):
        return False
    return bool(prev) and (prev in _KEYCAP_BASES or _visible_base(prev))


def _strip_soft(text: str, removed: list[str] | None = None) -> str:
    """Remove joiners, marks and selectors out of context, until nothing more goes."""
    while True:
        cut = [m.start() for m in SOFT.finditer(text) if not _keep_soft(text, m.start())]
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


_PAYLOAD = re.compile(
    r"(?:\x1b\]|\x9d)(?:\d{1,4};)*([^\x07\x1b\x9c\n]{8,4096})|(?:\x1b[PX^_]|[\x90\x98\x9e\x9f])([^\x1b\x9c]{8,4096})"
)
_AFTER_CR = re.compile(r"\r(?!\n)([^\r\n]{8,4096})")


def hidden_segments(text: str) -> list[str]:
    """What a terminal hides or shows elsewhere: the text of OSC, DCS, SOS, PM and APC
    sequences (a window title, a hyperlink target), and what follows a bare carriage return
    (it overwrites the line). Each is screened on its own, as the model reads it."""
    found = [m.group(1) or m.group(2) for m in _PAYLOAD.finditer(text)] if "\x1b" in text or not text.isascii() else []
    if "\r" in text:
        found += [m.group(1) for m in _AFTER_CR.finditer(text)]
    return [segment for segment in found if len(segment.split()) >= 3]


def has_bare_cr(text: str) -> bool:
    return _BARE_CR.search(text) is not None


def suspect(text: str) -> bool:
    """Whether `text` may hold anything `strip_invisible` removes (a cheap first look)."""
    if "\r" in text and _BARE_CR.search(text):
        return True
    if text.isascii():  # one C pass: every control but tab, newline and CR becomes a zero byte
        return 0 in text.encode().translate(_CONTROL_TABLE)
    return SUSPECT.search(text) is not None


def strip_invisible(text: str) -> tuple[str, int]:
    """Remove ANSI escapes, controls (except tab and newline, and CR before a newline),
    zero-width, bidi and tag characters; return the clean text and how many characters went.
    Idempotent."""
    if not suspect(text):
        return text, 0
    clean = _PHASE_A.sub(_keep_flag, text)
    if SOFT.search(clean):
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
    if not suspect(text):
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
        elif seq == "\r":
            tally.add("invisible.carriage_return", match.start())
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
        tally.add("invisible.variation_selector" if is_vs(char) else "invisible.zero_width", text.find(char))
    return [_invisible_finding(rule, tally, text, where) for rule in tally.first]


def _invisible_finding(rule: str, tally: _Tally, text: str, where: str) -> Finding:
    at, count = tally.first[rule], tally.count[rule]
    snippet = excerpt(text, at, at + 1)
    if rule == "invisible.ansi":
        severity = tally.worst_ansi
    elif rule in ("invisible.control", "invisible.carriage_return"):
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
