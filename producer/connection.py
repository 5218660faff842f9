"""Connecting the command line to Redis, with one clear line when that fails."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click

from producer.store.server import answers
from worker.errors import ConfigError
from worker.redis_url import client_url, redis_problem
from worker.settings import Settings, redact_url

if TYPE_CHECKING:
    import redis


def connect_redis(url: str, *, must_answer: bool = True, wait_s: float = 0.0) -> redis.Redis:
    """A client for ``url`` that answered a PING; ``ConfigError`` (no password shown, the fix
    named) if it did not within ``wait_s`` (asked every 50 ms: a server starting, or loading
    its data). ``must_answer`` False (the exporter): a warning line, and the client."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return _connect(url, must_answer=must_answer)
        except ConfigError:
            if time.monotonic() >= deadline:
                raise
        time.sleep(0.05)


def _connect(url: str, *, must_answer: bool) -> redis.Redis:
    import redis  # here: the commands that need no Redis start faster without it

    shown, url = redact_url(url), client_url(url)
    try:
        # socket_timeout too: a TLS client on a plain port (or the reverse) waits for an answer
        # that never comes.
        probe = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
        answers(probe)
        probe.close()
        client = redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=5)
    except (redis.RedisError, OSError, ValueError) as exc:
        problem = f"cannot use Redis at {shown}: {redis_problem(exc)}"
        if must_answer or isinstance(exc, ValueError):  # a URL it cannot even read
            raise ConfigError(problem) from None
        click.echo(f"warning: {problem.rstrip('.')}; going on until it answers", err=True)
        client = redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=5)
    return client


def shared_redis_url(command: str) -> str:
    """The Redis of a command that queues for workers elsewhere, or is one (``submit``,
    ``worker``, ``--queue-only``): ``REDIS_URL``, else the default URL; ``ConfigError`` without
    ``REDIS_URL`` in a folder whose jobs live in a private Redis, which no other host can
    reach and which ``status`` and ``jobs`` there would read instead."""
    from producer.embedded import STATE_DIR, holds_private_data

    if not os.environ.get("REDIS_URL") and holds_private_data():
        raise ConfigError(
            f"{command} needs a Redis the workers share, but this folder's jobs live in the "
            f"private Redis of ./{STATE_DIR}/ (made by `tagsweep run`): set REDIS_URL to the "
            "workers' Redis, or use `tagsweep run` to work a job on this machine"
        )
    return Settings.from_env().redis_url


@contextlib.contextmanager
def job_redis(*, must_answer: bool = True) -> Iterator[redis.Redis]:
    """The Redis that holds the jobs a command asks about: ``REDIS_URL`` when set; else, in a
    directory where ``run``, ``plan`` or ``undo`` kept a private Redis (``./.tagsweep/``), that
    one (started for the command's duration if it is not running); else the default URL.
    ``must_answer``: as ``connect_redis``'s, for a shared Redis."""
    from producer.embedded import holds_private_data, running_private_url, start_embedded_redis

    settings = Settings.from_env()
    if os.environ.get("REDIS_URL") or not holds_private_data():
        yield connect_redis(settings.redis_url, must_answer=must_answer)
        return
    url = running_private_url()
    if url is not None:
        yield connect_redis(url)
        return
    private = start_embedded_redis()
    try:
        yield connect_redis(private.url)
    finally:
        private.stop()


@contextlib.contextmanager
def private_or_shared_url() -> Iterator[str]:
    """The Redis a command that calls IMS itself (``select``) shares the rate limit in:
    ``REDIS_URL`` when set; else the private Redis of ``./.tagsweep/`` that ``run`` uses, the
    running one or one started for the command's duration. The URL answered a PING."""
    from producer.embedded import running_private_url, start_embedded_redis

    url = os.environ.get("REDIS_URL") or running_private_url()
    if url:
        connect_redis(url).close()
        yield url
        return
    try:
        private = start_embedded_redis()
    except OSError as exc:  # a read-only or foreign directory, say
        raise ConfigError(f"cannot start a private Redis under ./.tagsweep/: {exc}") from None
    try:
        yield private.url
    finally:
        private.stop()
