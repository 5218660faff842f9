"""One ``job.progress`` line per job every 10 s from each worker process that works it.

A request that succeeded is logged at ``debug`` (a 10M-row job must not write gigabytes of
"204, fine"), so at the default level this line is how a job is followed: the job's rows done
(read back from the result script, all workers together), what this process did since the last
line (rows by status, requests, 429s, retries, latency p50/p95) and the effective rate. It is
written from the recording path, never by a timer task: a process that does no work for a job
writes nothing for it.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

log = structlog.get_logger("tagsweep.worker")

PROGRESS_EVERY_S = 10.0


@dataclass
class _Window:
    """What one process did for one job since its last progress line."""

    started_at: float
    done_at_start: int | None = None
    rows: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    throttled: int = 0
    retries: int = 0
    latencies_ms: list[float] = field(default_factory=list)


class ProgressLog:
    """Counts a process's work per job and writes ``job.progress`` at most every ``every_s``."""

    def __init__(self, clock: Callable[[], float], *, every_s: float = PROGRESS_EVERY_S) -> None:
        self._clock = clock
        self._every_s = every_s
        self._windows: dict[str, _Window] = {}

    def _window(self, job_id: str) -> _Window:
        window = self._windows.get(job_id)
        if window is None:
            window = self._windows[job_id] = _Window(started_at=self._clock())
        return window

    def retried(self, job_id: str, *, throttled: bool) -> None:
        """A call that will be made again (a 429 counts as both a retry and a throttle)."""
        window = self._window(job_id)
        window.retries += 1
        window.throttled += throttled

    def rows(self, job_id: str, statuses: Counter[str]) -> None:
        """Rows recorded without a call of their own (cancelled, decided by a read)."""
        self._window(job_id).rows.update(statuses)

    def request(
        self,
        job_id: str,
        statuses: Counter[str],
        *,
        latency_ms: float,
        throttled: bool,
    ) -> None:
        """A request whose rows were recorded (its last attempt's latency)."""
        window = self._window(job_id)
        window.rows.update(statuses)
        window.requests += 1
        window.throttled += throttled
        window.latencies_ms.append(latency_ms)

    def maybe_log(self, job_id: str, *, done: int, total: int, rate: float) -> None:
        """Write the job's line if ``every_s`` passed since the last one, and start anew."""
        window = self._window(job_id)
        now = self._clock()
        if window.done_at_start is None:
            window.done_at_start = done
        elapsed_s = now - window.started_at
        if elapsed_s < self._every_s:
            return
        rows_per_s = (done - window.done_at_start) / elapsed_s
        eta_s = round((total - done) / rows_per_s) if rows_per_s > 0 and done < total else None
        log.info(
            "job.progress",
            done=done,
            total=total,
            rows=dict(window.rows),
            requests=window.requests,
            throttled=window.throttled,
            retries=window.retries,
            rate=round(rate, 2),
            rows_per_s=round(rows_per_s, 1),
            eta_s=eta_s,
            latency_ms_p50=_quantile(window.latencies_ms, 50),
            latency_ms_p95=_quantile(window.latencies_ms, 95),
            interval_s=round(elapsed_s, 1),
        )
        self._windows[job_id] = _Window(started_at=now, done_at_start=done)

    def forget(self, job_id: str) -> None:
        """The job is over: no more lines for it from this process."""
        self._windows.pop(job_id, None)


def _quantile(values: list[float], percent: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[percent - 1], 1)
