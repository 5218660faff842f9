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


def test_two_chunks_flushes_answered_out_of_order_never_make_a_negative_rate() -> None:
    """``run``'s lane works two chunks of a job in one process: a flush answered after a later
    one reports fewer rows done; the line keeps the highest, and its rate is not negative."""
    clock = FakeClock()
    progress = ProgressLog(clock, every_s=10.0)
    with structlog.testing.capture_logs() as captured:
        progress.recorded("j", flushed(400, deleted=40), total=800, requests=20, calls=CallTally())
        progress.let_go("j")  # one chunk ends
        clock.now += 0.5
        progress.recorded("j", flushed(374, deleted=4), total=800, requests=2, calls=CallTally())
        progress.let_go("j")
    assert [(e["done"], e["rows"]) for e in captured] == [
        (400, {"deleted": 40}),
        (400, {"deleted": 4}),
    ]
    assert all(e["rows_per_s"] >= 0 for e in captured)
