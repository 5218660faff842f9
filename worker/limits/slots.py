"""What one process holds of a shared rate schedule (worker/limits/limiter.py): the slots of its
last block not yet handed out, and the time before which asking Redis for more is known to be
refused (the schedule is booked to the horizon).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Permit:
    """A send slot: the effective rate it was granted at and its time (Redis ms)."""

    rate_per_s: float
    slot_ms: float


@dataclass(frozen=True)
class Slot:
    """A reserved slot held in this process: its permit and when it falls due here (ms of
    this process's clock)."""

    permit: Permit
    due_ms: float


class HeldSlots:
    """The slots of this process's blocks not yet handed out, per ceiling asked for (jobs of
    different ``--rate`` in one process each take their own). A slot more than ``expiry_ms``
    past its time is dropped, not sent.

    It also keeps when asking for more is worth it: not while the schedule is booked to
    ``horizon_ms`` ahead, so that the process's waiting callers cost one script call per block,
    not one per caller. It asks half a horizon later than the edge: asked at the very edge,
    Redis's clock, a round trip away, refused often by a fraction of a millisecond.
    """

    def __init__(self, clock_ms: Callable[[], float], expiry_ms: float, horizon_ms: float) -> None:
        self._clock_ms = clock_ms
        self._expiry_ms = expiry_ms
        self._horizon_ms = horizon_ms
        self._held: dict[float, deque[Slot]] = {}
        self._ask_at_ms = 0.0  # this process's clock

    def take(self, ceiling_per_s: float) -> Slot | None:
        held = self._held.get(ceiling_per_s)
        oldest_ms = self._clock_ms() - self._expiry_ms
        while held:
            slot = held.popleft()
            if slot.due_ms >= oldest_ms:
                return slot
        return None

    def keep(self, ceiling_per_s: float, slots: list[Slot], *, booked: bool = True) -> None:
        """Hold a new block (but its first slot, handed out now); ``booked``: the schedule is
        booked at least to the block's end (not so for a probe slot while holding)."""
        self._held[ceiling_per_s] = deque(slots[1:])
        if booked:
            end_ms = slots[-1].due_ms + 1000 / slots[-1].permit.rate_per_s
            self._ask_at_ms = end_ms - self._horizon_ms / 2

    def booked(self, wait_ms: float) -> float:
        """Redis refused a slot (booked to the horizon; ask in ``wait_ms``): ms to wait."""
        self._ask_at_ms = self._clock_ms() + wait_ms + self._horizon_ms / 2
        return wait_ms + self._horizon_ms / 2

    def ask_in_ms(self) -> float:
        """Ms before asking Redis for a slot is worth it (0 or less: now)."""
        return self._ask_at_ms - self._clock_ms()

    def clear(self) -> None:
        """The schedule changed (a cut, a limit, a hold): drop the slots, ask again now."""
        self._held.clear()
        self._ask_at_ms = 0.0


def block(rate_per_s: float, count: int, first_ms: float, due_ms: float) -> list[Slot]:
    """``count`` slots 1/rate apart from ``first_ms`` (Redis), due from ``due_ms`` (here)."""
    interval_ms = 1000 / rate_per_s
    return [
        Slot(Permit(rate_per_s, first_ms + i * interval_ms), due_ms + i * interval_ms)
        for i in range(count)
    ]
