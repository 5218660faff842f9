"""The Celery signals of the workers' app (worker/app.py)."""

from __future__ import annotations

import os

import pytest

from worker import app


class Exited(Exception):
    """Raised by the stand-in for ``os._exit``."""


@pytest.fixture
def ends(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """What a pool process's end did, in order: ``closed`` (its runtime), then an exit code."""
    done: list[object] = []
    monkeypatch.setattr("worker.runtime.close_runtime", lambda: done.append("closed"))

    def exit_now(code: int) -> None:
        done.append(code)
        raise Exited

    monkeypatch.setattr(os, "_exit", exit_now)
    return done


def test_a_pool_process_whose_pool_closed_exits_at_once_after_closing_its_runtime(
    ends: list[object],
) -> None:
    """billiard's own way sleeps 1 s first, for a parent that has stopped reading."""
    with pytest.raises(Exited):
        app._close_process(exitcode=0)
    assert ends == ["closed", 0]


def test_a_pool_process_ended_by_a_signal_keeps_billiards_way(ends: list[object]) -> None:
    """SIGTERM to the whole group (exit code 15): its parent may not know yet that it is
    stopping, and would start a new pool process in place of one gone at once."""
    app._close_process(exitcode=15)
    assert ends == ["closed"]
