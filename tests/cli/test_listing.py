"""`Listing`: at any width, a key column's first line is printed whole and nothing is ellipsised."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.console import Console

from bastion.cli._listing import TEXT_FLOOR, Listing

KEY_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789:=,._-/"
keys = st.text(KEY_CHARS, min_size=1, max_size=60)
words = st.text("abcdefghij'()", min_size=1, max_size=14)
texts = st.lists(words, min_size=1, max_size=12).map(" ".join)


def render(listing: Listing, width: int) -> list[str]:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None, force_terminal=False).print(listing)
    return out.getvalue().splitlines()


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.tuples(keys, texts, keys, texts), min_size=1, max_size=5),
    width=st.integers(min_value=40, max_value=160),
)
def test_keys_stay_whole_and_every_line_fits(rows: list[tuple[str, str, str, str]], width: int) -> None:
    listing = Listing("key\nsummary", "state", "id", "note", keys=("key\nsummary", "id"))
    for key, summary, ident, note in rows:
        listing.add(f"{key}\n{summary}", "open", ident, note)
    lines = render(listing, width)
    assert all(cell_len(line) <= width for line in lines)
    assert not any("…" in line for line in lines)
    room = width - len("key / summary") - 2  # the value column of the blocks a listing falls back to
    for key, _, ident, _ in rows:
        for value in (key, ident):
            if len(value) <= room:
                assert any(value in line for line in lines), value


def test_a_table_gives_free_text_no_less_than_its_floor_and_keys_their_full_width() -> None:
    listing = Listing("id", "why", keys=("id",))
    listing.add("apr_0123456789abcdef", "a reason long enough to need wrapping at eighty columns, and then some more")
    widths = listing.widths(40)
    assert widths is not None
    assert widths == [len("apr_0123456789abcdef"), 40 - 7 - 20]
    assert widths[1] >= TEXT_FLOOR


def test_keys_that_cannot_stand_side_by_side_turn_the_table_into_blocks() -> None:
    listing = Listing("client", "servers", keys=("client",))
    listing.add("c" * 70, "filesystem, github")
    assert listing.widths(80) is None
    lines = render(listing, 80)
    assert any("c" * 70 in line for line in lines)
    assert not any(line.startswith(("┏", "│")) for line in lines)
