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
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from producer.retention import holds_backup
from producer.status import JobStatus
from producer.store import JobStore
from worker.jobs import Job, JobState
from worker.keys import JobField

if TYPE_CHECKING:
    import redis

# How long after it ended a job keeps its per-job series.
ENDED_SHOWN_MS = 3600 * 1000


class TagsweepCollector(Collector):
    """Reads everything from Redis on each scrape."""

    def __init__(self, client: redis.Redis) -> None:
        from worker.broker import queue_keys  # Celery's settings: loaded when it serves

        self.store = JobStore(client)
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
        now_ms = self.store.now_ms()
        states, shown = self._job_states(now_ms)
        jobs = GaugeMetricFamily("tagsweep_jobs", "Jobs in Redis, by state.", labels=["state"])
        for state in JobState:
            jobs.add_metric([state.value], states.get(state.value, 0))
        return [
            jobs,
            *self._fleet(now_ms),
            *job_metrics(self._statuses(shown, now_ms)),
            backup_expiry(self.store),
        ]

    def _job_states(self, now_ms: int) -> tuple[dict[str, int], list[str]]:
        """Jobs per state, and the ids whose per-job series are shown."""
        states: dict[str, int] = {}
        shown: list[str] = []
        for ids in self.store.job_ids(newest_first=False):
            for job_id, state, finished in self.store.states_and_ends(ids):
                if state is None:
                    continue  # expired
                states[state] = states.get(state, 0) + 1
                if not finished or now_ms - int(finished) < ENDED_SHOWN_MS:
                    shown.append(job_id)
        return states, shown

    def _statuses(self, ids: list[str], now_ms: int) -> list[tuple[JobStatus, dict[str, str]]]:
        from worker.heartbeat import live_workers

        found = []
        workers = live_workers(self.store.client, now_ms)  # a job none works says so
        for job_id, record, counts in self.store.records_and_counts(ids):
            if record.get(JobField.STATE):
                job = Job.from_record(job_id, record)
                found.append((JobStatus(job, counts, now_ms, live_workers=workers), record))
        return found

    def _fleet(self, now_ms: int) -> list[Metric]:
        queued, leased, workers = self.store.fleet(self.queues, now_ms)
        return [
            _gauge("tagsweep_chunks_queued", "Chunks waiting in the queue.", queued),
            _gauge("tagsweep_chunks_leased", "Chunks being worked (live leases).", leased),
            _gauge(
                "tagsweep_workers", "Live worker processes (heartbeat in the last 15 s).", workers
            ),
        ]


def _gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, text)
    family.add_metric([], value)
    return family


# Per-job counters: record field -> (metric name, help).
COUNTERS = {
    JobField.CALLS: ("tagsweep_requests", "Calls made to IMS (attempts included)."),
    JobField.THROTTLED: ("tagsweep_throttled_requests", "Calls answered 429 (throttled)."),
    JobField.RETRIES: ("tagsweep_retries", "Calls made again after a retryable answer."),
}
# Per-job gauges: name (after tagsweep_) -> help.
GAUGES = {
    "job_rows": "Rows in the job.",
    "rate_limit_requests_per_second": "The job's rate ceiling (--rate).",
    "effective_rate_requests_per_second": "The shared rate now (after 429s).",
    "eta_seconds": "Estimated time to the job's end (0 once it ended; NaN: unknown, or no "
    "live worker).",
    "job_without_worker": "1 while the job is queued or running and no worker is alive "
    "(interrupted, or waiting for a first worker).",
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
        "job_without_worker": 0 if status.waiting is None else 1,
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


def backup_expiry(store: JobStore) -> GaugeMetricFamily:
    """When each backup not undone expires, for the alert that asks for an undo in time.

    Every job in Redis is read, not only the jobs shown above: a backup is kept for weeks
    after its job ended (``--keep``). One HMGET per job, pipelined a page at a time."""
    family = GaugeMetricFamily(
        "tagsweep_backup_expiry_timestamp_seconds",
        "When the job's backup (a --backup delete not undone) expires, Unix time; none for a "
        "job still running or kept forever (--keep 0).",
        labels=["job"],
    )
    wanted = [JobField.OPTIONS, JobField.UNDONE_BY, JobField.EXPIRES_AT]
    for ids in store.job_ids(newest_first=False):
        for job_id, record in store.fields_of(ids, wanted):
            expires_ms = record.get(JobField.EXPIRES_AT)
            if expires_ms and holds_backup(record):
                family.add_metric([job_id], int(expires_ms) / 1000)
    return family
