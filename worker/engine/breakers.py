"""The circuit breakers that abort a job: at once on refused credentials (a bad signature, an
unknown AK, a refused token: trying again would lock the AK, or fail the same way), and when
too large a share of its requests failed (counted in Redis, all workers together).

Refused credentials are the cause of the rows their call ended ``unauthorized``: once they are
fixed, running the same command again sends those rows with the cancelled ones
(``resend``); a share of failures names no such cause, so its rows stay final."""

from __future__ import annotations

from worker.cloud.outcomes import Outcome, OutcomeKind
from worker.engine.calls import IAM_REFUSED
from worker.engine.stopping import StopCheck
from worker.jobs import JobOptions
from worker.model import RowStatus
from worker.store import Recorded


class Breakers:
    """The breakers of one chunk's job."""

    def __init__(self, options: JobOptions, stop: StopCheck) -> None:
        self.options = options
        self.stop = stop

    async def check_outcome(self, outcome: Outcome) -> None:
        """Abort the job at once on refused AK/SK credentials or a refused token."""
        reason = None
        if outcome.kind is OutcomeKind.SIGNATURE_FAILED:
            reason = f"AK/SK refused ({outcome.error_code}: {outcome.error_message})"
        elif outcome.error_code == IAM_REFUSED:
            reason = f"no token: {outcome.error_message}"
        if reason:
            await self.stop.abort(reason, resend=RowStatus.UNAUTHORIZED)

    def near(self, known: Recorded | None, held: tuple[int, int]) -> bool:
        """Whether the requests counted at the last flush (``known``) plus those ``held``
        (all, failed) would trip the failure-ratio breaker: then the flush is made now, so
        that it trips as soon as it did when every request was written at once."""
        known = known or Recorded(0, 0, 0, 0, None)
        return self._over_ratio(known.requests + held[0], known.failed_requests + held[1])

    async def check_ratio(self, recorded: Recorded) -> None:
        """Abort the job when too large a share of its requests failed (as of ``recorded``)."""
        if self._over_ratio(recorded.requests, recorded.failed_requests):
            await self.stop.abort(
                f"{recorded.failed_requests} of {recorded.requests} requests failed "
                f"(more than {self.options.breaker_ratio:.0%})"
            )

    def _over_ratio(self, requests: int, failed: int) -> bool:
        options = self.options
        return requests >= options.breaker_min and failed > options.breaker_ratio * requests
