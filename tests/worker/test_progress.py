"""``job.progress``: one line per job every 10 s of work from each process, never by itself,
and one more with the last interval when the process lets go of the job."""

from __future__ import annotations

import structlog

from worker.engine.progress import ProgressLog
from worker.store import CallTally, Recorded


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def flushed(done: int, **gained: int) -> Recorded:
    """What a flush that made ``gained`` rows final answered, ``done`` in all."""
    return Recorded(sum(gained.values()), done, 0, 0, None, gained)


def test_a_line_every_interval_with_what_the_process_recorded_since_the_last() -> None:
    clock = FakeClock()
    progress = ProgressLog(clock, every_s=10.0)
    with structlog.testing.capture_logs() as captured:
        # Work starts: the first flush (its rows read final already) opens the window.
        progress.recorded("j", flushed(0), total=1000, requests=0, calls=CallTally())
        for n in range(80):  # 80 requests over 10 s, one flush each
            clock.now += 0.125
            progress.latency("j", n)
            throttled = int(n % 10 == 0)
            calls = CallTally(calls=1 + throttled, throttled=throttled, retries=throttled)
            recorded = flushed(2 * (n + 1), deleted=2)
            progress.recorded("j", recorded, total=1000, requests=1, calls=calls)
            progress.maybe_log("j", rate=10.0)
    assert len(captured) == 1
    line = captured[0]
    assert line["event"] == "job.progress"
    assert line["log_level"] == "info"
    assert line["rows"] == {"deleted": 160}
    assert (line["requests"], line["calls"], line["retries"], line["throttled"]) == (80, 88, 8, 8)
    assert (line["done"], line["total"]) == (160, 1000)
    assert line["rows_per_s"] == 16.0
    assert line["eta_s"] == round(840 / 16)
    assert (line["latency_ms_p50"], line["latency_ms_p95"]) == (39.5, 75.0)


def test_letting_go_writes_the_last_interval_once_and_nothing_when_it_is_empty() -> None:
    """A chunk's end says what the process recorded since its last line; summed, the lines
    are every row it recorded."""
    clock = FakeClock()
    progress = ProgressLog(clock, every_s=10.0)
    with structlog.testing.capture_logs() as captured:
        progress.recorded("j", flushed(5, cancelled=5), total=10, requests=0, calls=CallTally())
        clock.now += 9.9
        progress.maybe_log("j", rate=1.0)  # not yet
        assert captured == []
        progress.let_go("j")
        progress.let_go("j")  # nothing new: no line
        progress.close()
    assert [(e["event"], e["rows"], e["done"]) for e in captured] == [
        ("job.progress", {"cancelled": 5}, 5)
    ]


def test_a_process_shutting_down_lets_go_of_every_job() -> None:
    progress = ProgressLog(FakeClock(), every_s=10.0)
    with structlog.testing.capture_logs() as captured:
        for job in ("a", "b"):
            progress.recorded(job, flushed(3, deleted=3), total=9, requests=1, calls=CallTally(1))
        progress.close()
    assert sorted((e["job_id"], e["requests"]) for e in captured) == [("a", 1), ("b", 1)]
