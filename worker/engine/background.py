"""Work that goes on without its caller: final writes shielded from cancellation, and the
failures nobody is left to await, each said once as a warning that names Redis.

A chunk's last results and its lease's release are written under ``asyncio.shield`` (STYLE:
protect final writes): when the chunk is cancelled first (one of its batches failed, Redis
dropped), the write goes on alone. If it then fails, nobody awaits it, and asyncio printed
``Task exception was never retrieved ... record_entries()`` with a traceback when it was
collected. ``finish_anyway`` takes that failure and logs it once; ``log_loop_error``, the
worker loop's exception handler, does the same for any other task left failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from functools import partial
from typing import Any, TypeVar

import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = structlog.get_logger("tagsweep.worker")

T = TypeVar("T")
# Redis dropped or out of reach, as redis-py says it (not a refused command).
REDIS_LOST = (RedisConnectionError, RedisTimeoutError)


async def finish_anyway(write: Awaitable[T], *, what: str) -> T:
    """Await ``write``, which a cancelled caller does not stop; a failure after the caller
    went is logged once (``what`` names the write)."""
    task = asyncio.ensure_future(write)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(partial(_say_failure, what))
        raise


def redis_lost(exc: BaseException) -> bool:
    """Whether ``exc`` (or every error of an exception group) is Redis out of reach."""
    if isinstance(exc, BaseExceptionGroup):
        return all(redis_lost(each) for each in exc.exceptions)
    return isinstance(exc, REDIS_LOST)


def log_loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The worker loop's exception handler: a Redis failure of a task left alone is a
    warning naming Redis; anything else goes to asyncio's own handler (a bug: a traceback)."""
    exc = context.get("exception")
    if isinstance(exc, RedisError):
        log.warning("redis.task_failed", error=_text(exc), task=repr(context.get("future")))
        return
    loop.default_exception_handler(context)


def _say_failure(what: str, task: asyncio.Future[Any]) -> None:
    if task.cancelled() or task.exception() is None:
        return
    exc = task.exception()
    if isinstance(exc, RedisError):
        # What it would have written is not lost: rows not recorded are not final, and the
        # chunk is worked again once Redis is back (its lease expires).
        log.warning("redis.write_failed", write=what, error=_text(exc))
    else:
        log.error("write.failed", write=what, error=repr(exc))


def _text(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
