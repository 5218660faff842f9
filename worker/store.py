"""The job and its results in Redis, as workers read and write them (async).

Recording is idempotent: a row's result is written once and counted once (its bit in the job's
``final`` bitmap), in one script, so a chunk delivered twice neither double-counts nor
overwrites a result. Results are kept per request, not per row, in a list per chunk.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import redis.asyncio as aioredis
from redis.typing import EncodableT, FieldT

from worker import keys, scripts
from worker.formats import bit_items, decode_chunk, first_observed, latest_results
from worker.jobs import GOALS, Job, JobState, Mode, RowResult
from worker.model import CloudLimit, ImageBatch, RowStatus
from worker.redis_safety import stop_for_memory
from worker.retention import apply_retention_async
from worker.scripts import MARK_RUNNING, STOP_JOB


@dataclass(frozen=True)
class Recorded:
    """What recording a batch's results changed."""

    added: int
    done: int
    requests: int
    failed_requests: int
    finished: JobState | None


@dataclass(frozen=True)
class Entry:
    """Rows of one chunk that share one result (one request, or the part of one decided apart)."""

    chunk: int
    refs: tuple[int, ...]
    result: RowResult


@dataclass
class CallTally:
    """Calls to IMS not counted in Redis yet: all, answered 429, and retries."""

    calls: int = 0
    throttled: int = 0
    retries: int = 0

    def take(self) -> CallTally:
        """A copy of the counts, which start again from zero."""
        taken = CallTally(self.calls, self.throttled, self.retries)
        self.calls = self.throttled = self.retries = 0
        return taken


class ResultStore:
    """Reads jobs and chunks, records results, and holds chunk leases."""

    def __init__(self, client: aioredis.Redis) -> None:
        """``client`` must decode responses (``decode_responses=True``)."""
        self.redis = client
        self._record = client.register_script(scripts.RECORD_RESULTS)
        self._observe = client.register_script(scripts.OBSERVE)
        self._acquire = client.register_script(scripts.ACQUIRE_LEASE)
        self._renew = client.register_script(scripts.RENEW_LEASE)
        self._release = client.register_script(scripts.RELEASE_LEASE)
        self._running = client.register_script(MARK_RUNNING)
        self._stop = client.register_script(STOP_JOB)

    async def load_job(self, job_id: str) -> Job | None:
        record = cast(dict[str, str], await self.redis.hgetall(keys.job(job_id)))
        return Job.from_record(job_id, record) if record else None

    async def job_state(self, job_id: str) -> JobState | None:
        state = cast(str | None, await self.redis.hget(keys.job(job_id), "state"))
        return JobState(state) if state else None

    async def stop_reason(self, job_id: str) -> str:
        """Why a job was aborted or cancelled ("" if it says nothing)."""
        return cast(str | None, await self.redis.hget(keys.job(job_id), "reason")) or ""

    async def mark_running(self, job_id: str) -> JobState:
        return JobState(await self._running(keys=[keys.job(job_id)]))

    async def stop_job(self, job_id: str, state: JobState, reason: str) -> bool:
        """Move a queued or running job to ``aborted`` or ``cancelled``; False if it was over."""
        return bool(await self._stop(keys=[keys.job(job_id)], args=[state.value, reason]))

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

    async def apply_retention(self, job_id: str) -> int:
        """Give a finished job's keys their TTL (``worker.retention``); 0 if none is due."""
        return await apply_retention_async(self.redis, job_id)

    async def stop_for_memory(self, job_id: str, error: Exception) -> bool:
        """Redis is full: log it and abort the job with that reason (``worker.redis_safety``)."""
        return await stop_for_memory(self.redis, job_id, error)

    async def publish_rate(
        self, job_id: str, rate_per_s: float, limit: CloudLimit | None = None
    ) -> None:
        """Show the effective shared rate, and the limit the cloud named, in the job record
        (read by ``status``)."""
        fields: dict[FieldT, EncodableT] = {"effective_rate": f"{rate_per_s:.3f}"}
        if limit is not None:
            fields["cloud_limit"] = f"{limit.count}/{limit.window_s:g}"
        await self.redis.hset(keys.job(job_id), mapping=fields)

    async def load_chunk(self, job_id: str, number: int) -> list[ImageBatch] | None:
        text = await self.redis.get(keys.chunk(job_id, number))
        return None if text is None else decode_chunk(text)

    async def final_refs(self, job_id: str, refs: Sequence[int]) -> set[int]:
        """Which of these rows already have a result (their bits in ``final``)."""
        if not refs:
            return set()
        items = bit_items(refs)
        bits = await self.redis.bitfield_ro(keys.final(job_id), *items[0], items=items[1:])
        return {ref for ref, bit in zip(refs, bits, strict=True) if bit}

    async def chunk_results(self, job_id: str, number: int) -> dict[int, RowResult]:
        """Row ref -> result of the rows of chunk ``number`` that are final."""
        found = latest_results(await self.redis.lrange(keys.chunk_results(job_id, number), 0, -1))
        final = await self.final_refs(job_id, list(found))
        return {ref: result for ref, result in found.items() if ref in final}

    async def record(
        self,
        job_id: str,
        results: Iterable[tuple[int, RowResult]],
        *,
        request: bool = False,
        failed: bool = False,
        goals: Iterable[RowStatus] = GOALS[Mode.DELETE],
        chunk: int = 0,
        calls: CallTally | None = None,
    ) -> Recorded:
        """Record results not recorded yet (rows of chunk ``chunk``), and count the request
        that produced them. ``goals``: the statuses that leave the job ``completed``.
        ``calls``: the calls made since the last recording, added to the job's counters."""
        grouped: dict[RowResult, list[int]] = {}
        for ref, result in results:
            grouped.setdefault(result, []).append(ref)
        entries = [Entry(chunk, tuple(refs), result) for result, refs in grouped.items()]
        return await self.record_entries(
            job_id, entries, requests=int(request), failed=int(failed), goals=goals, calls=calls
        )

    async def record_entries(
        self,
        job_id: str,
        entries: Sequence[Entry],
        *,
        requests: int = 0,
        failed: int = 0,
        goals: Iterable[RowStatus] = GOALS[Mode.DELETE],
        calls: CallTally | None = None,
    ) -> Recorded:
        """Record entries in one script call (a flush of ``worker.recorder``), counting
        ``requests`` requests of which ``failed`` failed, and the ``calls`` made since the
        last recording (the job's counters)."""
        tally = calls or CallTally()
        lists: dict[int, int] = {}
        args: list[str | int] = [requests, failed, " ".join(sorted(goals))]
        args += [tally.calls, tally.throttled, tally.retries]
        for entry in entries:
            index = lists.setdefault(entry.chunk, len(lists) + 1)
            refs = ",".join(map(str, entry.refs))
            args += [index, entry.result.status.value, refs, entry.result.to_json()]
        result_keys = [keys.chunk_results(job_id, number) for number in lists]
        added, done, requests_, failures, finished = await self._record(
            keys=[keys.final(job_id), keys.counts(job_id), keys.job(job_id), *result_keys],
            args=args,
        )
        return Recorded(
            int(added),
            int(done),
            int(requests_),
            int(failures),
            JobState(finished) if finished else None,
        )

    async def observe(
        self, job_id: str, values: Mapping[int, str | None], *, chunk: int = 0
    ) -> dict[int, str | None]:
        """Keep what a read found for rows of chunk ``chunk`` (the value, or None: the key was
        absent) and return what is kept: the first observation of a row wins, so a chunk
        worked again after a crash between a backup read and its delete keeps the value from
        before the delete."""
        if not values:
            return {}
        args: list[str | int] = []
        for ref, value in values.items():
            args += [ref, json.dumps(value, ensure_ascii=False)]
        seen = await self._observe(
            keys=[keys.observed(job_id), keys.chunk_observed(job_id, chunk)], args=args
        )
        kept = dict(values)
        if seen:
            earlier = await self.chunk_observed(job_id, chunk)
            for ref in map(int, seen):
                kept[ref] = earlier.get(ref, kept[ref])
        return kept

    async def chunk_observed(self, job_id: str, number: int) -> dict[int, str | None]:
        """Row ref -> the value kept for it, for the rows of chunk ``number`` that were read."""
        return first_observed(await self.redis.lrange(keys.chunk_observed(job_id, number), 0, -1))

    async def acquire_lease(self, job_id: str, number: int, owner: str, ttl_ms: int) -> str:
        return str(
            await self._acquire(
                keys=[keys.LEASES, keys.LEASE_OWNERS, keys.done_chunks(job_id)],
                args=[keys.lease_member(job_id, number), owner, ttl_ms, number],
            )
        )

    async def renew_lease(self, job_id: str, number: int, owner: str, ttl_ms: int) -> bool:
        answer = await self._renew(
            keys=[keys.LEASES, keys.LEASE_OWNERS],
            args=[keys.lease_member(job_id, number), owner, ttl_ms],
        )
        return bool(answer == "ok")

    async def release_lease(self, job_id: str, number: int, owner: str, *, complete: bool) -> None:
        await self._release(
            keys=[keys.LEASES, keys.LEASE_OWNERS, keys.done_chunks(job_id)],
            args=[keys.lease_member(job_id, number), owner, number, "1" if complete else "0"],
        )
