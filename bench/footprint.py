"""Footprint of a big job: Redis bytes and worker log bytes per input row, speed and CPU.

    python -m bench.footprint [--images 100000] [--tags 4] [--report-rows 1000000]

A job of IMAGES x TAGS rows (400,000 by default) runs through two worker processes against the
simulator (no rate limit), first without and then with ``--backup``. For each it prints the
Redis bytes per input row (MEMORY USAGE summed over every key of the job, after it ended), the
worker log bytes per input row at the default level, images/s (first call to last, as the
simulator saw them) and worker CPU per 1,000 images. Then ``tagsweep report`` of a job of
REPORT_ROWS rows (a second job, run the same way; 0 skips it): time and peak RSS.
Uses REDIS_URL's server, database 4, flushed before and after. Takes about 10 minutes.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import redis

from bench.common import bench_redis_url, client_env, sim_worker_env, submit_job, wait_finished
from bench.measure import measure
from producer.local import start_simulator, tagsweep_command
from producer.store.server import empty_database, keys_bytes

FOOTPRINT_DB = 4
AK, SK = "FOOTAK00000000001", "foot-sk-0000-1111"
PROJECT = "0123456789abcdef0123456789abcdef"


@dataclass(frozen=True)
class Footprint:
    name: str
    rows: int
    images: int
    redis_bytes: int
    log_bytes: int
    images_per_s: float
    cpu_s: float


def write_job(path: Path, images: int, tags: int) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_id", "key", "value"])
        for _ in range(images):
            image = str(uuid.uuid4())
            writer.writerows([image, f"key-{n}", f"value-{n}"] for n in range(tags))


def job_bytes(client: redis.Redis, job_id: str) -> int:
    """MEMORY USAGE (exact: SAMPLES 0) of every key that holds something of the job."""
    return keys_bytes(client, f"*{job_id}*")


def run_job(
    name: str, csv_path: Path, rows: int, images: int, work: Path, *extra: str
) -> tuple[Footprint, str]:
    url = bench_redis_url(FOOTPRINT_DB)
    client = redis.Redis.from_url(url, decode_responses=True)
    sim = start_simulator(csv_path, "--ak", AK, "--sk", SK)
    env = sim_worker_env(url, sim.url, ak=AK, sk=SK, project_id=PROJECT)
    log_path = work / f"{name}-worker.log"
    with log_path.open("wb") as out:
        worker = subprocess.Popen(
            tagsweep_command("worker", "-c", "2"), env=env, stdout=out, start_new_session=True
        )
    try:
        time.sleep(3)  # start-up is not what this measures
        start_bytes = log_path.stat().st_size
        job_id = submit_job(env, str(csv_path), "--rate", "1000000", *extra)
        wait_finished(client, job_id, interval_s=0.5)
        with urllib.request.urlopen(sim.url + "/_sim/stats", timeout=10) as answer:  # noqa: S310
            stats = json.load(answer)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        _, _, usage = os.wait4(worker.pid, 0)
        sim.stop()
    span_s = stats["last_call_at"] - stats["first_call_at"]
    result = Footprint(
        name,
        rows,
        images,
        job_bytes(client, job_id),
        log_path.stat().st_size - start_bytes,
        images / span_s,
        usage.ru_utime + usage.ru_stime,
    )
    return result, job_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--tags", type=int, default=4)
    parser.add_argument("--report-rows", type=int, default=1_000_000)
    args = parser.parse_args()
    client = redis.Redis.from_url(bench_redis_url(FOOTPRINT_DB))
    empty_database(client)
    rows = args.images * args.tags
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        csv_path = work / "job.csv"
        write_job(csv_path, args.images, args.tags)
        for name, extra in (("no backup", ()), ("--backup", ("--backup",))):
            found, _ = run_job(name.strip("-"), csv_path, rows, args.images, work, *extra)
            results.append(found)
            empty_database(client)
        print(
            f"{'job':<12}{'rows':>10}{'Redis B/row':>13}{'log B/row':>11}{'images/s':>10}"
            f"{'CPU s/1000 img':>16}"
        )
        for r in results:
            print(
                f"{r.name:<12}{r.rows:>10,}{r.redis_bytes / r.rows:>13.1f}"
                f"{r.log_bytes / r.rows:>11.2f}{r.images_per_s:>10.0f}"
                f"{1000 * r.cpu_s / r.images:>16.2f}"
            )
        if args.report_rows:
            report_images = args.report_rows // args.tags
            big = work / "big.csv"
            write_job(big, report_images, args.tags)
            _, job_id = run_job("report", big, args.report_rows, report_images, work)
            env = client_env(REDIS_URL=bench_redis_url(FOOTPRINT_DB))
            took = measure(tagsweep_command("report", job_id, "-o", str(work / "r.csv")), env=env)
            print(
                f"report of {args.report_rows:,} rows: {took.wall_s:.1f} s, "
                f"peak RSS {took.peak_rss_mb:.0f} MB (exit {took.returncode})"
            )
    empty_database(client)


if __name__ == "__main__":
    main()
