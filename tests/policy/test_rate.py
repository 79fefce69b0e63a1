"""Rate limits as token buckets: a full bucket, spent one call at a time, refilling with time."""

from __future__ import annotations

from bastion.policy.rate import RateLimiter

PER_MINUTE = (60, 60.0)
"""60/minute: 60 tokens, one back each second."""


def test_a_new_bucket_is_full_and_empties_after_its_count() -> None:
    limiter = RateLimiter()
    assert all(limiter.take(("c", "s", "t"), (3, 60.0), 0.0) for _ in range(3))
    assert not limiter.take(("c", "s", "t"), (3, 60.0), 0.0)


def test_an_empty_bucket_refills_at_count_per_period() -> None:
    limiter = RateLimiter()
    for _ in range(60):
        assert limiter.take(("k",), PER_MINUTE, 100.0)
    assert not limiter.take(("k",), PER_MINUTE, 100.5)
    assert limiter.take(("k",), PER_MINUTE, 101.0)
    assert not limiter.take(("k",), PER_MINUTE, 101.0)


def test_a_bucket_never_holds_more_than_its_count_after_a_long_rest() -> None:
    limiter = RateLimiter()
    assert limiter.take(("k",), (2, 1.0), 0.0)
    taken = [limiter.take(("k",), (2, 1.0), 1_000_000.0) for _ in range(3)]
    assert taken == [True, True, False]


def test_each_key_has_its_own_bucket() -> None:
    limiter = RateLimiter()
    assert limiter.take(("alice", "fs"), (1, 60.0), 0.0)
    assert not limiter.take(("alice", "fs"), (1, 60.0), 0.0)
    assert limiter.take(("bob", "fs"), (1, 60.0), 0.0)


def test_a_changed_limit_refills_at_the_new_rate_from_the_moment_it_is_applied() -> None:
    limiter = RateLimiter()
    assert limiter.take(("k",), (1, 60.0), 0.0)
    # Raised to 60/second at t=2: the two seconds before still refilled at the old rate.
    assert not limiter.take(("k",), (60, 1.0), 2.0)
    assert limiter.take(("k",), (60, 1.0), 3.0)


def test_a_zero_limit_refuses_every_call() -> None:
    limiter = RateLimiter()
    assert not limiter.take(("k",), (0, 60.0), 0.0)
    assert not limiter.take(("k",), (0, 60.0), 3600.0)
