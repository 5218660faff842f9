"""Rate publishing: the effective shared rate (and the cloud's limit, once learnt) shown in the
job record for ``status``, and the log lines of what a 429 changed."""

from __future__ import annotations

import structlog

from worker.engine.context import EngineContext
from worker.jobs import Job
from worker.limits.limiter import Throttling
from worker.model import CloudLimit

log = structlog.get_logger("tagsweep.worker")

# Publish at least this often while the rate stays (else only when it moves).
SHOW_EVERY_S = 2.0


class RatePublisher:
    """Publishes one job's rate from one chunk."""

    def __init__(self, ctx: EngineContext, job: Job) -> None:
        self.ctx = ctx
        self.job = job
        self._shown_at = 0.0

    def last(self) -> float:
        """The rate this process last published for the job (0 if none)."""
        return self.ctx.rates_shown.get(self.job.job_id, 0.0)

    def forget(self) -> None:
        """The job is over: nothing more to publish for it from this process."""
        self.ctx.rates_shown.pop(self.job.job_id, None)
        self.ctx.rates_cut.discard(self.job.job_id)

    async def show(
        self, rate: float, limit: CloudLimit | None = None, *, scope: str | None = None
    ) -> None:
        """Publish the effective rate (and the cloud's limit, once learnt) when the rate
        moved (1% of the ceiling) or every 2 s."""
        ceiling = self.job.options.rate_per_s
        now = self.ctx.clock()
        job_id = self.job.job_id
        shown = self.ctx.rates_shown.get(job_id)
        if (
            shown is not None
            and abs(rate - shown) < 0.01 * ceiling
            and now - self._shown_at < SHOW_EVERY_S
        ):
            return
        if shown is not None and shown < ceiling <= rate and job_id in self.ctx.rates_cut:
            self.ctx.rates_cut.discard(job_id)
            log.info("ratelimit.adjusted", rate=round(rate, 2), cause="recovered")
        self.ctx.rates_shown[job_id] = rate
        self._shown_at = now
        await self.ctx.store.publish_rate(job_id, rate, limit, scope=scope)

    async def throttled(self, throttling: Throttling, *, scope: str | None = None) -> None:
        """Say what a 429 changed in the shared schedule (info: rate changes and throttling);
        a limit learnt is published now, since a hold may last minutes, with ``scope``: the
        scope of the schedule the calls are now counted on."""
        rate = round(throttling.rate_per_s, 2)
        if throttling.learned is not None:
            limit = throttling.learned
            log.info("ratelimit.learned", limit=limit.count, window_s=limit.window_s, rate=rate)
        elif throttling.cut:
            log.info("ratelimit.adjusted", rate=rate, cause="429")
        if throttling.learned is not None or throttling.cut:
            self.ctx.rates_cut.add(self.job.job_id)
        if throttling.held:
            log.info("ratelimit.held", reason="window quota spent", rate=rate)
        if throttling.learned is not None:
            await self.show(throttling.rate_per_s, throttling.learned, scope=scope)
