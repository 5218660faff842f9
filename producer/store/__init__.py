"""The command line's job store: every Redis read and write of a job by a command.

It stands beside the workers' ``worker.store.ResultStore`` (asyncio); the keys and the record's
fields are named in ``worker.keys``, and the scripts both sides run are the workers'
(``worker.lua``). No other module of the producer sends Redis a command: they ask a
``JobStore``. Its parts, one module each, are put together here:

- ``records``: the job record and its counts (write, read, state changes);
- ``dispatch``: submission keys, chunks queued and pending, what an interrupted run left;
- ``rows``: chunks, the results and observations of their rows, the invalid rows;
- ``retention``: ``--keep``, the TTLs, expiry and ``forget``;
- ``listing``: many jobs at once (``jobs``, the exporter);
- ``queue``: a job's chunk messages still in the broker's queue (``forget`` drops them);
- ``upgrade``: converting a job written by an earlier version;
- ``page``: the job page's timeline and chunks.

``server`` holds what concerns the Redis server rather than a job (PING, SHUTDOWN, copying keys).
"""

from __future__ import annotations

from producer.store.dispatch import DispatchStore
from producer.store.listing import ListingStore
from producer.store.page import PageStore
from producer.store.queue import QueueStore
from producer.store.records import RecordStore
from producer.store.retention import RetentionStore
from producer.store.upgrade import UpgradeStore


class JobStore(
    RecordStore,
    DispatchStore,
    RetentionStore,
    ListingStore,
    QueueStore,
    UpgradeStore,
    PageStore,
):
    """Jobs in Redis as the commands read and change them (sync; ``client`` decodes
    responses). ``UpgradeStore`` brings ``RowStore``."""


__all__ = ["JobStore"]
