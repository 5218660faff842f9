"""``tagsweep doctor``: a read-only preflight of an account before a first real job.

It sends at most three reads (an IAM token for a password user, IMS's tag-query count, TMS's
providers list) and no write; the checks are ``producer.doctor``'s, the reads
``producer.preflight``'s. One line per check; exit 0 when none fails, 2 otherwise.
"""

from __future__ import annotations

import asyncio
import json
import os

import click

from producer.doctor import CheckResult, CheckState, judge
from producer.exits import ExitCode
from producer.options import TMS_OPTIONS, endpoint_option, project_option, region_option
from producer.preflight import Target, gather
from worker.cloud.credentials import CredentialSources, load_credentials
from worker.errors import CredentialsError
from worker.jobs import Api


@click.command(short_help="Check credentials, project, clock, IMS and TMS (read-only).")
@endpoint_option
@region_option
@project_option
@TMS_OPTIONS[0]
@TMS_OPTIONS[1]
@TMS_OPTIONS[2]
@click.option(
    "--api",
    type=click.Choice([api.value for api in Api]),
    default=Api.AUTO.value,
    show_default=True,
    help="The API the jobs will use: auto and tms check TMS too, v1 and v2 skip it.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of the lines.")
def doctor(
    endpoint: str | None,
    region: str | None,
    project_id: str | None,
    tms_endpoint: str | None,
    domain_id: str | None,
    tms_resource_type: str | None,
    api: str,
    as_json: bool,
) -> ExitCode:
    """Check an account read-only before a first real job: credentials accepted (which kind,
    whose), project and region, this machine's clock against the gateway's (over 15 minutes
    off, every signature is refused), IMS reachable, TMS reachable and the resource type it
    names for IMS images, and the limits learnt so far (from Redis, when one answers).

    One line per check, with what to do when it fails. Sends no write and at most three
    reads. Exit code 0: no check failed; 2: one did. Redis (for the limits only; none is
    needed): REDIS_URL, else the private one of ./.tagsweep/ when one runs here.
    """
    try:
        sources = load_credentials(os.environ)
    except CredentialsError as exc:
        return _show([CheckResult("credentials", CheckState.FAIL, str(exc))], as_json=as_json)
    target = _target(
        sources,
        endpoint=endpoint,
        region=region,
        project_id=project_id or sources.project_id,
        tms_endpoint=tms_endpoint,
        domain_id=domain_id,
        api=Api(api),
        tms_resource_type=tms_resource_type,
    )
    evidence = asyncio.run(
        gather(target, sources, iam_endpoint=_iam_endpoint(sources), redis_url=_redis_url())
    )
    return _show(judge(sources, target, evidence), as_json=as_json)


def _target(
    sources: CredentialSources,
    *,
    endpoint: str | None,
    region: str | None,
    project_id: str | None,
    tms_endpoint: str | None,
    domain_id: str | None,
    api: Api,
    tms_resource_type: str | None,
) -> Target:
    from worker.cloud.client import ims_endpoint
    from worker.cloud.tmsrules import tms_endpoint as tms_url_of

    return Target(
        ims_url=ims_endpoint(region or "", endpoint) if (region or endpoint) else None,
        region=region,
        project_id=project_id,
        tms_url=tms_url_of(region or "", tms_endpoint),
        domain_id=domain_id or sources.domain_id,
        api=api,
        tms_resource_type=tms_resource_type,
    )


def _iam_endpoint(sources: CredentialSources) -> str:
    from worker.runtime import DEFAULT_IAM_ENDPOINT
    from worker.settings import Settings

    return Settings.from_env().iam_endpoint or sources.iam_endpoint or DEFAULT_IAM_ENDPOINT


def _redis_url() -> str | None:
    """Where the workers keep what they learnt: ``REDIS_URL``, else the private Redis running
    over ./.tagsweep/ (none is started for doctor)."""
    from producer.embedded import running_private_url

    return os.environ.get("REDIS_URL") or running_private_url()


def _show(checks: list[CheckResult], *, as_json: bool) -> ExitCode:
    failed = any(check.state is CheckState.FAIL for check in checks)
    if as_json:
        document = {"ok": not failed, "checks": [check.as_json() for check in checks]}
        click.echo(json.dumps(document))
    else:
        click.echo("\n".join(check.line() for check in checks))
    return ExitCode.BAD_INPUT if failed else ExitCode.OK
