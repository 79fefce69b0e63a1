"""What the detectors read: text folded to what it looks like, and encoded blobs decoded. Pure.

Folding (`fold`) maps every character that looks like an ASCII letter or digit to it, keeping
the length, so that positions in the folded text are positions in the original:

- compatibility forms, through NFKC one character at a time: fullwidth letters (U+FF41 …),
  mathematical bold or italic letters (U+1D400 …), circled letters, superscripts; a character
  whose NFKC form is longer (a ligature) is kept;
- confusables, from Unicode's confusables data (UTS #39) as shipped by the
  `confusable-homoglyphs` package: Cyrillic dze and ie for `s` and `e` ("system" spelt with
  them), Greek omicron, small capitals, Cherokee letters.

Only the confusables of the 62 ASCII letters and digits are needed, so the package's
`confusables.json` is read directly, on first use, instead of importing its module:
`confusable_homoglyphs.confusables` decodes all 9,600 entries into dicts at import, and they stay
in memory for the life of the process (7 MB of the 80 MB a `bastion wrap` held). Read entry by
entry, keeping the 62, the file costs its text (0.9 MB) and one entry at a time, and only while
the table is built.

Text that is mostly ASCII is folded whole. In text that is mostly in another script (Russian,
Greek, Japanese) only the words that mix ASCII letters with other letters are folded, so
legitimate text costs little and keeps its words. The tables are built on the first text
that is not ASCII (some tens of milliseconds, once).

Zero-width, tag and other invisible characters are removed before folding
(`bastion.screen.invisible.strip_invisible`).

Decoding (`encoded_blobs`): base64 (standard and URL-safe), hex and percent-encoded runs of
text are decoded once (never recursively) when what they decode to reads as text (UTF-8,
printable, with words), so the caller can screen it again. Bounded: at most 64 runs tried, 16 blobs
and 64 KiB of decoded text per screened text, and 4 KiB from each blob; a run that is not
text costs one decode of its first 96 bytes.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import string
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from itertools import islice
from typing import Any, Literal
from urllib.parse import unquote_plus

from bastion.screen._scan import finditer_at

__all__ = ["Blob", "encoded_blobs", "fold"]

_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]+")
_MIXED = re.compile(r"[A-Za-z][^\x00-\x7f]|[^\x00-\x7f][A-Za-z]")
_ALNUM = string.ascii_letters + string.digits
_COMPAT = re.compile("[\u3000\uff01-\uff5e\u2460-\u24ff\U0001d400-\U0001d7ff\U0001f130-\U0001f189]+")


_CONFUSABLES_PACKAGE = "confusable_homoglyphs"
_CONFUSABLES_FILE = "confusables.json"
_JSON_SPACE = re.compile(r"[ \t\n\r]*")

_Confusables = Mapping[str, Sequence[Mapping[str, str]]]
"""The confusables data's shape: a character or sequence, to the glyphs that look like it (`c`)."""


@cache
def _table() -> dict[int, str]:
    """Every non-ASCII character that looks like an ASCII letter or digit, to it (lower case)."""
    return _build_table(_ascii_confusables())


def _build_table(confusables: _Confusables) -> dict[int, str]:
    """The folding table from the confusables of ASCII letters and digits, and NFKC."""
    table: dict[int, str] = {}
    for key in _ALNUM:
        for entry in confusables.get(key, []):
            glyph = entry["c"]
            if len(glyph) == 1 and not glyph.isascii():
                target = key.lower()
                previous = table.get(ord(glyph))
                if previous is None or (previous.isdigit() and target.isalpha()):  # l over 1, o over 0
                    table[ord(glyph)] = target
    for code in range(0x80, 0x20000):
        form = unicodedata.normalize("NFKC", chr(code))
        if len(form) == 1 and " " <= form <= "~":
            table[code] = form.lower()
    return table


def _ascii_confusables() -> dict[str, Any]:
    """The entries of the package's confusables data keyed by one ASCII letter or digit, read
    entry by entry (see the module docstring); the data is the JSON object the package loads."""
    text = resources.files(_CONFUSABLES_PACKAGE).joinpath(_CONFUSABLES_FILE).read_text(encoding="utf-8")
    return _entries_for(text, frozenset(_ALNUM))


def _entries_for(text: str, keys: frozenset[str]) -> dict[str, Any]:
    """The members of the JSON object `text` whose name is in `keys`; every other value is decoded
    and dropped at once. A repeated name keeps its last value, as `json.loads` does."""
    decoder = json.JSONDecoder()
    found: dict[str, Any] = {}
    index = _expect(text, 0, "{")
    if text.startswith("}", index):
        return found
    while True:
        name, index = decoder.raw_decode(text, index)
        if not isinstance(name, str):
            raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, index)
        index = _expect(text, index, ":")
        value, index = decoder.raw_decode(text, index)
        if name in keys:
            found[name] = value
        index = _skip_space(text, index)
        if text.startswith("}", index):
            return found
        index = _expect(text, index, ",")


def _expect(text: str, index: int, char: str) -> int:
    """The index after `char` and the whitespace around it, from `index`; a decode error if it is not there."""
    index = _skip_space(text, index)
    if not text.startswith(char, index):
        raise json.JSONDecodeError(f"Expecting {char!r}", text, index)
    return _skip_space(text, index + 1)


def _skip_space(text: str, index: int) -> int:
    space = _JSON_SPACE.match(text, index)
    return index if space is None else space.end()


def _fold_span(match: re.Match[str]) -> str:
    return match.group().translate(_table())


def fold(text: str) -> str:
    """`text` with look-alikes of ASCII letters and digits replaced by them; same length."""
    if text.isascii():
        return text
    if len(text.encode("utf-8", "surrogatepass")) < len(text) * 1.25:  # mostly ASCII: fold it all
        return _NON_ASCII_RUN.sub(_fold_span, text)
    if _COMPAT.search(text):  # fullwidth, mathematical or enclosed letters: never a script of their own
        text = _COMPAT.sub(_fold_span, text)
    spans: list[tuple[int, int]] = []
    for match in _MIXED.finditer(text):
        start = end = match.start()
        while start > 0 and text[start - 1].isalnum() and match.start() - start < 40:
            start -= 1
        while end < len(text) and text[end].isalnum() and end - match.start() < 40:
            end += 1
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
        else:
            spans.append((start, end))
    if not spans:
        return text
    table = _table()
    parts: list[str] = []
    last = 0
    for start, end in spans:
        parts.append(text[last:start])
        parts.append(text[start:end].translate(table))
        last = end
    parts.append(text[last:])
    return "".join(parts)


# --- encoded blobs ---------------------------------------------------------------------------------

Encoding = Literal["base64", "hex", "percent"]


@dataclass(frozen=True, slots=True)
class Blob:
    """An encoded run of `text[start:end]` and the text it decodes to."""

    encoding: Encoding
    start: int
    end: int
    decoded: str


_B64_ALPHABET = (string.ascii_letters + string.digits + "+/_-").encode()
_B64_TABLE = bytes(1 if c in _B64_ALPHABET else 0 for c in range(256))
_RUN_PROBE = b"\x01" * 24
_ESCAPED_HEX = re.compile(r"(?:\\x[0-9A-Fa-f]{2}){8,}")
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
_SEPARATORS = re.compile(r"[\s&=?/]+")
_HEX_DIGITS = frozenset(string.hexdigits)
_TOKEN_END = frozenset(" \t\r\n\"'<>()[]`")
_MAX_BLOBS = 16
_MAX_TRIES = 64
_MAX_DECODED = 65536
_MAX_BLOB = 4096
_PROBE = 96


def _text_like(data: bytes) -> str | None:
    """The decoded bytes as text if they read as prose: UTF-8, printable, three words or more."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text.replace("\n", "").replace("\t", "").replace("\r", "").isprintable():  # else all of it is
        printable = sum(char.isprintable() or char in "\n\t\r" for char in text)
        if printable < len(text) * 0.95:
            return None
    if len(list(islice(filter(str.isalpha, text.split()), 3))) < 3:
        return None
    return text


def _b64(run: str) -> str | None:
    body = run.rstrip("=")
    if body.isalpha() or body.isdigit() or (body.isalnum() and (body.islower() or body.isupper())):
        return None  # a long word or number, not an encoding
    if "-" in body or "_" in body:
        if "+" in body or "/" in body:
            return None
        body = body.replace("-", "+").replace("_", "/")
    if len(body) % 4 == 1:
        body = body[:-1]
    try:
        head = base64.b64decode(body[:_PROBE] + "=" * (-len(body[:_PROBE]) % 4))
        if _text_like(head[: len(head) - 3] or head) is None:
            return None
        limit = body[:_MAX_BLOB]
        return _text_like(base64.b64decode(limit + "=" * (-len(limit) % 4)))
    except (binascii.Error, ValueError):
        return None


def _hex(run: str) -> str | None:
    digits = run.replace("\\x", "")
    if digits.isdigit():
        return None
    try:
        return _text_like(bytes.fromhex(digits[: _MAX_BLOB // 2 * 2]))
    except ValueError:
        return None


def _percent(run: str) -> str | None:
    decoded = unquote_plus(run[:_MAX_BLOB])
    if decoded == run:
        return None
    return decoded if len(list(islice(filter(str.isalpha, _SEPARATORS.split(decoded)), 3))) >= 3 else None


def encoded_blobs(text: str) -> list[Blob]:
    """The encoded runs of `text` that decode to text (bounded: see the module docstring)."""
    runs: list[tuple[Encoding, int, int]] = []
    raw = text.encode() if text.isascii() else text.encode("ascii", "replace")  # one byte a character
    classes = raw.translate(_B64_TABLE)
    start = classes.find(_RUN_PROBE)
    while start != -1 and len(runs) < _MAX_TRIES:
        end = classes.find(0, start)
        end = len(classes) if end == -1 else end
        if _HEX_DIGITS.issuperset(text[start:end]):
            runs.append(("hex", start, end))
        else:
            stop = end
            while text[stop : stop + 1] == "=" and stop - end < 2:
                stop += 1
            runs.append(("base64", start, stop))
        start = classes.find(_RUN_PROBE, end)
    if "\\" in text:
        for match in finditer_at(_ESCAPED_HEX, text, "\\"):
            runs.append(("hex", match.start(), match.end()))
    percent = text.find("%")
    escape = None if percent == -1 else _PERCENT.search(text, percent)
    if escape is not None:
        runs += _percent_runs(text, escape.start())
    found: list[Blob] = []
    budget = _MAX_DECODED
    for encoding, start, end in runs[:_MAX_TRIES]:
        run = text[start:end]
        decoded = _hex(run) if encoding == "hex" else _b64(run) if encoding == "base64" else _percent(run)
        if decoded is not None:
            found.append(Blob(encoding, start, end, decoded))
            budget -= len(decoded)
            if len(found) >= _MAX_BLOBS or budget <= 0:
                break
    return found


def _percent_runs(text: str, first: int) -> list[tuple[Encoding, int, int]]:
    """Tokens (runs without spaces or quotes) with three or more percent escapes, the first
    escape at `first`."""
    runs: list[tuple[Encoding, int, int]] = []
    last_end = -1
    for match in _PERCENT.finditer(text, first):
        if match.start() < last_end:
            continue
        start, end = match.start(), match.end()
        while start > 0 and text[start - 1] not in _TOKEN_END:
            start -= 1
        while end < len(text) and text[end] not in _TOKEN_END:
            end += 1
        last_end = end
        if text.count("%", start, end) >= 3:
            runs.append(("percent", start, end))
            if len(runs) >= _MAX_TRIES:
                break
    return runs
