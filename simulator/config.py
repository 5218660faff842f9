"""What a simulator instance is told: identities, limits, faults and the images it holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from simulator.limits import RateLimit


@dataclass(frozen=True)
class SimUser:
    """An IAM user the simulator issues tokens to."""

    name: str
    password: str = field(repr=False)
    domain: str


@dataclass(frozen=True)
class SimulatorConfig:
    """Everything that shapes the simulator's behaviour; faults are shares of calls (0..1)."""

    project_id: str = "0123456789abcdef0123456789abcdef"
    aksk: dict[str, str] = field(default_factory=dict, repr=False)
    users: tuple[SimUser, ...] = ()
    rate_limit: RateLimit | None = None
    # "gateway": 429 bodies name the limit as the real gateway does; "plain": they do not.
    rate_limit_message: Literal["gateway", "plain"] = "gateway"
    # Whose allowance a call draws on: "user" per identity (AK or token user), "ip" per client
    # source address. The real gateway names the scope in its 429 ("policy user ...").
    rate_limit_policy: Literal["user", "ip"] = "user"
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    fail_rates: dict[int, float] = field(default_factory=dict)
    drop_rate: float = 0.0
    token_ttl_s: float = 24 * 3600.0
    lockout_after: int = 5
    lockout_s: float = 300.0
    max_tags_per_image: int | None = None
    seed: int | None = None
