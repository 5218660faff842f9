"""A ``run``'s crew: its own lane (``producer.lane``), and its local workers once the job
needs them: the lane stopped with the job not over, or, ``HANDOVER_S`` on, its pace has
stopped growing with more than a worker's start of work left (docs/decisions.md, "run works a
job itself while its workers start")."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import click
import redis

from producer.errors import WorkersGone
from producer.status import JobStatus, read_status
from worker.store.sync import SyncStore

if TYPE_CHECKING:
    from producer.lane import Lane
    from producer.local import LocalWorker

HANDOVER_S = 1.0  # about the time a worker takes to be ready: a job done by then needs none
PACE_S = 0.5  # the lane's pace: its rows done in the last half second, and the one before
BEAT_EVERY_S = 5.0  # as a worker's heartbeat (worker.heartbeat)


class LocalCrew:
    """A run's lane, and its workers once the job needs them: ``check`` is called by
    ``follow_job`` between two reads of the job (every 0.1 s at first)."""

    def __init__(
        self,
        lane: Lane,
        client: redis.Redis,
        job_id: str,
        *,
        start_workers: Callable[[], list[LocalWorker]],
        redis_url: str,
    ) -> None:
        self.lane = lane
        self.workers: list[LocalWorker] = []
        self._store = SyncStore(client)
        self._client = client
        self._job_id = job_id
        self._chunks: list[int] = []
        self._start_workers = start_workers
        self._redis_url = redis_url
        self._began = 0.0
        self._seen: deque[tuple[float, int]] = deque()  # (when, rows done) of late
        self._beat_at = -BEAT_EVERY_S
        self._name = f"{socket.gethostname()}:{os.getpid()}:run"

    def begin(self, chunks: list[int]) -> None:
        self._chunks = chunks
        self._began = time.monotonic()
        self._beat()
        self.lane.begin(self._job_id, chunks)

    def check(self, status: JobStatus) -> None:
        """Given each status ``follow_job`` reads: beat for the lane; hand over to workers
        when the job needs them; raise ``WorkersGone`` when nothing is left to work it."""
        if self.lane.working:
            self._beat()
        if not self.workers:
            if self._needs_workers(status):
                self._hand_over()
            return
        if all(w.process.poll() is not None for w in self.workers):
            raise WorkersGone(f"the local workers exited; see {self.workers[0].log_path}")
        # The lane's own beat is one of the live workers while it works.
        if self.lane.working and (status.live_workers or 0) > 1:
            self.lane.stop_taking()

    def pause(self, seconds: float) -> None:
        """``follow_job``'s wait between two reads, cut short when the lane has done all it
        took: the end of a small job is seen at once."""
        if self.lane.settled.is_set():
            time.sleep(seconds)
        else:
            self.lane.settled.wait(seconds)

    def finish(self) -> None:
        """The job is over: the lane lets go (its last log lines), the workers are asked to
        stop while the report is written."""
        self.lane.stop_taking()
        self.lane.join()
        self._leave()
        for worker in self.workers:
            worker.ask_to_stop()

    def __enter__(self) -> LocalCrew:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        """However the run ends, the lane is no longer counted as a live worker (``status``
        then says an interrupted job is); cut short (Ctrl-C), it stops before the simulator
        and Redis do."""
        if exc_type is not None:
            self.lane.cancel()
        self._leave()

    def _leave(self) -> None:
        with contextlib.suppress(redis.RedisError):
            self._store.leave(self._name)

    def _needs_workers(self, status: JobStatus) -> bool:
        """Whether to start the workers: the lane stopped (or failed) with the job not over,
        or, ``HANDOVER_S`` on, its pace has stopped growing (the limiter's ramp is over) and
        leaves more than a worker's start (``HANDOVER_S``) of work."""
        now = time.monotonic()
        if status.over or (self.lane.working and now - self._began < HANDOVER_S):
            return False
        if not self.lane.working:
            # Read again: its last rows may have been recorded since ``status`` was read.
            return not read_status(self._client, self._job_id).over
        if not self.lane.untaken:
            return False  # it holds the last chunks: workers would find nothing to do
        self._seen.append((now, status.done))
        while now - self._seen[0][0] > 2 * PACE_S:
            self._seen.popleft()
        then, done_then = self._seen[0]
        if now - then < 1.5 * PACE_S:
            return False  # its pace is not known yet
        middle = next(seen for seen in self._seen if seen[0] >= now - PACE_S)
        earlier = (middle[1] - done_then) / max(middle[0] - then, 1e-3)
        pace = (status.done - middle[1]) / max(now - middle[0], 1e-3)
        left = status.job.total - status.done
        return pace < 1.2 * earlier and left > pace * HANDOVER_S

    def _hand_over(self) -> None:
        if self.lane.error is not None:
            click.echo(
                f"run: working in this process failed ({self.lane.error}); its workers take over",
                err=True,
            )
        self.workers = self._start_workers()
        from worker.broker import dispatch_chunk, use_broker  # Celery: when needed only

        use_broker(self._redis_url)
        for number in self._chunks:
            if number not in self.lane.finished:
                dispatch_chunk(self._job_id, number)

    def _beat(self) -> None:
        now = time.monotonic()
        if now - self._beat_at >= BEAT_EVERY_S:
            self._beat_at = now
            self._store.beat(self._name)
