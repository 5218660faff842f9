"""``run``'s own lane: the job's chunks worked in the run process while its workers start.

A Celery worker takes about a second to be ready (its imports, its boot), and on a two-core
machine starting it costs a small job more than its work: ``run`` of 1,200 images took 4.3 s
where the 16-thread SDK script took 2.2 s (bench/peers/small.py). So ``run`` works the chunks
itself first, with the very engine a worker runs (``worker.runtime.Runtime.run_chunk``: the
lease, the shared limiter, the result script, the logs), in a thread of its own process, two
chunks at a time, in order. Its log lines go to the workers' log (``worker.log``), JSON, so
that the logs still add up.

When the job is not over ``HANDOVER_S`` after the lane began, ``run`` starts its workers and
queues every chunk the lane has not finished (``LocalLane``): a message for a chunk the lane
holds finds it leased (``busy``) or done, as a second delivery does, and is dropped. The lane
takes no new chunk once a worker beats; it finishes those it holds. A small job is over
before any worker would have been ready, and none is started.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import click
import redis

from producer.errors import WorkersGone
from producer.status import read_status
from producer.store import JobStore
from worker import keys
from worker.store.sync import SyncStore

if TYPE_CHECKING:
    from producer.local import LocalWorker
    from worker.runtime import Runtime

HANDOVER_S = 1.0  # about the time a worker takes to be ready: a job done by then needs none
LANES = 2  # chunks worked at once, as ``run``'s two worker processes would
PACE_S = 0.5  # the lane's pace: its rows done in the last half second, and the one before
BEAT_EVERY_S = 5.0  # as a worker's heartbeat (worker.heartbeat)


class Lane:
    """The engine in a thread of this process, on a job's chunks; imports and builds its
    runtime at once (``start``), works once given the chunks (``begin``)."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        from worker.settings import Settings

        self._env = dict(env)  # a worker's environment: REDIS_URL, credentials, TAGSWEEP_*
        # Read here, not in the thread: a wrong setting is the run's one-line error (exit 2),
        # before anything starts, as a worker's would be.
        self._settings = Settings.from_env(self._env)
        self._log_path = log_path
        self._job: tuple[str, deque[int]] | None = None
        self._given = threading.Event()  # begin or stop was called
        self._stop = threading.Event()  # take no new chunk
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Future[None] | None = None
        self._lock = threading.Lock()
        self.finished: set[int] = set()  # chunks worked to the end (or found done)
        self.settled = threading.Event()  # every chunk it took is done with
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="tagsweep-lane", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def begin(self, job_id: str, chunks: list[int]) -> None:
        """Work ``chunks`` of ``job_id``, in order."""
        self._job = (job_id, deque(chunks))
        self._given.set()

    def stop_taking(self) -> None:
        """Take no new chunk; those in hand are finished."""
        self._stop.set()
        self._given.set()

    def cancel(self, timeout_s: float = 5.0) -> None:
        """Stop now (Ctrl-C): the chunks in hand are cut short, their leases released (the
        rows recorded stay), and wait for the thread, ``timeout_s`` at most."""
        self.stop_taking()
        with self._lock:
            if self._loop is not None and self._task is not None:
                self._loop.call_soon_threadsafe(self._task.cancel)
        self.join(timeout_s)

    def join(self, timeout_s: float | None = None) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    @property
    def working(self) -> bool:
        """Whether the lane may still take or hold a chunk."""
        return self._thread.is_alive() and not (self._stop.is_set() and self._idle())

    def _idle(self) -> bool:
        return self._task is None or self._task.done()

    def _main(self) -> None:
        try:
            runtime = self._runtime()
        except Exception as exc:  # told by ``LocalCrew``, which hands over at once
            self.error = exc
            return
        try:
            self._given.wait()
            with self._lock:
                if self._job is None or self._stop.is_set():
                    return
                self._log_to_file(runtime)
                self._loop = runtime.loop
                self._task = asyncio.ensure_future(self._work(runtime, *self._job), loop=self._loop)
            runtime.loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        except Exception as exc:
            self.error = exc
        finally:
            self.settled.set()
            # Its last ``job.progress`` interval is written here (the logs add up).
            runtime.run(runtime.aclose())
            with self._lock:
                self._loop = None
                runtime.loop.close()

    def _runtime(self) -> Runtime:
        """The imports (most of the lane's start) and the runtime, while ``run`` goes on."""
        from worker.cloud.credentials import load_credentials
        from worker.runtime import Runtime

        return Runtime(self._settings, load_credentials(self._env))

    def _log_to_file(self, runtime: Runtime) -> None:
        """From now on structlog and logging write JSON lines to the workers' log: the run's
        own output is click's, on the terminal (set once the job is written: a warning of the
        run's own before then stays on the terminal)."""
        from worker.logs import configure_logging

        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        stream = self._log_path.open("a", encoding="utf-8")
        configure_logging(json_output=True, level=runtime.settings.log_level, stream=stream)

    async def _work(self, runtime: Runtime, job_id: str, chunks: deque[int]) -> None:
        from worker.engine import ChunkOutcome

        async def one_lane() -> None:
            while chunks and not self._stop.is_set():
                number = chunks.popleft()
                outcome = await runtime.run_chunk(job_id, number)
                if outcome in (ChunkOutcome.WORKED, ChunkOutcome.DONE):
                    self.finished.add(number)

        await asyncio.gather(*(one_lane() for _ in range(LANES)))


@contextlib.contextmanager
def started_lane(env: Mapping[str, str], log_path: Path) -> Iterator[Lane]:
    """The run's own lane (``producer.lane``), started; cut short when the run is."""
    lane = Lane(env, log_path)
    lane.start()
    try:
        yield lane
    except BaseException:
        lane.cancel()
        raise
    lane.stop_taking()
    lane.join()


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

    def check(self) -> None:
        """Beat for the lane; hand over to workers when the job needs them; raise
        ``WorkersGone`` when nothing is left to work it."""
        if self.lane.working:
            self._beat()
        if not self.workers:
            if self._needs_workers():
                self._hand_over()
            return
        if all(w.process.poll() is not None for w in self.workers):
            raise WorkersGone(f"the local workers exited; see {self.workers[0].log_path}")
        if self.lane.working and self._others_live():
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

    def _needs_workers(self) -> bool:
        """Whether to start the workers: the lane stopped (or failed) with the job not over,
        or, ``HANDOVER_S`` on, its pace has stopped growing (the limiter's ramp is over) and
        leaves more than a worker's start (``HANDOVER_S``) of work."""
        now = time.monotonic()
        if self.lane.working and now - self._began < HANDOVER_S:
            return False
        status = read_status(self._client, self._job_id)
        if status.over or not self.lane.working:
            return not status.over
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

    def _others_live(self) -> bool:
        """Whether a worker other than the lane beats (its own beat is counted while it
        works)."""
        since_ms = JobStore(self._client).now_ms() - keys.WORKER_LIVE_S * 1000
        return self._store.live_workers(since_ms) > 1
