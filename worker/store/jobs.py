"""A job's record in Redis, as workers read and write it (async): its state, why it stopped,
its published rate, its retention, and the marks of the credentials its calls proved."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError
from redis.typing import EncodableT, FieldT

from worker import keys
from worker.jobs import Job, JobState
from worker.keys import JobField
from worker.lua.jobs import APPLY_RETENTION, MARK_RUNNING, STOP_JOB, STOP_JOB_ALLOW_OOM
from worker.model import CloudLimit, RowStatus


@dataclass(frozen=True)
class JobTotals:
    """A job's counts as Redis holds them (all workers together): its ``job.finished`` line."""

    state: str
    rows: Mapping[str, int]  # final rows by status (invalid ones, counted by submit, included)
    requests: int  # requests whose rows were recorded
    calls: int  # calls to the cloud, retries included
    throttled: int  # calls answered 429
    retries: int
    elapsed_s: float | None  # from the (latest) start of work to the end, Redis time

    def as_fields(self) -> dict[str, object]:
        """The totals as log fields."""
        return {
            "state": self.state,
            "rows": dict(self.rows),
            "requests": self.requests,
            "calls": self.calls,
            "throttled": self.throttled,
            "retries": self.retries,
            "elapsed_s": self.elapsed_s,
        }


def _worked_s(job: Job) -> float | None:
    """How long a finished job's rows were worked, as ``status`` says it (``Job.worked_s``),
    to its end: its last chunk's lease is still held when ``job.finished`` is logged."""
    if job.finished_at_ms is None:
        return None
    worked = job.worked_s(job.finished_at_ms, held=True)
    return None if worked is None else round(worked, 1)


class JobRecords:
    """Reads a job's record and moves its state."""

    def __init__(self, client: aioredis.Redis) -> None:
        """``client`` must decode responses (``decode_responses=True``)."""
        self.redis = client
        self._running = client.register_script(MARK_RUNNING)
        self._stop = client.register_script(STOP_JOB)
        self._retention = client.register_script(APPLY_RETENTION)

    async def load_job(self, job_id: str) -> Job | None:
        record = cast(dict[str, str], await self.redis.hgetall(keys.job(job_id)))
        return Job.from_record(job_id, record) if record else None

    async def job_state(self, job_id: str) -> JobState | None:
        state = cast(str | None, await self.redis.hget(keys.job(job_id), JobField.STATE))
        return JobState(state) if state else None

    async def totals(self, job_id: str) -> JobTotals | None:
        """The job's counts and how long it was worked; None if its record is gone."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(keys.job(job_id))
        pipe.hgetall(keys.counts(job_id))
        record, counts = await pipe.execute()
        if not record.get(JobField.STATE):
            return None
        return JobTotals(
            state=record[JobField.STATE],
            rows={status: int(n) for status, n in counts.items()},
            requests=int(record.get(JobField.REQUESTS) or 0),
            calls=int(record.get(JobField.CALLS) or 0),
            throttled=int(record.get(JobField.THROTTLED) or 0),
            retries=int(record.get(JobField.RETRIES) or 0),
            elapsed_s=_worked_s(Job.from_record(job_id, record)),
        )

    async def stop_reason(self, job_id: str) -> str:
        """Why a job was aborted or cancelled ("" if it says nothing)."""
        return cast(str | None, await self.redis.hget(keys.job(job_id), JobField.REASON)) or ""

    async def mark_running(self, job_id: str) -> JobState:
        return JobState(await self._running(keys=[keys.job(job_id)]))

    async def stop_job(
        self, job_id: str, state: JobState, reason: str, *, resend: RowStatus | None = None
    ) -> bool:
        """Move a queued or running job to ``aborted`` or ``cancelled``; False if it was over.
        ``resend``: the status the abort's cause gave rows, sent again by a resume."""
        args = [state.value, reason, resend.value if resend else ""]
        return bool(await self._stop(keys=[keys.job(job_id)], args=args))

    async def abort_out_of_memory(self, job_id: str, reason: str) -> bool:
        """``stop_job`` (aborted) when Redis is out of memory: with the script flag that
        lets it run then (Redis >= 7), else as it is (Redis 6 does not know script flags).
        False if even that could not be written."""
        for text in (STOP_JOB_ALLOW_OOM, STOP_JOB):
            try:
                script = self.redis.register_script(text)
                args = [JobState.ABORTED.value, reason]
                return bool(await script(keys=[keys.job(job_id)], args=args))
            except ResponseError:
                continue
            except RedisError:
                break
        return False

    async def publish_rate(
        self,
        job_id: str,
        rate_per_s: float,
        limit: CloudLimit | None = None,
        *,
        scope: str | None = None,
    ) -> None:
        """Show the effective shared rate, and the limit the cloud named (and the scope of the
        schedule it was learnt on), in the job record (read by ``status`` and the page)."""
        fields: dict[FieldT, EncodableT] = {JobField.EFFECTIVE_RATE: f"{rate_per_s:.3f}"}
        if limit is not None:
            fields[JobField.CLOUD_LIMIT] = f"{limit.count}/{limit.window_s:g}"
            if scope is not None:
                fields[JobField.CLOUD_LIMIT_SCOPE] = scope
        await self.redis.hset(keys.job(job_id), mapping=fields)

    async def key_fields(
        self, job_id: str, fields: Sequence[str]
    ) -> tuple[list[str | None], set[str]]:
        """``fields`` of a job's record and its identity keys: what its key list needs."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(keys.job(job_id), list(fields))
        pipe.smembers(keys.identities(job_id))
        found, identity_keys = await pipe.execute()
        return found, identity_keys

    async def retention_call(self, call_keys: list[str], args: list[str]) -> int:
        """One call of the retention script (``worker.retention`` makes them)."""
        return int(await self._retention(keys=call_keys, args=args))


class CredentialMarks:
    """The marks of a job's first call per bucket (``worker.engine.probe``)."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client

    async def identity_verified(self, job_id: str, identity_key: str) -> bool:
        return bool(await self.redis.get(keys.verified(job_id, identity_key)) == "ok")

    async def claim_probe(self, job_id: str, identity_key: str, ttl_ms: int) -> bool:
        """Whether this caller sends the first call of the job for an identity."""
        return bool(
            await self.redis.set(keys.verified(job_id, identity_key), "probing", nx=True, px=ttl_ms)
        )

    async def settle_probe(self, job_id: str, identity_key: str, *, accepted: bool) -> None:
        """After the first call: mark the identity good, or let another caller try again."""
        key = keys.verified(job_id, identity_key)
        if accepted:
            pipe = self.redis.pipeline(transaction=False)
            pipe.set(key, "ok", ex=7 * 24 * 3600)
            pipe.sadd(keys.identities(job_id), identity_key)  # for retention and forget
            await pipe.execute()
        else:
            await self.redis.delete(key)
