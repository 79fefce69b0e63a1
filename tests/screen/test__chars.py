"""The character classes: what the screeners treat as suspect, as soft, and as a variation selector."""

from __future__ import annotations

import pytest

from bastion.screen._chars import SOFT, SUSPECT, is_vs


@pytest.mark.parametrize(
    "char",
    ["\x00", "\x1b", "\x9b", "\u202e", "\u2066", "\u200b", "\ufeff", "\u00ad", "\U000e0041", "\u200d", "\ufe0f"],
)
def test_every_invisible_or_control_character_is_suspect(char: str) -> None:
    assert SUSPECT.search(f"a{char}b") is not None


@pytest.mark.parametrize("text", ["plain words", "tab\tand\nnewline", "é ñ ü 日本語", "emoji 😀"])
def test_ordinary_text_tabs_and_newlines_are_not_suspect(text: str) -> None:
    assert SUSPECT.search(text) is None


def test_soft_characters_are_joiners_marks_and_selectors_but_not_zero_width_spaces() -> None:
    assert [bool(SOFT.match(c)) for c in ("\u200d", "\u200c", "\u200e", "\ufe0f", "\u200b", "\u202e")] == [
        True,
        True,
        True,
        True,
        False,
        False,
    ]


def test_is_vs_accepts_both_selector_blocks_and_nothing_next_to_them() -> None:
    assert [is_vs(c) for c in ("\ufe00", "\ufe0f", "\U000e0100", "\U000e01ef")] == [True] * 4
    assert [is_vs(c) for c in ("\ufdff", "\ufe10", "\U000e01f0", "a")] == [False] * 4
