"""A text indexed once for the detectors: folded lower case, words, sentences and context."""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable
from typing import ClassVar

from bastion.screen._chars import SUSPECT
from bastion.screen._scan import finditer_at
from bastion.screen.invisible import has_bare_cr
from bastion.screen.normalize import fold

__all__ = ["TextIndex", "vocabulary"]

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


class _Vocabulary:
    """Every word a detector looks for in `TextIndex.words` (`vocabulary` adds to it)."""

    words: ClassVar[frozenset[bytes]] = frozenset()


def vocabulary(words: Iterable[bytes]) -> frozenset[bytes]:
    """A set of words a detector looks for in `TextIndex.words`, registered: an index keeps
    only the registered words of its text (most of a text's words are nobody's business, and
    the set of all of them cost more than everything else an index holds), so every set of
    words the detectors test an index's words against is made here."""
    found = frozenset(words)
    _Vocabulary.words |= found
    return found


_ENDER = re.compile("[.!?;:\n]")  # a sentence ends at a newline, or at one of the others before whitespace
_SENTENCE_REACH = 400


def _lower(text: str) -> str:
    """Lower case, look-alikes folded (`normalize.fold`), same length as `text`; for text that is
    not ASCII (an ASCII text's is `text.lower()`)."""
    text = fold(text)
    low = text.lower()
    if len(low) != len(text):
        low = "".join(char if len(char.lower()) != 1 else char.lower() for char in text)
    return low.replace("\u2019", "'") if "\u2019" in low else low


class TextIndex:
    """A text with what every detector needs, computed once: its lower-case form with
    look-alikes folded (same length, so positions agree), the set of its words that the
    detectors look for (lower-case bytes of the folded form, split at anything but an ASCII
    letter; only those registered with `vocabulary`) for cheap gating, whether it holds
    anything `strip_invisible` removes, and the names of the parameters a definition's text
    may ask data to be put in."""

    __slots__ = ("_fences", "_found", "destinations", "low", "suspect", "text", "words")

    def __init__(self, text: str, destinations: frozenset[str] = frozenset()) -> None:
        self.text = text
        self.destinations = destinations  # names that data may be sent to: a tool's own arguments
        if text.isascii():
            self.low = text.lower()
            words = text.encode().translate(_WORD_TABLE)
            self.suspect = 0 in words or ("\r" in text and has_bare_cr(text))
        else:
            self.low = _lower(text)
            words = self.low.encode("utf-8", "surrogatepass").translate(_WORD_TABLE)
            self.suspect = SUSPECT.search(text) is not None or ("\r" in text and has_bare_cr(text))
        self.words = _Vocabulary.words.intersection(words.split())
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
        first = lo
        for ender in reversed([m.start() for m in _ENDER.finditer(low, lo, start)]):
            if _ends(low, ender):
                first = ender + 1
                break
        while first < start and low[first].isspace():
            first += 1
        last = end
        while (found := _ENDER.search(low, last, hi)) is not None:
            i = found.start()
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


_FENCES = ((re.compile("```"), "`"), (re.compile("~~~"), "~"))


def _fences(text: str) -> list[int]:
    """Where fenced code blocks open and close: ``` or ~~~ at the start of a line. After a
    fence, the rest of its line is passed over."""
    found: list[int] = []
    for fence, char in _FENCES:
        line_end = 0
        for match in finditer_at(fence, text, char):
            i = match.start()
            if i < line_end:
                continue
            if not text[text.rfind("\n", 0, i) + 1 : i].strip(" \t"):
                found.append(i)
            line_end = text.find("\n", i)
            if line_end == -1:
                break
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
