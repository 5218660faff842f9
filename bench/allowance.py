"""Every allowance used (#23): one cleanup through IMS v1, TMS and both, at the same windowed
limits.

    python -m bench.allowance [--images 20000] [--rate-limit 600/1min]
                              [--tms-rate-limit 600/1min] [--apis v1,tms,auto] [--no-plan]

A job deletes one shared key set (env, owner) from every image, and from 5% of the images a
key TMS does not take (over 36 characters), which goes through IMS whatever --api; 1% of its
images do not exist (not_found). Each API runs against a fresh simulator (IMS limited by
--rate-limit, TMS by --tms-rate-limit, each its own allowance) with two worker processes on
a Redis database of its own (REDIS_URL's server, database 5). Prints, per API: calls by API,
calls per image, wall time, and whether every row ended as expected (deleted, or not_found for
the missing images: the same statuses as v1). Then `plan` of the same job: its read calls per
image. The issue's figures are for 20,000 images; at 600 calls a minute v1 takes over half an
hour of that, so a shorter run passes fewer --images and says so.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import subprocess
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis

from bench.common import bench_redis_url, sim_worker_env, submit_job, wait_finished
from producer.local import start_simulator, start_worker, tagsweep_command
from producer.store.server import empty_database
from simulator.config import DEMO_DOMAIN_ID

BENCH_DB = 5
AK, SK, PROJECT = "BENCHAK", "bench-sk-0000", "0123456789abcdef0123456789abcdef"
LONG_KEY = "k" * 40  # IMS takes it, TMS does not


@dataclass(frozen=True)
class Outcome:
    """One API's run of the job."""

    api: str
    calls: dict[str, int]
    images: int
    wall_s: float
    rows: int
    rows_right: int

    def line(self) -> str:
        per_image = sum(self.calls.values()) / self.images
        by_api = ", ".join(f"{api} {n:,}" for api, n in sorted(self.calls.items()))
        return (
            f"{self.api:5} calls {by_api:24} {per_image:6.3f} calls/image  "
            f"wall {self.wall_s:7.1f} s  rows right {self.rows_right:,}/{self.rows:,}"
        )


def write_job(work: Path, images: int) -> tuple[Path, Path, dict[tuple[str, str], str]]:
    """The seed, the job and each row's expected status."""
    ids = [str(uuid.uuid4()) for _ in range(images)]
    missing = set(ids[: images // 100])
    long_key = set(ids[images // 100 : images // 100 + images // 20])
    expected: dict[tuple[str, str], str] = {}
    seed, job = work / "seed.csv", work / "job.csv"
    with seed.open("w", newline="") as seeding, job.open("w", newline="") as jobbing:
        seeds, rows = csv.writer(seeding), csv.writer(jobbing)
        seeds.writerow(["image_id", "key", "value"])
        rows.writerow(["image_id", "key", "value"])
        for image in ids:
            keys = ["env", "owner", *([LONG_KEY] if image in long_key else [])]
            for key in keys:
                if image not in missing:
                    seeds.writerow([image, key, "a"])
                rows.writerow([image, key, "a"])
                expected[(image, key)] = "not_found" if image in missing else "deleted"
            if image not in missing:
                seeds.writerow([image, "keep", "b"])
    return seed, job, expected


@contextlib.contextmanager
def simulated(
    seed: Path, args: argparse.Namespace, redis_url: str
) -> Iterator[tuple[str, dict[str, str]]]:
    """A simulator seeded from ``seed`` at the benchmark's limits: its URL and the
    environment of workers and commands aimed at it."""
    limits = ["--rate-limit", args.rate_limit, "--tms-rate-limit", args.tms_rate_limit]
    sim = start_simulator(seed, "--ak", AK, "--sk", SK, "--project-id", PROJECT, *limits)
    env = sim_worker_env(
        redis_url,
        sim.url,
        ak=AK,
        sk=SK,
        project_id=PROJECT,
        HUAWEICLOUD_SDK_DOMAIN_ID=DEMO_DOMAIN_ID,
        TAGSWEEP_TMS_ENDPOINT=sim.url,
    )
    try:
        yield sim.url, env
    finally:
        sim.stop()


def calls_by_api(url: str) -> dict[str, int]:
    with urllib.request.urlopen(url + "/_sim/stats", timeout=5) as response:  # noqa: S310
        return dict(json.load(response)["calls_by_api"])


def run_api(api: str, work: Path, args: argparse.Namespace, redis_url: str) -> Outcome:
    seed, job, expected = write_job(work, args.images)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    empty_database(client)
    with simulated(seed, args, redis_url) as (url, env):
        worker = start_worker(env, processes=2, log_path=work / f"worker-{api}.log")
        try:
            time.sleep(2)  # the worker's start-up is not what this measures
            started = time.monotonic()
            job_id = submit_job(env, str(job), "--api", api, "--rate", str(args.rate), "--yes")
            wait_finished(client, job_id, interval_s=0.5)
            wall_s = time.monotonic() - started
            calls = calls_by_api(url)
            report = _report(env, job_id)
        finally:
            worker.stop()
    right = sum(expected.get((r["image_id"], r["key"])) == r["status"] for r in report)
    return Outcome(api, calls, args.images, wall_s, len(expected), right)


def _report(env: dict[str, str], job_id: str) -> list[dict[str, str]]:
    out = subprocess.run(
        tagsweep_command("report", job_id), env=env, capture_output=True, text=True, check=True
    ).stdout
    return list(csv.DictReader(io.StringIO(out)))


def plan_reads(work: Path, args: argparse.Namespace, redis_url: str) -> float:
    """Read calls per image of `plan --api tms` of the same job, at the same limits."""
    seed, job, _ = write_job(work, args.images)
    empty_database(redis.Redis.from_url(redis_url))
    with simulated(seed, args, redis_url) as (url, env):
        command = tagsweep_command("plan", str(job), "--api", "tms", "--rate", str(args.rate))
        subprocess.run(
            [*command, "--report", str(work / "plan.csv")],
            env=env,
            cwd=work,
            capture_output=True,
            check=True,
        )
        return sum(calls_by_api(url).values()) / args.images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--rate-limit", default="600/1min", help="The simulator's IMS limit.")
    parser.add_argument("--tms-rate-limit", default="600/1min", help="The simulator's TMS limit.")
    parser.add_argument("--rate", type=float, default=200.0, help="The job's --rate.")
    parser.add_argument("--apis", default="v1,tms,auto")
    parser.add_argument("--no-plan", action="store_true")
    args = parser.parse_args()
    redis_url = bench_redis_url(BENCH_DB)
    print(
        f"{args.images:,} images (5% with a key TMS refuses, 1% missing); IMS "
        f"{args.rate_limit}, TMS {args.tms_rate_limit}; --rate {args.rate:g}"
    )
    results = []
    for api in args.apis.split(","):
        with tempfile.TemporaryDirectory() as work:
            results.append(run_api(api, Path(work), args, redis_url))
        print(results[-1].line(), flush=True)
    if "v1" in args.apis.split(","):
        base = results[0].wall_s
        for result in results[1:]:
            print(f"{result.api}: {base / result.wall_s:.1f}x faster than v1")
    if not args.no_plan:
        with tempfile.TemporaryDirectory() as work:
            reads = plan_reads(Path(work), args, redis_url)
            print(f"plan --api tms: {reads:.3f} read calls/image")


if __name__ == "__main__":
    main()
