"""The shortcuts that keep screening cheap find what the plain way finds: a pattern tried only
where its first character is finds what `finditer` finds, connection strings anchored on `://`
are those the whole-text regular expression finds, sentences end where they did, and an index
keeps every word any detector looks for."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import cast

from hypothesis import example, given, settings
from hypothesis import strategies as st

from bastion.screen import _rules, definition, injection, links, listing, results, secrets
from bastion.screen._scan import finditer_at
from bastion.screen.index import TextIndex
from bastion.screen.secrets import MARKER_SECRET

MD_TARGET = re.compile(r"\]\(\s*<?([^)\s>]{1,2048})>?")
PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
ESCAPED_HEX = re.compile(r"(?:\\x[0-9A-Fa-f]{2}){8,}")


def spans(matches: Iterable[re.Match[str]]) -> list[tuple[tuple[int, int], tuple[str | None, ...]]]:
    return [(m.span(), m.groups()) for m in matches]


@settings(max_examples=400)
@given(st.lists(st.sampled_from(["](", "]", "(", " ", ")", ">", "<", "x", "](http://a/b?c=d)", "\n"]), max_size=60))
def test_a_pattern_tried_at_its_first_character_finds_what_finditer_finds(pieces: list[str]) -> None:
    text = "".join(pieces)  # more than enough `]` to fall back to finditer part way
    assert spans(finditer_at(MD_TARGET, text, "]")) == spans(MD_TARGET.finditer(text))


@settings(max_examples=300)
@given(st.lists(st.sampled_from(["%", "%2", "%20", "%zz", "a", "F", "\\x41", "\\", "\\x4", "x"]), max_size=60))
def test_escapes_are_found_from_their_first_character(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert spans(finditer_at(PERCENT, text, "%")) == spans(PERCENT.finditer(text))
    assert spans(finditer_at(ESCAPED_HEX, text, "\\")) == spans(ESCAPED_HEX.finditer(text))


CONNECTION = re.compile(  # the whole-text expression `secrets` looks for, as a reference
    r"\b(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver|oracle|ldaps?|s?ftp|smtps?|"
    r"https?)(?:\+[a-z0-9]+)?://[^\s:/@\"'<>]{1,64}:([^\s@/\"'<>]{3,128})@[\w.-]+"
)
NOISE = ["@", "://", "+", ":", "/", " ", "\n", "a", "b1", "é", "_", "q" * 40, "z+" * 20, "a@b.c "]
SCHEMES = ["postgres", "postgresql", "mysql", "mongodb+srv", "https", "sftp", "redis", "Mysql", "amqps+tls", "ab"]


@st.composite
def connection_texts(draw: st.DrawFn) -> str:
    parts: list[str] = []
    for _ in range(draw(st.integers(1, 8))):
        if draw(st.booleans()):
            user = draw(st.sampled_from(["app", "u", "", "a" * 70, "x:y", "u" * 64]))
            password = draw(st.sampled_from(["s3cr3tP4ss", "pw1", "a:b", "p" * 130, "p" * 128, "b1b1b1b1"]))
            host = draw(st.sampled_from(["db:5432/x", "h", "", "-.", "://"]))
            at = draw(st.sampled_from(["@", "@@", "", "/@"]))
            parts.append(draw(st.sampled_from(SCHEMES)) + "://" + user + ":" + password + at + host)
        else:
            parts.append(draw(st.sampled_from(NOISE)))
    return "".join(parts)


@settings(max_examples=500)
@given(connection_texts())
@example("postgres://" + "u" * 64 + ":" + "p1" * 64 + "@db")  # the `@` as far from `://` as a match allows
@example("x+" * 40 + "mysql+" + "a" * 50 + "://u:pw1@h")  # a long run of scheme characters before `://`
@example("a@b " * 20 + "redis://u:pw1@h")  # many `@` before the match
def test_connection_strings_anchored_on_the_scheme_are_those_the_whole_text_search_finds(text: str) -> None:
    found = secrets.secrets(TextIndex(text), "w")
    redacted = [(start, end) for finding, (start, end, _) in found if finding.rule == "secret.connection_string"]
    assert all(marker == MARKER_SECRET for _, (_, _, marker) in found)
    assert redacted == [m.span(1) for m in CONNECTION.finditer(text)]


def reference_sentence(low: str, start: int, end: int) -> tuple[int, int]:
    """The sentence around `[start, end)` as it was first written: one search per ender."""

    def ends(i: int) -> bool:
        char, nxt = low[i], low[i + 1 : i + 2]
        if char == "\n" or not nxt:
            return True
        if char in ";:":
            return nxt.isspace()
        return not (nxt.isalnum() or nxt in "/\\_-.")

    lo, hi = max(0, start - 400), min(len(low), end + 400)
    first = start
    while (i := max(low.rfind(char, lo, first) for char in ".!?;:\n")) != -1 and not ends(i):
        first = i
    first = lo if i == -1 else i + 1
    while first < start and low[first].isspace():
        first += 1
    last = end
    while (i := min((j for j in (low.find(char, last, hi) for char in ".!?;:\n") if j != -1), default=-1)) != -1:
        if ends(i):
            return first, i + 1
        last = i + 1
    return first, hi


@settings(max_examples=400)
@given(
    st.lists(
        st.sampled_from([".", "!", "?", ";", ":", "\n", " ", "a", "/", "1", "x" * 60, " " * 30, ". ", "é"]), min_size=1
    ),
    st.data(),
)
def test_sentences_end_where_they_did(pieces: list[str], data: st.DataObject) -> None:
    index = TextIndex("".join(pieces))
    start = data.draw(st.integers(0, len(index.text) - 1))
    end = data.draw(st.integers(start, len(index.text)))
    assert index.sentence(start, end) == reference_sentence(index.low, start, end)


def detector_words(value: object, seen: set[int]) -> set[bytes]:
    """Every lower-case word in a detector's constants: sets, tuples, dicts and rule records."""
    if id(value) in seen:
        return set()
    seen.add(id(value))
    if isinstance(value, bytes):
        return {value} if re.fullmatch(rb"[a-z]+", value) else set()
    items: Iterable[object] = ()
    if isinstance(value, frozenset | set | tuple | list):
        items = cast("Iterable[object]", value)
    elif isinstance(value, Mapping):
        items = (item for pair in cast("Mapping[object, object]", value).items() for item in pair)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        items = (getattr(value, f.name) for f in dataclasses.fields(value))
    found: set[bytes] = set()
    for item in items:
        found |= detector_words(item, seen)
    return found


def test_an_index_keeps_every_word_a_detector_looks_for() -> None:
    modules: list[ModuleType] = [_rules, injection, links, secrets, listing, definition, results]
    wanted: set[bytes] = set()
    for module in modules:
        for value in vars(module).values():
            if not isinstance(value, ModuleType | type) and not callable(value):
                wanted |= detector_words(value, set())
    assert {b"ignore", b"img", b"postgres", b"password", b"ssh", b"conversation"} <= wanted
    index = TextIndex(" ".join(sorted(word.decode() for word in wanted)))
    assert wanted - index.words == set()


def test_an_index_keeps_only_the_words_detectors_look_for() -> None:
    index = TextIndex("Please IGNORE the quarterly figures; see ~/.ssh and https://x.example")
    assert {b"ignore", b"ssh", b"https"} <= index.words
    assert b"quarterly" not in index.words
    assert b"figures" not in index.words
