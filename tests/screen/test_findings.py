"""Findings: severities rank and rise, excerpts are short and escaped, spans are replaced first-come."""

from __future__ import annotations

from bastion.screen.findings import Finding, Severity, at_least, escape, excerpt, raised, replace_spans

LOW = Finding("invisible.control", Severity.LOW, "result[0].text", "x")


def test_severities_rank_low_medium_high() -> None:
    assert [s.rank for s in (Severity.LOW, Severity.MEDIUM, Severity.HIGH)] == [1, 2, 3]


def test_raising_a_finding_moves_it_one_level_up_and_stops_at_high() -> None:
    assert raised(LOW) == Finding("invisible.control", Severity.MEDIUM, "result[0].text", "x")
    assert raised(raised(raised(LOW))).severity is Severity.HIGH


def test_at_least_lifts_to_the_floor_but_never_lowers() -> None:
    assert at_least(LOW, Severity.HIGH).severity is Severity.HIGH
    high = raised(raised(LOW))
    assert at_least(high, Severity.LOW) is high


def test_escape_writes_controls_and_invisible_characters_as_escapes() -> None:
    assert escape("a\x1bb\tc\n") == "a\\x1bb\\tc\\n"
    assert escape("zero\u200bwidth") == "zero\\u200bwidth"
    assert escape("tag\U000e0041") == "tag\\U000e0041"
    assert escape("café ☕") == "café ☕"


def test_an_excerpt_is_a_window_marked_with_ellipses_where_text_was_cut() -> None:
    text = "a" * 30 + "HIT" + "b" * 100
    shown = excerpt(text, 30, 33)
    assert shown == "…" + "a" * 24 + "HIT" + "b" * 40 + "…"
    assert excerpt("short", 0, 5) == "short"


def test_of_overlapping_spans_the_one_that_starts_first_wins() -> None:
    assert replace_spans("abcdefgh", [(4, 6, "Y"), (1, 3, "X"), (2, 5, "Z")]) == "aXdYgh"
    assert replace_spans("unchanged", []) == "unchanged"
