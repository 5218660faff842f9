"""The count bar select shows: plain lines when stderr is not a terminal."""

from __future__ import annotations

import pytest

from producer.progress import CountBar


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
