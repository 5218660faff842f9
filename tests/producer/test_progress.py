"""The count bar select shows: plain lines when stderr is not a terminal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import pytest

from producer import progress
from producer.progress import CountBar


@dataclass(frozen=True)
class Over:
    """The part of a ``JobStatus`` that following a job reads."""

    over: bool


def test_without_a_terminal_the_count_bar_writes_plain_lines_now_and_then(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every advance past the interval writes where it stands; nothing goes to stdout."""
    bar = CountBar(tty=False, plain_every_s=0.0)
    bar.start(2500, "project p")
    bar.advance(1000)
    bar.advance(1000)
    bar.close()
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == ["project p: 1,000 of 2,500", "project p: 2,000 of 2,500"]
    quiet = CountBar(tty=False)
    quiet.start(10, "q")
    quiet.advance(5)
    assert capsys.readouterr().err == ""


def test_following_a_job_reads_it_every_tenth_of_a_second_at_first_then_less_often(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A small job's end is seen within 0.1 s (a read a second left up to 1 s of nothing at
    the end of a 2 s job); later reads come every twentieth of the time followed so far, at
    most ``interval_s`` apart. The clock and the sleep are stand-ins: nothing sleeps."""
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    statuses = iter([False] * 80 + [True])
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(progress.time, "sleep", sleep)
    monkeypatch.setattr(progress, "read_status", lambda _client, _job: Over(next(statuses)))
    monkeypatch.setattr(progress, "progress_line", lambda status: "")
    progress.follow_job(cast(Any, None), "j", tty=False, interval_s=1.0)
    assert slept[:3] == [0.1, 0.1, 0.1]
    assert all(0.1 <= s <= 1.0 for s in slept)
    assert slept[-1] == 1.0  # after 20 s
    assert sorted(slept) == slept
