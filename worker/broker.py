"""The Celery app's broker side: Redis, JSON only, late acks, prefetch 1, priorities; and how
a chunk is queued. The command line imports this alone to queue chunks (by task name): the
worker's side (worker/app.py, worker/tasks.py) brings aiohttp and Celery's worker, about 0.3 s
of imports a command needs not pay.
"""

from __future__ import annotations

from celery import Celery

from worker.redis_url import client_url
from worker.settings import Settings

CHUNK_TASK = "tagsweep.chunk"
QUEUE = "tagsweep"
settings = Settings.from_env()

app = Celery("tagsweep", broker=settings.redis_url, include=["worker.tasks"])
app.conf.update(
    task_serializer="json",
    accept_content=["json"],  # never pickle: a message is data, not code
    result_serializer="json",
    task_ignore_result=True,
    task_acks_late=True,  # a message is acked once its chunk is worked, not when received
    task_reject_on_worker_lost=True,  # a pool child that dies gives its message back at once
    worker_prefetch_multiplier=1,
    task_default_queue=QUEUE,
    worker_hijack_root_logger=False,
    worker_redirect_stdouts=False,
    broker_connection_retry_on_startup=True,
    broker_transport_options={
        # Backstop only: leases and the reaper take back a lost worker's chunk within about
        # 35 s. A message re-delivered while its chunk is leased finds it busy and is dropped.
        "visibility_timeout": 300,
        "unacked_restore_interval": 10,
        "unacked_restore_throttle": 3,
        "queue_order_strategy": "priority",
        "priority_steps": [0, 5, 9],
        "sep": ":",
        # The BRPOP timeout (kombu's default 1 s): a stopping worker waits for the BRPOP it
        # sent to answer, so this bounds a warm stop's wait. Fractional: Redis >= 6.
        "polling_interval": 0.2,
    },
    task_default_priority=5,
)


def queue_keys() -> list[str]:
    """The broker's list keys of tagsweep's queue, one per priority step (kombu's naming)."""
    options = app.conf.broker_transport_options
    sep = options.get("sep", ":")
    return [QUEUE if step == 0 else f"{QUEUE}{sep}{step}" for step in options["priority_steps"]]


def use_broker(url: str) -> None:
    """Point this process's app at another Redis (``tagsweep run``'s private one)."""
    app.conf.broker_url = client_url(url)


def dispatch_chunk(job_id: str, number: int, *, priority: int | None = None) -> None:
    """Queue one chunk for the workers."""
    app.send_task(CHUNK_TASK, args=[job_id, number], priority=priority)
