"""The Redis transport workers consume through: kombu's, except that a message that is not
JSON at all is logged and dropped. kombu decodes each message it pops (BRPOP) before Celery
sees it, and a ``\\x00not json`` pushed onto the queue raised out of Celery's event loop as an
"Unrecoverable error": the worker exited (tests/e2e/test_reliability.py). A JSON message
Celery cannot use is Celery's to refuse, and it does, logging it (no pickle, no unknown task).
"""

from __future__ import annotations

from queue import Empty
from typing import Any

import structlog
from kombu import transport
from kombu.transport import redis as kombu_redis

log = structlog.get_logger("tagsweep.worker")


class Channel(kombu_redis.Channel):
    """kombu's Redis channel, dropping what it cannot decode."""

    def _brpop_read(self, **options: Any) -> bool:
        try:
            return bool(super()._brpop_read(**options))  # type: ignore[no-untyped-call]
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError: popped, not delivered
            log.error("message.unreadable", reason=str(exc)[:200])
            raise Empty from None  # as when BRPOP timed out: the next one is sent


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with ``Channel``."""

    Channel = Channel


def use_in_this_process() -> None:
    """Make ``redis://`` and ``rediss://`` broker URLs use ``Transport`` in this process. By
    name, not with Celery's ``broker_transport``: kombu turns TLS on from the name ``rediss``."""
    for scheme in ("redis", "rediss"):
        transport.TRANSPORT_ALIASES[scheme] = f"{__name__}:Transport"
