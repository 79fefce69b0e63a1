"""Regular expressions tried only where a match can start: at the character every match opens with.

`re` looks for a match by stepping through the text, some 7 instructions a character even when
the pattern opens with a literal: about 30,000 for a 4 KiB text, for each pattern. Many of the
screeners' patterns open with a character that is rare in ordinary text (`]`, `!`, `<`, `[`,
`\\`, a backtick), and `str.find` looks for one character with `memchr`, many times faster. So
the pattern is tried only where that character is; after `_TRIES` places where it does not
match, the rest of the text is left to `finditer`, so a text full of that character costs
about what it did.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

__all__ = ["finditer_at"]

_TRIES = 16


def finditer_at(pattern: re.Pattern[str], text: str, first: str) -> Iterator[re.Match[str]]:
    """The matches of `pattern.finditer(text)`, for a pattern whose every match opens with the
    character `first`, never matches empty and looks at nothing before where it starts (no
    lookbehind, no `\\b` or `^` first)."""
    pos = 0
    misses = 0
    while (i := text.find(first, pos)) != -1:
        match = pattern.match(text, i)
        if match is not None:
            yield match
            pos = match.end()
            continue
        misses += 1
        if misses >= _TRIES:
            yield from pattern.finditer(text, i + 1)
            return
        pos = i + 1
