"""`finditer_at` finds exactly what `finditer` finds, trying the pattern only where its first character is."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from bastion.screen._scan import finditer_at

LINK = re.compile(r"\]\([a-z]+\)")


def test_matches_are_those_of_finditer_in_order() -> None:
    text = "see [a](one) and [b](two), not ](X) or ]("
    assert [m.group() for m in finditer_at(LINK, text, "]")] == ["](one)", "](two)"]


def test_a_text_without_the_first_character_has_no_match() -> None:
    assert list(finditer_at(LINK, "no brackets here (at all)", "]")) == []


def test_after_many_misses_the_rest_of_the_text_is_still_searched() -> None:
    text = "]" * 40 + "](x) then ](yz)"
    assert [m.span() for m in finditer_at(LINK, text, "]")] == [m.span() for m in LINK.finditer(text)]
    assert [m.group() for m in finditer_at(LINK, text, "]")] == ["](x)", "](yz)"]


@given(st.text(alphabet="]()ab ", max_size=80))
def test_agrees_with_finditer_on_any_text(text: str) -> None:
    assert [m.span() for m in finditer_at(LINK, text, "]")] == [m.span() for m in LINK.finditer(text)]
