"""Soak: 100,000 rows against a faulty simulator while workers are killed every 20 s.

    python -m bench.soak [--rows 100000] [--kill-every 20]

The simulator answers 10% of calls with a fault (5% 503, 3% 500, 2% dropped connections).
Two workers run; every --kill-every seconds one is SIGKILLed (main process and pool) and a new
one started. Prints rows/s, retries and kills, then proves that every input row has exactly one
final result: the results lists, the counters and the report all hold each row once.
Uses REDIS_URL's server, database 3, flushed before and after.
"""

from __future__ import annotations

import argparse
import csv
import io
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import redis

from bench.common import bench_redis_url, sim_worker_env, submit_job, wait_finished
from producer.local import LocalWorker, start_simulator, start_worker, tagsweep_command
from producer.store import JobStore
from producer.store.server import empty_database

SOAK_DB = 3
AK, SK = "SOAKAK00000000001", "soak-sk-0000-1111"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--kill-every", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=2000.0)
    args = parser.parse_args()
    url = bench_redis_url(SOAK_DB)
    client = redis.Redis.from_url(url, decode_responses=True)
    empty_database(client)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        csv_path = work / "soak.csv"
        with csv_path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["image_id", "key", "value"])
            for _ in range(args.rows // 2):
                image = str(uuid.uuid4())
                writer.writerows([[image, "env", "soak"], [image, "owner", "ops"]])
        sim = start_simulator(
            csv_path,
            "--ak",
            AK,
            "--sk",
            SK,
            "--fail-rate",
            "503=0.05",
            "--fail-rate",
            "500=0.03",
            "--drop-rate",
            "0.02",
        )
        env = sim_worker_env(url, sim.url, ak=AK, sk=SK, region="soak-1")
        workers: list[LocalWorker] = []
        spawned = 0

        def spawn() -> None:
            nonlocal spawned
            workers.append(start_worker(env, processes=1, log_path=work / f"worker-{spawned}.log"))
            spawned += 1

        try:
            spawn()
            spawn()
            started = time.monotonic()
            job_id = submit_job(
                env,
                str(csv_path),
                "--rate",
                str(args.rate),
                "--max-attempts",
                "20",
                "--breaker-min",
                "1000000",
            )
            kills, next_kill = 0, started + args.kill_every

            def kill_one_on_time() -> None:
                nonlocal kills, next_kill
                if time.monotonic() >= next_kill:
                    workers.pop(0).kill()
                    kills += 1
                    spawn()
                    next_kill += args.kill_every

            status = wait_finished(client, job_id, interval_s=0.5, on_tick=kill_one_on_time)
            wall_s = time.monotonic() - started
        finally:
            for worker in workers:
                worker.stop()
            sim.stop()
        report = subprocess.run(
            tagsweep_command("report", job_id), env=env, capture_output=True, text=True, check=True
        ).stdout
    rows = list(csv.DictReader(io.StringIO(report)))
    results = [
        ref
        for number in range(status.job.chunks)
        for ref in JobStore(client).chunk_results(job_id, number)
    ]
    attempts = sum(int(r["attempts"]) for r in rows)
    per_row = Counter((r["image_id"], r["key"]) for r in rows)
    print(
        f"rows: {args.rows:,} in {wall_s:.1f} s = {args.rows / wall_s:,.0f} rows/s; "
        f"workers killed: {kills}"
    )
    print(f"counts: {status.counts}")
    print(
        f"attempts: {attempts:,} for {len(rows):,} rows ({attempts / len(rows) - 1:.1%} retries; "
        "two rows share each request)"
    )
    checks = {
        "every row has one result in Redis": len(results) == args.rows,
        "counters add up to the rows": status.done == args.rows == status.job.total,
        "the report has each row exactly once": len(rows) == args.rows
        and max(per_row.values()) == 1,
        "every row ended deleted": status.counts == {"deleted": args.rows},
    }
    for check, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}: {check}")
    empty_database(client)


if __name__ == "__main__":
    main()
