"""The job and its results in Redis, as workers read and write them (async): the one store
the engine is given, made of one part per thing it holds.

- ``worker.store.jobs``: the job record (state, stop reason, rate, retention) and the marks
  of the credentials a job's calls proved;
- ``worker.store.rows``: chunks, row results (recorded once each) and what reads found;
- ``worker.store.leases``: chunk leases;
- ``worker.store.accounts``: what was learnt about an account (TMS's type for IMS images).

The synchronous side (the reaper, heartbeats, server checks) is ``worker.store.sync``, and
sealed IAM tokens are ``worker.store.tokens``; the best rate each shared schedule ran at
without a 429 is ``worker.store.rates`` (the limiter's). Keys are named in ``worker.keys`` only.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from worker.store.accounts import AccountFacts
from worker.store.jobs import CredentialMarks, JobRecords
from worker.store.leases import LeaseStore
from worker.store.rows import CallTally, Entry, Recorded, RowStore

__all__ = ["CallTally", "Entry", "Recorded", "ResultStore"]


class ResultStore(JobRecords, CredentialMarks, RowStore, LeaseStore, AccountFacts):
    """Reads jobs and chunks, records results, and holds chunk leases."""

    def __init__(self, client: aioredis.Redis) -> None:
        """``client`` must decode responses (``decode_responses=True``)."""
        JobRecords.__init__(self, client)
        CredentialMarks.__init__(self, client)
        RowStore.__init__(self, client)
        LeaseStore.__init__(self, client)
        AccountFacts.__init__(self, client)
