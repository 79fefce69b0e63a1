"""Salts and nonces: fresh bytes of the size asked for, never handed out twice."""

from __future__ import annotations

import pytest

from bastion.audit.randomness import random_bytes


@pytest.mark.parametrize("count", [0, 1, 12, 16, 4096, 10_000])
def test_a_draw_has_exactly_the_size_asked_for(count: int) -> None:
    assert len(random_bytes(count)) == count


def test_draws_do_not_repeat() -> None:
    drawn = [random_bytes(16) for _ in range(1000)]
    assert len(set(drawn)) == len(drawn)


def test_a_draw_larger_than_a_page_is_served_whole() -> None:
    big = random_bytes(5000)
    assert len(big) == 5000
    assert big != bytes(5000)
