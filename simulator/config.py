"""What a simulator instance is told: identities, limits, faults and the images it holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from simulator.limits import RateLimit

# The account (domain) id the simulator accepts in X-Domain-Id unless told another: a demo
# value, like the tests' demo AK.
DEMO_DOMAIN_ID = "d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0"


@dataclass(frozen=True)
class SimUser:
    """An IAM user the simulator issues tokens to."""

    name: str
    password: str = field(repr=False)
    domain: str


@dataclass(frozen=True)
class TmsConfig:
    """TMS on the simulator's port: the account id AK/SK calls must send in X-Domain-Id, the
    resource type its providers answer names for IMS images (or no IMS at all), its per-call
    resource limit, its own rate limit and how it throttles (403 TMS.0006 or the gateway's
    429)."""

    domain_id: str = DEMO_DOMAIN_ID
    resource_type: str = "private_image"
    lists_ims: bool = True
    max_resources: int = 20
    rate_limit: RateLimit | None = None
    throttle_status: Literal[403, 429] = 403


@dataclass(frozen=True)
class GatewayConfig:
    """How the simulated gateway departs from a well-kept one, for preflight tests: a clock
    ``clock_skew_s`` off (its ``Date`` header and its check of a signature's time), and
    whether it refuses a project the credentials do not hold (``check_project``)."""

    clock_skew_s: float = 0.0
    check_project: bool = False


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
    tms: TmsConfig = field(default_factory=TmsConfig)
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
