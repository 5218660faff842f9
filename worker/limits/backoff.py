"""How long to wait before the next attempt: a pure function, tested with a fixed rng."""

from __future__ import annotations

import random


def compute_backoff(
    attempt: int,
    *,
    base_s: float,
    cap_s: float,
    rng: random.Random,
    retry_after_s: float | None = None,
) -> float:
    """Seconds to sleep after failed attempt number ``attempt`` (1 = the first call).

    ``Retry-After`` wins when the server sent one (capped, so a hostile header cannot park a
    worker); otherwise full jitter, ``random(0, min(cap, base * 2**attempt))``, which spreads
    the retries of many workers instead of synchronising them.
    See https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/
    """
    if retry_after_s is not None:
        return min(max(retry_after_s, 0.0), cap_s)
    return rng.uniform(0.0, min(cap_s, base_s * 2.0 ** min(attempt, 32)))
