"""``tagsweep exporter``: Prometheus metrics read from Redis at scrape time.

A custom collector (prometheus_client's ``Collector``) reads the jobs, counters, leases, queue
and worker heartbeats from Redis when Prometheus scrapes, so one exporter covers every worker on
every host and holds no state of its own. Per-job series are given for jobs queued or running
and for jobs that ended in the last hour (so that their last values are scraped); every job
counts in ``tagsweep_jobs{state}``. Celery itself (tasks, worker pools) is left to Flower or
celery-exporter.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, cast

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from producer.status import JobStatus
from worker import keys
from worker.heartbeat import live_workers
from worker.jobs import Job, JobState

if TYPE_CHECKING:
    import redis

# How long after it ended a job keeps its per-job series.
ENDED_SHOWN_MS = 3600 * 1000
PAGE = 500


def queue_keys() -> list[str]:
    """The broker's list keys of tagsweep's queue, one per priority step (kombu's naming)."""
    from worker.app import QUEUE, app

    options = app.conf.broker_transport_options
    sep = options.get("sep", ":")
    return [QUEUE if step == 0 else f"{QUEUE}{sep}{step}" for step in options["priority_steps"]]


class TagsweepCollector(Collector):
    """Reads everything from Redis on each scrape."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.queues = queue_keys()

    def collect(self) -> Iterator[Metric]:
        import redis

        up = GaugeMetricFamily("tagsweep_redis_up", "Whether the exporter could read Redis.")
        try:
            metrics = self._read()
        except (redis.RedisError, OSError):
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from metrics

    def _read(self) -> list[Metric]:
        seconds, micros = self.client.time()
        now_ms = seconds * 1000 + micros // 1000
        states, shown = self._job_states(now_ms)
        jobs = GaugeMetricFamily("tagsweep_jobs", "Jobs in Redis, by state.", labels=["state"])
        for state in JobState:
            jobs.add_metric([state.value], states.get(state.value, 0))
        return [jobs, *self._fleet(now_ms), *job_metrics(self._statuses(shown, now_ms))]

    def _job_states(self, now_ms: int) -> tuple[dict[str, int], list[str]]:
        """Jobs per state, and the ids whose per-job series are shown."""
        states: dict[str, int] = {}
        shown: list[str] = []
        total = self.client.zcard(keys.JOBS)
        for start in range(0, total, PAGE):
            ids = cast(list[str], self.client.zrange(keys.JOBS, start, start + PAGE - 1))
            pipe = self.client.pipeline(transaction=False)
            for job_id in ids:
                pipe.hmget(keys.job(job_id), ["state", "finished_at"])
            for job_id, (state, finished) in zip(ids, pipe.execute(), strict=True):
                if state is None:
                    continue  # expired
                states[state] = states.get(state, 0) + 1
                if not finished or now_ms - int(finished) < ENDED_SHOWN_MS:
                    shown.append(job_id)
        return states, shown

    def _statuses(self, ids: list[str], now_ms: int) -> list[tuple[JobStatus, dict[str, str]]]:
        pipe = self.client.pipeline(transaction=False)
        for job_id in ids:
            pipe.hgetall(keys.job(job_id))
            pipe.hgetall(keys.counts(job_id))
        answers = pipe.execute()
        found = []
        for job_id, record, counts in zip(ids, answers[::2], answers[1::2], strict=True):
            if record:
                job = Job.from_record(job_id, record)
                status = JobStatus(job, {s: int(n) for s, n in counts.items() if int(n)}, now_ms)
                found.append((status, record))
        return found

    def _fleet(self, now_ms: int) -> list[Metric]:
        pipe = self.client.pipeline(transaction=False)
        for queue in self.queues:
            pipe.llen(queue)
        pipe.zcount(keys.LEASES, now_ms, "+inf")
        *lengths, leased = pipe.execute()
        return [
            _gauge("tagsweep_chunks_queued", "Chunks waiting in the queue.", sum(lengths)),
            _gauge("tagsweep_chunks_leased", "Chunks being worked (live leases).", leased),
            _gauge(
                "tagsweep_workers",
                "Live worker processes (heartbeat in the last 15 s).",
                live_workers(self.client, now_ms),
            ),
        ]


def _gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, text)
    family.add_metric([], value)
    return family


# Per-job counters: record field -> (metric name, help).
COUNTERS = {
    "calls": ("tagsweep_requests", "Calls made to IMS (attempts included)."),
    "throttled": ("tagsweep_throttled_requests", "Calls answered 429 (throttled)."),
    "retries": ("tagsweep_retries", "Calls made again after a retryable answer."),
}
# Per-job gauges: name (after tagsweep_) -> help.
GAUGES = {
    "job_rows": "Rows in the job.",
    "rate_limit_requests_per_second": "The job's rate ceiling (--rate).",
    "effective_rate_requests_per_second": "The shared rate now (after 429s).",
    "eta_seconds": "Estimated time to the job's end (0 once it ended; NaN: unknown).",
}


def _gauge_values(status: JobStatus) -> dict[str, float]:
    job, eta = status.job, status.eta_s
    if job.state.finished:
        eta = 0.0
    return {
        "job_rows": job.total,
        "rate_limit_requests_per_second": job.options.rate_per_s,
        "effective_rate_requests_per_second": job.effective_rate_per_s or job.options.rate_per_s,
        "eta_seconds": math.nan if eta is None else eta,
    }


def job_metrics(statuses: list[tuple[JobStatus, dict[str, str]]]) -> list[Metric]:
    """The per-job families, labelled ``job``; counters match ``status --json``."""
    rows = CounterMetricFamily("tagsweep_rows", "Rows final, by status.", labels=["job", "status"])
    counters = {
        field: CounterMetricFamily(name, text, labels=["job"])
        for field, (name, text) in COUNTERS.items()
    }
    gauges = {
        name: GaugeMetricFamily(f"tagsweep_{name}", text, labels=["job"])
        for name, text in GAUGES.items()
    }
    state = GaugeMetricFamily(
        "tagsweep_job_state", "1 for the job's state.", labels=["job", "state"]
    )
    for status, record in statuses:
        job_id = status.job.job_id
        for each_status in status.statuses:  # every status of its kind, as status --json
            rows.add_metric([job_id, each_status.value], status.counts.get(each_status, 0))
        for field, family in counters.items():
            family.add_metric([job_id], int(record.get(field, 0)))
        for name, value in _gauge_values(status).items():
            gauges[name].add_metric([job_id], value)
        for each in JobState:
            state.add_metric([job_id, each.value], 1 if each is status.job.state else 0)
    return [rows, *counters.values(), *gauges.values(), state]
