"""Taking a job up again when the command that made it is run again (``run``, ``submit``).

An interrupted job still has chunks not done: they are queued again. A job that was aborted (a
wrong SK, say) or cancelled has rows that ended ``cancelled`` without being sent: they are
written into new chunks and queued, as ``retry --only cancelled`` would, and so are the rows
the abort's own cause ended (the job's ``resend``: ``unauthorized`` after refused credentials,
the call that revealed them); rows that ended in any other status are final and are not sent
again. ``--new`` starts a new job instead.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import click

from producer.control import reopen_job, retry_job
from producer.status import read_job
from producer.store import JobStore
from worker.jobs import JobState
from worker.model import RowStatus

if TYPE_CHECKING:
    import redis


def pending_chunks(client: redis.Redis, job_id: str) -> list[int]:
    """Chunks of a job not marked done (original and retry chunks alike)."""
    return JobStore(client).pending_chunks(job_id)


def clear_stale_leases(client: redis.Redis, job_id: str, chunks: list[int]) -> None:
    """A private Redis has no other workers: leases left by an interrupted run are stale, and
    are released as their owners would (the workers' RELEASE_LEASE)."""
    JobStore(client).release_leases(job_id, chunks)


def take_up(client: redis.Redis, job_id: str, *, can_renew: bool = True) -> list[int]:
    """Queue again what a stopped or interrupted job has not sent; say so in one line on
    stderr (``can_renew``: the command has ``--new``). Returns the chunks to dispatch."""
    job = read_job(client, job_id)
    if job.state in (JobState.ABORTED, JobState.CANCELLED):
        # The first call is tried again: an abort (a wrong SK) kept its probe claim so that no
        # worker would try those credentials; they may have been fixed since.
        JobStore(client).clear_probe_claims(job_id)
        again = {RowStatus.CANCELLED.value} | ({job.resend.value} if job.resend else set())
        rows = retry_job(client, job_id, again)
        chunks = pending_chunks(client, job_id)
        if chunks and not rows:
            reopen_job(client, job_id)  # chunks an interruption left: their rows are unsent too
        unsent = f"unsent or {job.resend.value}" if job.resend else "unsent"
        how = f"resuming its {rows:,} {unsent} rows" if rows else "resuming it"
        if not chunks:
            how = "every row is final; nothing to send again"
        click.echo(f"job {job_id} was {job.state.value}: {job.reason}; {how}", err=True)
        return chunks
    chunks = pending_chunks(client, job_id)
    if job.state.finished:
        renew = "; --new starts a new one" if can_renew else ""
        click.echo(f"job {job_id} has already ended ({job.state.value}){renew}", err=True)
    else:
        click.echo(f"resuming job {job_id}: {len(chunks)} chunk(s) to go", err=True)
    return chunks


def point_at(client: redis.Redis, job_id: str, endpoint: str) -> None:
    """Send a job's calls to ``endpoint`` from now on (``--simulate``: a new simulator each run)."""
    job = read_job(client, job_id)
    options = replace(job.options, endpoint=endpoint, tms_endpoint=endpoint)
    JobStore(client).set_options(job_id, options.to_json())
