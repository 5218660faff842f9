"""The start-up check of the Redis that will hold jobs (``worker.redis_safety``), for the
commands that write jobs or work them: ``submit``, ``run`` and ``worker``."""

from __future__ import annotations

import click
import structlog

from producer.connection import connect_redis

allow_eviction_option = click.option(
    "--allow-eviction",
    is_flag=True,
    help="Use a Redis whose maxmemory-policy may evict keys (rows may then be lost).",
)


def check_redis(
    url: str,
    *,
    allow_eviction: bool,
    log: bool = False,
    distributed: bool = True,
    wait_s: float = 0.0,
) -> None:
    """Refuse a Redis that may evict (``EvictionRefused``, exit 2); show the warnings on
    stderr, or as log events (``log``: a worker, whose stdout is JSON lines). ``distributed``
    False (``run`` on one machine): no warning about persistence. ``wait_s``: how long it may
    take to answer (``connect_redis``)."""
    from worker.redis_safety import check_server  # redis: only for the commands that use it

    client = connect_redis(url, wait_s=wait_s)
    try:
        warnings = check_server(client, allow_eviction=allow_eviction, distributed=distributed)
    finally:
        client.close()
    for warning in warnings:
        if log:
            structlog.get_logger("tagsweep.redis").warning("redis.unsafe", reason=warning)
        else:
            click.echo(f"warning: {warning}", err=True)


OUT_OF_MEMORY = (
    "Redis is out of memory (used memory > maxmemory) and refused the write; raise maxmemory "
    "or free memory (`tagsweep forget` old jobs), then run the command again"
)
