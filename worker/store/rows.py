"""A job's rows in Redis, as workers read and write them (async): chunks, results, observations.

Recording is idempotent: a row's result is written once and counted once (its bit in the job's
``final`` bitmap), in one script, so a chunk delivered twice neither double-counts nor
overwrites a result. Results are kept per request, not per row, in a list per chunk.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from redis.client import NEVER_DECODE

from worker import keys
from worker.formats import (
    bit_items,
    bit_span,
    decode_chunk,
    first_observed,
    latest_results,
    set_bits,
)
from worker.jobs import GOALS, JobState, Mode, RowResult
from worker.lua.rows import OBSERVE, RECORD_RESULTS
from worker.model import Batch, RowStatus


@dataclass(frozen=True)
class Recorded:
    """What recording a batch's results changed."""

    added: int
    done: int
    requests: int
    failed_requests: int
    finished: JobState | None
    # Rows newly recorded, by status (what the job's counts gained).
    gained: Mapping[str, int] = field(default_factory=dict)


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


class RowStore:
    """Reads chunks, records results and keeps what reads found."""

    def __init__(self, client: aioredis.Redis) -> None:
        """``client`` must decode responses (``decode_responses=True``)."""
        self.redis = client
        self._record = client.register_script(RECORD_RESULTS)
        self._observe = client.register_script(OBSERVE)

    async def load_chunk(self, job_id: str, number: int) -> list[Batch] | None:
        text = await self.redis.get(keys.chunk(job_id, number))
        return None if text is None else decode_chunk(text)

    async def final_refs(self, job_id: str, refs: Sequence[int]) -> set[int]:
        """Which of these rows already have a result (their bits in ``final``)."""
        if not refs:
            return set()
        span = bit_span(refs)
        if span is not None:
            # The span's raw bytes (the client decodes replies, a bitmap is no text): one
            # short command instead of three arguments a row for redis-py to pack.
            data = await self.redis.execute_command(  # type: ignore[no-untyped-call]
                "GETRANGE", keys.final(job_id), *span, **{NEVER_DECODE: []}
            )
            return set_bits(data, span[0], refs)
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
        worked_ms: int = 0,
    ) -> Recorded:
        """Record entries in one script call (a flush of ``worker.engine.recorder``), counting
        ``requests`` requests of which ``failed`` failed, the ``calls`` made since the last
        recording (the job's counters), and ``worked_ms``, how long the chunk was held since
        its holder last said (the job's active time)."""
        tally = calls or CallTally()
        lists: dict[int, int] = {}
        args: list[str | int] = [requests, failed, " ".join(sorted(goals))]
        args += [tally.calls, tally.throttled, tally.retries]
        lines = []
        for entry in entries:
            index = lists.setdefault(entry.chunk, len(lists) + 1)
            refs = ",".join(map(str, entry.refs))
            lines.append(f"{index} {entry.result.status.value} {refs} {entry.result.to_json()}")
        args += ["\n".join(lines), worked_ms]
        result_keys = [keys.chunk_results(job_id, number) for number in lists]
        fixed = [keys.final(job_id), keys.counts(job_id), keys.job(job_id)]
        added, done, requests_, failures, finished, *gained = await self._record(
            keys=[*fixed, *result_keys, keys.timeline(job_id), keys.failed_chunks(job_id)],
            args=args,
        )
        return Recorded(
            int(added),
            int(done),
            int(requests_),
            int(failures),
            JobState(finished) if finished else None,
            {status: int(n) for status, n in zip(gained[::2], gained[1::2], strict=True)},
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
