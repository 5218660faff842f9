"""The credential probe: a job's first call per (endpoint, identity) goes alone.

Five bad signatures in a row lock an AK for five minutes, and a job opens with many calls in
flight on many workers: so the first call goes alone (the "probe", claimed in Redis), and the
rest wait for its answer. After a signature failure or a refused token the probe is kept (the
job is about to abort): nobody else may try those credentials. Any other 401 to the first call
(an unknown token, say) aborts the job too: credentials never accepted would be refused to every
call, one after the other, until the failure-ratio breaker tripped at 100 requests.
"""

from __future__ import annotations

from enum import Enum

from worker.cloud.outcomes import Outcome, OutcomeKind
from worker.engine.calls import IAM_REFUSED
from worker.engine.context import EngineContext
from worker.engine.stopping import StopCheck
from worker.model import RowStatus

PROBE_TTL_MS = 30_000
# How often a call waiting for the probe's answer looks again.
PROBE_POLL_S = 0.05


class Turn(Enum):
    """What the gate says to a call."""

    PROBE = "probe"  # this call proves the credentials: settle it with its answer
    PROVEN = "proven"  # the credentials are known good: go
    STOPPED = "stopped"  # the job stopped while the call waited


class CredentialProbe:
    """The gate of one job's calls, per bucket (endpoint and identity)."""

    def __init__(self, ctx: EngineContext, job_id: str, stop: StopCheck) -> None:
        self.ctx = ctx
        self.job_id = job_id
        self._stop = stop

    async def gate(self, bucket: str) -> Turn:
        """Hold a call back until one call has proven the job's credentials for ``bucket``."""
        if (self.job_id, bucket) in self.ctx.verified:
            return Turn.PROVEN
        store = self.ctx.store
        while True:
            if await store.identity_verified(self.job_id, bucket):
                self.ctx.verified.add((self.job_id, bucket))
                return Turn.PROVEN
            if await store.claim_probe(self.job_id, bucket, PROBE_TTL_MS):
                return Turn.PROBE
            if await self._stop.stopped():
                return Turn.STOPPED
            await self.ctx.sleep(PROBE_POLL_S)

    async def settle(self, bucket: str, outcome: Outcome) -> None:
        """Record what the probe learnt (see the module's docstring)."""
        if outcome.kind is OutcomeKind.SIGNATURE_FAILED or outcome.error_code == IAM_REFUSED:
            return  # the breakers abort the job
        if outcome.kind in (OutcomeKind.UNAUTHORIZED, OutcomeKind.TOKEN_EXPIRED):
            reason = f"credentials refused ({outcome.error_code}: {outcome.error_message})"
            await self._stop.abort(reason, resend=RowStatus.UNAUTHORIZED)
            return
        accepted = not outcome.kind.retryable
        await self.ctx.store.settle_probe(self.job_id, bucket, accepted=accepted)
        if accepted:
            self.ctx.verified.add((self.job_id, bucket))
