"""The tunables of the shared rate limiter (worker/limits/limiter.py) and how its scripts
(worker/limits/reserve.py, worker/limits/throttle.py) take them. Why each value:
docs/decisions.md, Limits.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.limits.reserve import ReserveArgs
from worker.limits.slots import Permit
from worker.limits.throttle import ThrottledArgs
from worker.model import CloudLimit

MEMORY_TTL_S = 30 * 24 * 3600


@dataclass(frozen=True)
class RateTuning:
    """How the shared schedule starts, cuts, recovers and hands out slots."""

    recovery_per_s: float = 0.02
    fast_recovery_per_s: float = 0.25
    cut_factor: float = 0.5
    deep_cut_factor: float = 0.25
    cut_cooldown_s: float = 1.0
    settle_share: float = 0.95
    learnt_share: float = 0.95
    min_rate_per_s: float = 0.2
    start_rate_per_s: float = 80.0
    # Doubling every fifth of a second (16, every quarter, until #24): docs/decisions.md.
    ramp_per_s: float = 32.0
    # From 100/s on, doubling every fifteenth of a second: a limit that low is met in the gentle
    # part (the gentle-start bound is at 40/s), and the ramp to an unlimited endpoint's pace
    # (1,500 calls/s for one process) took 1.1 s of a 2 s small job (docs/decisions.md).
    steep_above_per_s: float = 100.0
    steep_ramp_per_s: float = 32768.0
    spent_after_s: float = 1.0
    probe_unknown_s: float = 1.0
    block_span_s: float = 0.025
    max_block: int = 16
    # No slot is booked further ahead than this. Callers that find the schedule booked that far
    # wait and ask again; booking ahead at the rate of the moment stalled every change of rate
    # (the ramp, a recovery) behind the slots already booked by the callers waiting.
    horizon_s: float = 0.1
    # A caller's turn took 40-165 ms at unlimited rate: at 25 ms most of a block expired
    # unused (5.6 sends a reservation, against 13 at 0.25 s; docs/decisions.md).
    slot_expiry_s: float = 0.25

    def reserve_args(
        self, now: str, ceiling_per_s: float, accepted: int, *, remembered_per_s: float = 0.0
    ) -> list[str | float]:
        """ARGV of ``RESERVE``: ``now`` ('' for Redis time), the job's ceiling, the calls
        accepted since this process's last reservation, and the schedule's best 429-free rate
        remembered."""
        return ReserveArgs(
            now=now,
            ceiling_per_s=ceiling_per_s,
            recovery_per_s=self.recovery_per_s,
            min_rate_per_s=self.min_rate_per_s,
            accepted=accepted,
            fast_recovery_per_s=self.fast_recovery_per_s,
            start_rate_per_s=self.start_rate_per_s,
            ramp_per_s=self.ramp_per_s,
            steep_above_per_s=self.steep_above_per_s,
            steep_ramp_per_s=self.steep_ramp_per_s,
            learnt_share=self.learnt_share,
            probe_unknown_ms=int(self.probe_unknown_s * 1000),
            block_span_ms=self.block_span_s * 1000,
            max_block=self.max_block,
            horizon_ms=self.horizon_s * 1000,
            remembered_per_s=remembered_per_s,
        ).argv()

    def throttled_args(
        self, now: str, permit: Permit | None, limit: CloudLimit | None
    ) -> list[str | float]:
        """ARGV of ``THROTTLED`` for a 429 to a call sent on ``permit`` whose message named
        ``limit``."""
        return ThrottledArgs(
            now=now,
            cut_factor=self.cut_factor,
            min_rate_per_s=self.min_rate_per_s,
            cut_cooldown_ms=int(self.cut_cooldown_s * 1000),
            settle_share=self.settle_share,
            deep_cut_factor=self.deep_cut_factor,
            sent_ms=permit.slot_ms if permit else 0,
            limit_count=limit.count if limit else 0,
            window_ms=round(limit.window_s * 1000) if limit else 0,
            learnt_share=self.learnt_share,
            spent_after_ms=int(self.spent_after_s * 1000),
            probe_unknown_ms=int(self.probe_unknown_s * 1000),
            memory_ttl_s=MEMORY_TTL_S,
        ).argv()
