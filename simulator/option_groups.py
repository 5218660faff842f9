"""Groups of ``tagsweep simulator`` options, each handed to the command as one nested config.

The command's own options map one to one onto ``SimulatorConfig``; a group (TMS, the gateway's
quirks) arrives as one frozen dataclass instead, so the command grows by one argument a group.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from simulator.config import GatewayConfig, SimulatorConfig, SimUser, TmsConfig

if TYPE_CHECKING:
    from simulator.limits import RateLimit

# The options' defaults are the configuration's.
DEFAULTS = SimulatorConfig()
Command = Callable[..., None]


def _with_options(options: tuple[Callable[[Command], Command], ...], command: Command) -> Command:
    return functools.reduce(lambda wrapped, option: option(wrapped), reversed(options), command)


_IDENTITY_OPTIONS = (
    click.option("--ak", envvar="HUAWEICLOUD_SDK_AK", help="Accepted AK [env HUAWEICLOUD_SDK_AK]."),
    click.option("--sk", envvar="HUAWEICLOUD_SDK_SK", help="Its SK [env HUAWEICLOUD_SDK_SK]."),
    click.option("--user", help="IAM user that may fetch tokens."),
    click.option(
        "--password",
        envvar="TAGSWEEP_IAM_PASSWORD",
        help="That user's password [env TAGSWEEP_IAM_PASSWORD].",
    ),
    click.option("--domain", help="The user's account (domain) name; defaults to the user."),
)


def identity_options(command: Command) -> Command:
    """Add who the simulator accepts; ``command`` receives ``aksk=`` and ``users=``."""

    @functools.wraps(command)
    def with_identities(
        *,
        ak: str | None,
        sk: str | None,
        user: str | None,
        password: str | None,
        domain: str | None,
        **others: object,
    ) -> None:
        if bool(ak) != bool(sk):
            raise click.UsageError("--ak and --sk go together")
        if user and not password:
            raise click.UsageError("--user needs --password (or TAGSWEEP_IAM_PASSWORD)")
        users = (SimUser(user, password or "", domain or user),) if user else ()
        command(aksk={ak: sk} if ak and sk else {}, users=users, **others)

    return _with_options(_IDENTITY_OPTIONS, with_identities)


def parse_rate_limit(value: str | None, *, hint: str = "--rate-limit") -> RateLimit | None:
    from simulator.limits import RateLimit

    if value is None:
        return None
    try:
        return RateLimit.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=hint) from None


_TMS_OPTIONS = (
    click.option(
        "--domain-id",
        default=DEFAULTS.tms.domain_id,
        show_default=True,
        envvar="HUAWEICLOUD_SDK_DOMAIN_ID",
        help="Account id that AK/SK calls to TMS must send in X-Domain-Id "
        "[env HUAWEICLOUD_SDK_DOMAIN_ID].",
    ),
    click.option(
        "--tms-resource-type",
        default=DEFAULTS.tms.resource_type,
        show_default=True,
        help="Resource type TMS's providers answer names for IMS images, the only one its batch "
        "delete accepts (the real value is unconfirmed: private_image or images).",
    ),
    click.option(
        "--tms-no-ims",
        is_flag=True,
        help="TMS does not list IMS: providers?provider=ims is empty and batch delete refuses "
        "every image as an unsupported type.",
    ),
    click.option(
        "--tms-max-resources",
        type=click.IntRange(min=1),
        default=DEFAULTS.tms.max_resources,
        show_default=True,
        help="Resources one TMS batch delete may name (the SDKs say 20, the web pages 50).",
    ),
    click.option(
        "--tms-rate-limit",
        metavar="COUNT[/WINDOW]",
        help="TMS's own allowance, counted apart from --rate-limit (IMS's) and in the same "
        "syntax [default: no limit].",
    ),
    click.option(
        "--tms-throttle-status",
        type=click.Choice(["403", "429"]),
        default=str(DEFAULTS.tms.throttle_status),
        show_default=True,
        help="How TMS refuses a call over --tms-rate-limit: 403 TMS.0006 (its own) or the "
        "gateway's 429 APIGW.0308.",
    ),
)


def tms_options(command: Command) -> Command:
    """Add the TMS options to ``command``, which receives them as one ``tms=TmsConfig``."""

    @functools.wraps(command)
    def with_tms(
        *,
        domain_id: str,
        tms_resource_type: str,
        tms_no_ims: bool,
        tms_max_resources: int,
        tms_rate_limit: str | None,
        tms_throttle_status: str,
        **others: object,
    ) -> None:
        tms = TmsConfig(
            domain_id=domain_id,
            resource_type=tms_resource_type,
            lists_ims=not tms_no_ims,
            max_resources=tms_max_resources,
            rate_limit=parse_rate_limit(tms_rate_limit, hint="--tms-rate-limit"),
            throttle_status=403 if tms_throttle_status == "403" else 429,
        )
        command(tms=tms, **others)

    return _with_options(_TMS_OPTIONS, with_tms)


_GATEWAY_OPTIONS = (
    click.option(
        "--clock-skew-s",
        type=float,
        default=DEFAULTS.gateway.clock_skew_s,
        show_default=True,
        help="The gateway's clock is this many seconds ahead (negative: behind): its Date "
        "header, and its check that a signature is at most 15 minutes from its clock.",
    ),
    click.option(
        "--check-project/--no-check-project",
        default=DEFAULTS.gateway.check_project,
        show_default=True,
        help="Refuse an IMS call whose project is not the account's (--project-id or a seed's: "
        "401) or not the credentials' own (X-Project-Id or the token's: 403).",
    ),
)


def gateway_options(command: Command) -> Command:
    """Add the gateway's quirks to ``command``, which receives them as ``gateway=``."""

    @functools.wraps(command)
    def with_gateway(*, clock_skew_s: float, check_project: bool, **others: object) -> None:
        gateway = GatewayConfig(clock_skew_s=clock_skew_s, check_project=check_project)
        command(gateway=gateway, **others)

    return _with_options(_GATEWAY_OPTIONS, with_gateway)
