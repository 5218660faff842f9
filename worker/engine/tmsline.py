"""Where a TMS batch's call goes: the TMS client of its endpoint and account, the shared
limiter of TMS's own schedule, and the resource type TMS names for IMS images in that
account (asked once per account, kept in Redis 30 days; ``--tms-resource-type`` overrides).
When TMS cannot be used the answer is the reason, in one line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from worker.cloud.outcomes import Outcome, OutcomeKind
from worker.cloud.tms import TmsClient
from worker.cloud.tmsrules import tms_endpoint
from worker.errors import CredentialsError
from worker.limits.limiter import SharedRateLimiter, Throttling
from worker.limits.retrying import Sent, call_under_rate
from worker.model import ResourceBatch

if TYPE_CHECKING:
    from worker.engine.chunk import ChunkRun

log = structlog.get_logger("tagsweep.worker")

# The shared limiter's API name for TMS calls: a schedule and a learnt limit of their own.
TMS_API = "tms"
NOT_LISTED = (
    "TMS does not list IMS images as a resource type for this account "
    "(GET /v1.0/tms/providers?provider=ims): use --api v1, or --tms-resource-type"
)


@dataclass(frozen=True)
class TmsLine:
    """Where a TMS batch's calls go."""

    client: TmsClient
    limiter: SharedRateLimiter
    resource_type: str

    @property
    def bucket(self) -> str:
        """The limiter's key: the credential probe's key too."""
        return self.limiter.key


async def tms_line_for(run: ChunkRun, batch: ResourceBatch) -> TmsLine | str:
    """The batch's TMS line, or why TMS cannot take it (one line)."""
    ctx, options = run.ctx, run.job.options
    endpoint = tms_endpoint(batch.region, options.tms_endpoint)
    if endpoint is None:
        return f"no TMS endpoint is known for region {batch.region}: set --tms-endpoint"
    if ctx.tms_client_for is None:
        return "this worker makes no TMS calls"
    try:
        client = ctx.tms_client_for(endpoint, options.domain_id)
    except CredentialsError as exc:
        return str(exc)
    # TMS's own schedules (and learnt limits), apart from IMS's.
    limiter = ctx.limiter_for(endpoint, client.identity, api=TMS_API)
    resource_type = options.tms_resource_type or await _image_type(run, client, limiter)
    if resource_type is None:
        return "TMS did not say which resource type IMS images are (providers call failed)"
    return TmsLine(client, limiter, resource_type) if resource_type else NOT_LISTED


async def _image_type(run: ChunkRun, client: TmsClient, limiter: SharedRateLimiter) -> str | None:
    """IMS images' type for the client's account ("" when TMS lists none): this process's,
    else Redis's, else asked (one caller per process asks; the others wait for it)."""
    ctx, domain = run.ctx, client.domain_id
    async with ctx.tms_asking:
        if domain in ctx.tms_types:
            return ctx.tms_types[domain]
        kept = await ctx.store.tms_resource_type(domain)
        if kept is None:
            call = ProvidersCall(run, client)
            answer = await call_under_rate(
                limiter,
                call,
                policy=run.job.options,
                clock=ctx.clock,
                sleep=ctx.sleep,
                rng=ctx.rng,
            )
            if not isinstance(answer, Sent) or answer.outcome.kind is not OutcomeKind.OK:
                return None
            kept = call.found or ""
            await ctx.store.keep_tms_resource_type(domain, kept)
            log.info("tms.resource_type", domain_id=domain, resource_type=kept or None)
        ctx.tms_types[domain] = kept
        return kept


class ProvidersCall:
    """The providers call as ``call_under_rate`` makes it, keeping the type it found."""

    def __init__(self, run: ChunkRun, client: TmsClient) -> None:
        self.run = run
        self.client = client
        self.found: str | None = None

    async def ready(self) -> bool:
        return True

    async def stopped(self) -> bool:
        return await self.run.stop.stopped()

    async def call(self) -> Outcome:
        outcome, self.found = await self.client.ims_resource_type()
        self.run.rows.tally.calls += 1
        return outcome

    async def throttled(self, throttling: Throttling) -> None:
        self.run.rows.tally.throttled += 1

    def retrying(self, outcome: Outcome, attempt: int, delay_s: float) -> None:
        log.info("tms.providers.retry", outcome=outcome.kind.value, attempt=attempt)
