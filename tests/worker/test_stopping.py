"""A chunk's view of its job's state: read from Redis at most every ``STATE_READ_S``."""

from __future__ import annotations

import asyncio
from typing import cast

from worker.engine.stopping import STATE_READ_S, StopCheck
from worker.jobs import Job, JobOptions, JobState
from worker.store import ResultStore


class SlowStates:
    """A store whose state read takes a while and is counted."""

    def __init__(self, state: JobState) -> None:
        self.state = state
        self.reads = 0

    async def job_state(self, job_id: str) -> JobState:
        self.reads += 1
        await asyncio.sleep(0.01)
        return self.state


async def test_batches_that_ask_while_a_state_read_is_on_its_way_do_not_read_again() -> None:
    now = [0.0]
    store = SlowStates(JobState.RUNNING)
    job = Job("j", JobState.RUNNING, total=1, chunks=1, options=JobOptions())
    stop = StopCheck(cast(ResultStore, store), job, lambda: now[0])
    now[0] = STATE_READ_S * 2
    # Sixteen batches find the view stale at once: one read, not sixteen.
    assert not any(await asyncio.gather(*(stop.stopped() for _ in range(16))))
    assert store.reads == 1
    # The next read comes once the view is stale again, and sees the cancel.
    store.state = JobState.CANCELLED
    assert not await stop.stopped()
    now[0] += STATE_READ_S * 2
    seen = await asyncio.gather(*(stop.stopped() for _ in range(16)))
    assert store.reads == 2
    assert seen[0]
    assert await stop.stopped()
