"""``tagsweep simulator``: the IMS + TMS + IAM simulator served over HTTP, from the command line.

Registered on the ``tagsweep`` group by ``producer.cli``; it imports nothing of the producer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import click

from simulator.config import GatewayConfig, SimulatorConfig, SimUser, TmsConfig
from simulator.option_groups import (
    DEFAULTS,
    gateway_options,
    identity_options,
    parse_rate_limit,
    tms_options,
)


def _parse_fail_rates(values: tuple[str, ...]) -> dict[int, float]:
    rates: dict[int, float] = {}
    for item in values:
        status, sep, share = item.partition("=")
        try:
            if not sep:
                raise ValueError
            rates[int(status)] = float(share)
        except ValueError:
            raise click.BadParameter(
                f"{item!r} is not STATUS=FRACTION", param_hint="--fail-rate"
            ) from None
        if not 0.0 <= rates[int(status)] <= 1.0:
            raise click.BadParameter(
                f"{item!r}: the fraction must be in 0..1", param_hint="--fail-rate"
            )
    if sum(rates.values()) > 1.0:
        raise click.BadParameter("the fractions add up to more than 1", param_hint="--fail-rate")
    return rates


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8470,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="0 picks a free port.",
)
@click.option(
    "--seed",
    "seed_csv",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    multiple=True,
    help="CSV (image_id,key,value[,project_id]) of the images that exist; repeatable.",
)
@click.option(
    "--project-id",
    default=DEFAULTS.project_id,
    show_default=True,
    help="Project of seed rows without a project_id.",
)
@identity_options
@click.option(
    "--rate-limit",
    metavar="COUNT[/WINDOW]",
    help="Calls per identity before 429 APIGW.0308: COUNT a second (a token bucket), or COUNT "
    "per fixed WINDOW such as 30s, 1min, 5min [default: no limit].",
)
@click.option(
    "--rate-limit-message",
    type=click.Choice(["gateway", "plain"]),
    default=DEFAULTS.rate_limit_message,
    show_default=True,
    help="gateway: the 429 message names the limit (limit:COUNT,time:N unit); plain: it does not.",
)
@click.option(
    "--rate-limit-policy",
    type=click.Choice(["user", "ip"]),
    default=DEFAULTS.rate_limit_policy,
    show_default=True,
    help="Whose allowance --rate-limit counts: user (per AK or token user) or ip (per client "
    "source address); the 429 message names it (policy user|ip over ratelimit,...).",
)
@click.option(
    "--latency-ms",
    type=click.FloatRange(min=0),
    default=DEFAULTS.latency_ms,
    show_default=True,
    help="Added to every answer.",
)
@click.option(
    "--latency-jitter-ms",
    type=click.FloatRange(min=0),
    default=DEFAULTS.latency_jitter_ms,
    show_default=True,
    help="Latency varies by up to this much either way.",
)
@click.option(
    "--fail-rate",
    multiple=True,
    metavar="STATUS=FRACTION",
    help="Share of calls answered with STATUS, e.g. 503=0.2; repeatable.",
)
@click.option(
    "--drop-rate",
    type=click.FloatRange(0, 1),
    default=DEFAULTS.drop_rate,
    show_default=True,
    help="Share of calls whose connection is dropped without an answer.",
)
@click.option(
    "--token-ttl",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULTS.token_ttl_s,
    show_default=True,
    help="Token life, s.",
)
@click.option("--random-seed", type=int, help="Seed for the fault and latency dice.")
@tms_options
@gateway_options
def simulator(
    host: str,
    port: int,
    seed_csv: tuple[Path, ...],
    project_id: str,
    aksk: dict[str, str],
    users: tuple[SimUser, ...],
    rate_limit: str | None,
    rate_limit_message: Literal["gateway", "plain"],
    rate_limit_policy: Literal["user", "ip"],
    latency_ms: float,
    latency_jitter_ms: float,
    fail_rate: tuple[str, ...],
    drop_rate: float,
    token_ttl: float,
    random_seed: int | None,
    tms: TmsConfig,
    gateway: GatewayConfig,
) -> None:
    """Serve the IMS + TMS + IAM simulator over HTTP until interrupted."""
    config = SimulatorConfig(
        project_id=project_id,
        aksk=aksk,
        users=users,
        rate_limit=parse_rate_limit(rate_limit),
        rate_limit_message=rate_limit_message,
        rate_limit_policy=rate_limit_policy,
        latency_ms=latency_ms,
        latency_jitter_ms=latency_jitter_ms,
        fail_rates=_parse_fail_rates(fail_rate),
        drop_rate=drop_rate,
        token_ttl_s=token_ttl,
        seed=random_seed,
        tms=tms,
        gateway=gateway,
    )
    _serve(config, seed_csv, host=host, port=port)


def _serve(config: SimulatorConfig, seed_csv: tuple[Path, ...], *, host: str, port: int) -> None:
    # Imported here: asyncio and aiohttp's server side would slow every other command's start-up.
    import asyncio

    from simulator.server import build_simulator, serve_forever
    from simulator.state import SeedError

    try:
        sim = build_simulator(config, seed_csv=list(seed_csv))
    except SeedError as exc:
        raise click.BadParameter(str(exc), param_hint="--seed") from None
    asyncio.run(serve_forever(sim, host=host, port=port))
