"""The broker's queue of chunk messages, as ``forget`` clears a job from it.

Celery's Redis transport (kombu) keeps a queue as a list per priority step, each message a JSON
document whose ``body`` is the task's ``[args, kwargs, embed]``, JSON, base64-encoded
(``body_encoding``); tagsweep's args are ``[job_id, chunk]`` (``worker.tasks``).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import cast

from producer.store.part import StorePart

# Messages read per LRANGE.
QUEUE_PAGE = 1000


def message_job(raw: str) -> str | None:
    """The job id a queued chunk message names (None: not a chunk message tagsweep can read)."""
    try:
        message = json.loads(raw)
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
    except (ValueError, KeyError, IndexError, TypeError, binascii.Error):
        return None
    if isinstance(args, list) and args and isinstance(args[0], str):
        return args[0]
    return None


class QueueStore(StorePart):
    """A job's messages still waiting in the broker's queue."""

    def drop_queued(self, job_id: str, queues: list[str]) -> int:
        """Remove the job's messages from the broker lists ``queues``; how many were removed.

        Read a page at a time, then each found message removed by value (LREM), so that Redis
        is never held for a whole long queue. Kombu pushes at the head (LPUSH) and workers take
        from the tail: a message pushed meanwhile moves the rest up, so a page read later may
        show a message again (its second LREM removes nothing), never skip one.
        """
        removed = 0
        for queue in queues:
            start = 0
            while True:
                page = cast(list[str], self.client.lrange(queue, start, start + QUEUE_PAGE - 1))
                found = [raw for raw in page if message_job(raw) == job_id]
                if found:
                    pipe = self.client.pipeline(transaction=False)
                    for raw in found:
                        pipe.lrem(queue, 1, raw)
                    removed += sum(int(n) for n in pipe.execute())
                    start -= len(found)  # the page's later messages moved down
                if len(page) < QUEUE_PAGE:
                    break
                start += QUEUE_PAGE
        return removed
