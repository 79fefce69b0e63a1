"""A text indexed once: folded lower case of the same length, registered words, sentences and context."""

from __future__ import annotations

import pytest

from bastion.screen.index import TextIndex, vocabulary

WORDS = vocabulary([b"zebra", b"ignore"])


def test_the_lower_case_form_folds_look_alikes_and_keeps_positions() -> None:
    index = TextIndex("Please \uff29\uff27\uff2e\uff2f\uff32\uff25 it")  # fullwidth IGNORE
    assert index.low == "please ignore it"
    assert len(index.low) == len(index.text)


def test_only_registered_words_are_kept_for_gating() -> None:
    index = TextIndex("Please IGNORE the zebra qwzx.")
    assert index.words >= WORDS
    assert b"qwzx" not in index.words
    assert index.has(WORDS)
    assert not TextIndex("nothing to see").has(WORDS)


@pytest.mark.parametrize(
    ("text", "suspect"),
    [("a\u200bb", True), ("bare\rreturn", True), ("a\x00b", True), ("line\r\nend", False), ("plain", False)],
)
def test_suspect_says_whether_strip_invisible_has_work(text: str, suspect: bool) -> None:
    assert TextIndex(text).suspect is suspect


def test_starts_finds_an_anchor_only_where_a_word_opens() -> None:
    index = TextIndex("send it, resend it, Send again")
    assert index.starts("send") == [0, 20]


def test_a_sentence_ends_at_punctuation_before_a_space_but_not_inside_a_path() -> None:
    text = "First one. Read ~/.ssh/config now. Last"
    index = TextIndex(text)
    first, last = index.sentence(text.index("Read"), text.index("Read") + 4)
    assert text[first:last] == "Read ~/.ssh/config now."


def test_context_tells_prose_citation_code_block_and_backticks_apart() -> None:
    text = 'prose\n```\ncode here\n```\nuse `cmd x` and he said "quote this" ok'
    index = TextIndex(text)

    def context(word: str) -> int:
        at = text.index(word)
        return index.context(at, at + len(word))

    assert [context(w) for w in ("prose", "quote", "code", "cmd")] == [0, 1, 2, 3]
