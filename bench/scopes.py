"""Allowances per source address: two workers under a gateway policy ``ip`` (#23).

    python -m bench.scopes [--images 600]

The simulator counts 40 calls/s per client source address (``--rate-limit 40
--rate-limit-policy ip``, its 429 naming ``policy ip``). Three cases, each a job at --rate 400
on a Redis database of its own (REDIS_URL's server, database 7): one worker process on
127.0.0.1; two on 127.0.0.1 and 127.0.0.2 (TAGSWEEP_SOURCE_ADDRESS) with their own
TAGSWEEP_EGRESS_ID; the same two with one egress id. Prints accepted calls/s, its ratio to the
one worker's, and the share of calls throttled in the first 5 s and after. Expected (#23): two
egress ids >= 1.8x one worker with < 5% throttled after 5 s; one egress id, one allowance.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from bench.common import bench_redis_url, sim_worker_env, submit_job, wait_finished
from producer.local import LocalWorker, start_simulator, start_worker
from producer.store.server import empty_database

OUT = Path(__file__).parent / "out"
BENCH_DB = 7
AK, SK = "BENCHAK", "bench-sk-0000"


@dataclass(frozen=True)
class Case:
    name: str
    egress_ids: tuple[str, ...]  # one worker process per entry, on 127.0.0.1, 127.0.0.2, ...


CASES = (
    Case("one worker", ("a",)),
    Case("two, own egress", ("a", "b")),
    Case("two, one egress", ("nat", "nat")),
)


@dataclass(frozen=True)
class Figures:
    accepted_per_s: float
    throttled_first_5s: float  # share of the calls of the first 5 s
    throttled_after_5s: float
    wall_s: float


def run_case(case: Case, seed: Path, redis_url: str) -> Figures:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    empty_database(client)
    sim = start_simulator(
        seed, "--ak", AK, "--sk", SK, "--rate-limit", "40", "--rate-limit-policy", "ip"
    )
    env = sim_worker_env(redis_url, sim.url, ak=AK, sk=SK)
    workers: list[LocalWorker] = []
    try:
        for n, egress in enumerate(case.egress_ids, 1):
            own = {"TAGSWEEP_SOURCE_ADDRESS": f"127.0.0.{n}", "TAGSWEEP_EGRESS_ID": egress}
            log_path = OUT / f"scopes-{case.name.replace(' ', '-').replace(',', '')}-{n}.log"
            log_path.unlink(missing_ok=True)
            workers.append(start_worker({**env, **own}, processes=1, log_path=log_path))
        time.sleep(2)  # the workers' start-up is not what this measures
        started = time.monotonic()
        job_id = submit_job(env, str(seed), "--rate", "400", "--chunk-requests", "20")
        wait_finished(client, job_id, interval_s=0.5)
        wall_s = time.monotonic() - started
        with urllib.request.urlopen(sim.url + "/_sim/stats", timeout=5) as response:  # noqa: S310
            stats = json.load(response)
    finally:
        for worker in workers:
            worker.stop()
        sim.stop()
        client.close()
    return figures(stats, wall_s)


def figures(stats: dict[str, Any], wall_s: float) -> Figures:
    by_status = stats["calls_by_status"]
    span_s = stats["last_call_at"] - stats["first_call_at"]
    accepted = by_status.get("204", 0) + by_status.get("200", 0)
    timeline = {int(s): c for s, c in stats["timeline"].items()}
    start = min(timeline)
    parts = [[0, 0], [0, 0]]
    for second, (calls, throttled) in timeline.items():
        part = parts[int(second >= start + 5)]
        part[0] += calls
        part[1] += throttled
    return Figures(
        (accepted - 1) / span_s,
        parts[0][1] / max(1, parts[0][0]),
        parts[1][1] / max(1, parts[1][0]),
        wall_s,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=600)
    args = parser.parse_args()
    redis_url = bench_redis_url(BENCH_DB)
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        seed = Path(tmp) / "job.csv"
        with seed.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["image_id", "key", "value"])
            writer.writerows([str(uuid.uuid4()), "env", "a"] for _ in range(args.images))
        results = [(case, run_case(case, seed, redis_url)) for case in CASES]
    one = results[0][1].accepted_per_s
    print(
        f"{'case':<18}{'calls ok/s':>11}{'x one':>7}{'429s 0-5s':>11}{'429s 5s-':>10}{'wall s':>8}"
    )
    for case, f in results:
        print(
            f"{case.name:<18}{f.accepted_per_s:>11.1f}{f.accepted_per_s / one:>7.2f}"
            f"{f.throttled_first_5s:>11.1%}{f.throttled_after_5s:>10.1%}{f.wall_s:>8.1f}"
        )
    empty_database(redis.Redis.from_url(redis_url))


if __name__ == "__main__":
    main()
