"""The corpora in `tests/screen/corpus/` (written by `generate.py`): on the held-out families,
which the detectors were not tuned on, screening finds most attacks and flags at most 1% of
benign texts. The figures and how they were reached are in bench/README.md."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from bench.screen_corpus import flagged, listing_findings, load, result_findings

from bastion.screen.findings import Finding

SCREENS: dict[str, Callable[[dict[str, Any]], tuple[Finding, ...]]] = {
    "results": result_findings,
    "listings": listing_findings,
}
# (corpus, split): least share of attacks with a HIGH finding. Holdout figures measured were
# 85.7% (results, 140 attacks) and 81.4% (listings); the thresholds leave a few items of margin.
DETECTION = {
    ("results", "tune"): 0.97,
    ("results", "holdout"): 0.83,
    ("listings", "tune"): 0.97,
    ("listings", "holdout"): 0.78,
}


def rate(name: str, split: str, label: str) -> float:
    items = [item for item in load(name) if item["split"] == split and item["label"] == label]
    return sum(flagged(SCREENS[name](item)) for item in items) / len(items)


@pytest.mark.parametrize("name", ["results", "listings"])
def test_each_corpus_has_200_attacks_and_200_benign_texts_split_by_family(name: str) -> None:
    items = load(name)
    for label in ("attack", "benign"):
        assert sum(item["label"] == label for item in items) >= 200
    splits: dict[str, set[str]] = {}
    for item in items:
        splits.setdefault(f"{item['label']}/{item['family']}", set()).add(item["split"])
    assert all(len(found) == 1 for found in splits.values()), "a family sits in one split only"
    assert {item["split"] for item in items} == {"tune", "holdout"}


@pytest.mark.parametrize(("name", "split"), list(DETECTION))
def test_attacks_are_detected_and_benign_texts_pass(name: str, split: str) -> None:
    assert rate(name, split, "attack") >= DETECTION[name, split]
    assert rate(name, split, "benign") <= 0.01
