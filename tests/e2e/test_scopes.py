"""The allowance's scope, read from the 429 (#23): under a gateway policy ``ip`` (the
simulator's ``--rate-limit-policy ip``), workers leaving through their own addresses each get
a schedule of their own; workers of one egress group share one. Correctness only: the rates
are measured by ``python -m bench.scopes``."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from tests.helpers import MakeScene, Scene, seeded

IP_POLICY = ("--rate-limit", "40", "--rate-limit-policy", "ip")


def run_two(scene: Scene, job_csv: Path, *egress_ids: str) -> dict[str, int]:
    """Two one-process workers on 127.0.0.1 and 127.0.0.2 with these egress ids, one job."""
    for address, egress in zip(("127.0.0.1", "127.0.0.2"), egress_ids, strict=True):
        scene.add_worker(processes=1, TAGSWEEP_SOURCE_ADDRESS=address, TAGSWEEP_EGRESS_ID=egress)
    _, status = scene.run(job_csv, "--rate", "400", "--chunk-requests", "20", timeout_s=90)
    return dict(status.counts)


def schedules_learnt(redis_url: str) -> list[dict[str, str]]:
    """What each schedule of the test's Redis learnt (``keys.rate_memory``)."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return [dict(client.hgetall(key)) for key in client.scan_iter("tagsweep:rate:*:learnt")]
    finally:
        client.close()


def moved(scene: Scene) -> list[bool]:
    """Per worker: whether it moved its calls to an ip schedule."""
    return [
        any(e.get("event") == "ratelimit.scope" and e.get("scope") == "ip" for e in w.log_events())
        for w in scene.workers
    ]


@pytest.mark.parametrize(("egress_ids", "ip_schedules"), [(("a", "b"), 2), (("nat", "nat"), 1)])
def test_an_ip_policy_gives_each_egress_group_its_schedule_and_its_learnt_limit(
    tmp_path: Path, scene: MakeScene, egress_ids: tuple[str, str], ip_schedules: int
) -> None:
    """Same credentials, two source addresses: both workers move to the ip scope the 429 names;
    two egress ids make two schedules, each learning the 40/s limit, one makes one; every row
    is deleted once either way."""
    seed, job_csv = seeded(tmp_path, 300)
    two = scene(seed, *IP_POLICY, workers=())
    assert run_two(two, job_csv, *egress_ids) == {"deleted": 300}
    assert moved(two) == [True, True]
    learnt = schedules_learnt(two.redis_url)
    assert learnt == [{"limit": "40", "window_ms": "1000"}] * ip_schedules
