"""``run``'s own lane: the job's chunks worked in the run process while its workers start.

A Celery worker takes about a second to be ready (its imports, its boot), and on a two-core
machine starting it costs a small job more than its work: ``run`` of 1,200 images took 4.3 s
where the 16-thread SDK script took 2.2 s (bench/peers/small.py). So ``run`` works the chunks
itself first, with the very engine a worker runs (``worker.runtime.Runtime.run_chunk``: the
lease, the shared limiter, the result script, the logs), in a thread of its own process, two
chunks at a time, in order. Its log lines go to the workers' log (``worker.log``), JSON, so
that the logs still add up.

When the job needs them (``producer.crew``), ``run`` starts its workers and queues every chunk
the lane has not finished: a message for a chunk the lane holds finds it leased (``busy``)
or done, as a second delivery does, and is dropped. The lane
takes no new chunk once a worker beats; it finishes those it holds. A small job is over
before any worker would have been ready, and none is started.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from worker.runtime import Runtime

LANES = 2  # chunks worked at once, as ``run``'s two worker processes would


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
    def untaken(self) -> int:
        """Chunks given that it has not taken yet."""
        return len(self._job[1]) if self._job is not None else 0

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
    """The run's own lane, started before Redis and the files (its imports are most of its
    start); cut short when the run is."""
    lane = Lane(env, log_path)
    lane.start()
    try:
        yield lane
    except BaseException:
        lane.cancel()
        raise
    lane.stop_taking()
    lane.join()
