"""``job.progress``: one line per job every 10 s of work from each process, never by itself."""

from __future__ import annotations

from collections import Counter

import structlog

from worker.engine.progress import ProgressLog


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_line_every_interval_with_what_the_process_did_since_the_last() -> None:
    clock = FakeClock()
    progress = ProgressLog(clock, every_s=10.0)
    with structlog.testing.capture_logs() as captured:
        progress.maybe_log("j", done=0, total=1000, rate=10.0)  # work starts: the window opens
        for n in range(80):
            clock.now += 0.125  # 80 requests over 10 s
            progress.request("j", Counter({"deleted": 2}), latency_ms=n, throttled=False)
            if n % 10 == 0:
                progress.retried("j", throttled=True)
            progress.maybe_log("j", done=2 * (n + 1), total=1000, rate=10.0)
    assert len(captured) == 1
    line = captured[0]
    assert line["event"] == "job.progress"
    assert line["log_level"] == "info"
    assert line["rows"] == {"deleted": 160}
    assert (line["requests"], line["retries"], line["throttled"]) == (80, 8, 8)
    assert (line["done"], line["total"]) == (160, 1000)
    assert line["rows_per_s"] == 16.0
    assert line["eta_s"] == round(840 / 16)
    assert (line["latency_ms_p50"], line["latency_ms_p95"]) == (39.5, 75.0)


def test_nothing_is_written_before_the_interval_nor_for_a_forgotten_job() -> None:
    clock = FakeClock()
    progress = ProgressLog(clock, every_s=10.0)
    with structlog.testing.capture_logs() as captured:
        progress.rows("j", Counter({"cancelled": 5}))
        clock.now += 9.9
        progress.maybe_log("j", done=5, total=10, rate=1.0)
        progress.forget("j")
        clock.now += 20
        progress.maybe_log("j", done=5, total=10, rate=1.0)  # a new window starts here
    assert captured == []
