"""Backoff is full jitter under a cap, and Retry-After wins when sent."""

from __future__ import annotations

import random

from worker.limits.backoff import compute_backoff


def test_full_jitter_stays_under_base_times_two_to_the_attempt() -> None:
    rng = random.Random(1)
    for attempt in range(1, 6):
        delays = [compute_backoff(attempt, base_s=0.5, cap_s=100, rng=rng) for _ in range(500)]
        assert all(0 <= d <= 0.5 * 2**attempt for d in delays)
        assert max(delays) > 0.9 * 0.5 * 2**attempt  # the whole range is used


def test_the_cap_bounds_late_attempts() -> None:
    rng = random.Random(2)
    assert all(compute_backoff(40, base_s=1, cap_s=30, rng=rng) <= 30 for _ in range(100))


def test_retry_after_is_honoured_and_capped() -> None:
    rng = random.Random(3)
    assert compute_backoff(1, base_s=1, cap_s=30, rng=rng, retry_after_s=4) == 4
    assert compute_backoff(1, base_s=1, cap_s=30, rng=rng, retry_after_s=3600) == 30
    assert compute_backoff(1, base_s=1, cap_s=30, rng=rng, retry_after_s=-1) == 0
