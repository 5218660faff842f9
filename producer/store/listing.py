"""Many jobs at once, through the index of jobs (``keys.JOBS``): ``tagsweep jobs`` and the
exporter's reads at each scrape (with the queue, the leases and the workers' heartbeats)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

from producer.store.part import StorePart, counts_of
from worker import keys
from worker.keys import JobField

# Jobs read per round trip.
PAGE = 500


class ListingStore(StorePart):
    """Pages of the index of jobs, and the fleet's gauges."""

    def job_ids(self, *, newest_first: bool) -> Iterator[list[str]]:
        """The ids in the index of jobs, a page at a time (expired ones included)."""
        total = self.client.zcard(keys.JOBS)
        read = self.client.zrevrange if newest_first else self.client.zrange
        for start in range(0, total, PAGE):
            yield cast(list[str], read(keys.JOBS, start, start + PAGE - 1))

    def records_and_counts(
        self, job_ids: list[str]
    ) -> list[tuple[str, dict[str, str], dict[str, int]]]:
        """(id, record, rows final per status) of each job, in one round trip; an expired
        job's record is {}."""
        pipe = self.client.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hgetall(keys.job(job_id))
            pipe.hgetall(keys.counts(job_id))
        answers = pipe.execute()
        return [
            (job_id, record, counts_of(counts))
            for job_id, record, counts in zip(job_ids, answers[::2], answers[1::2], strict=True)
        ]

    def states_and_ends(self, job_ids: list[str]) -> list[tuple[str, str | None, str | None]]:
        """(id, state, finished_at) of each job, in one round trip (state None: expired)."""
        pipe = self.client.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hmget(keys.job(job_id), [JobField.STATE, JobField.FINISHED_AT])
        return [
            (job_id, state, finished)
            for job_id, (state, finished) in zip(job_ids, pipe.execute(), strict=True)
        ]

    def fields_of(self, job_ids: list[str], fields: list[str]) -> list[tuple[str, dict[str, str]]]:
        """(id, {field: value}) of each job, the fields it lacks left out, in one round trip
        (an expired job's dict is empty)."""
        pipe = self.client.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hmget(keys.job(job_id), fields)
        return [
            (job_id, {f: v for f, v in zip(fields, values, strict=True) if v is not None})
            for job_id, values in zip(job_ids, pipe.execute(), strict=True)
        ]

    def fleet(self, queues: list[str], now_ms: int) -> tuple[int, int, int]:
        """(chunks waiting in the broker's ``queues``, live leases, live workers)."""
        from worker.heartbeat import live_workers  # Celery: loaded by the exporter only

        pipe = self.client.pipeline(transaction=False)
        for queue in queues:
            pipe.llen(queue)
        pipe.zcount(keys.LEASES, now_ms, "+inf")
        *lengths, leased = pipe.execute()
        return sum(lengths), int(leased), live_workers(self.client, now_ms)
