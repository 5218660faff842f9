"""Do the workers' logs add up on a big job with faults? The jq commands of
docs/operations.md against the job.

    python -m bench.logs [--rows 20000] [--workers 2]

A job of ROWS one-tag rows (1% of its images missing: not_found) runs through WORKERS worker
processes (one Celery worker of one process each) against the simulator answering 10% 503s,
dropping 2% of connections and limiting each identity to 150 calls/s (the gateway's 429s).
Once it is over the workers are stopped (a warm shutdown) and the "Adding up the logs" commands
are run over their stdout: it prints their sums beside ``status``'s counts and the
job's counters in Redis, and ``job.finished``'s line. Uses REDIS_URL's server, database 7,
flushed before and after. 20,000 rows took 219 s on two busy cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis

from bench.common import bench_redis_url, sim_worker_env, submit_job, wait_finished
from producer.local import start_simulator, start_worker
from producer.store.server import empty_database
from worker.store import ResultStore

LOGS_DB = 7
AK, SK = "LOGSAK00000000001", "logs-sk-0000-2222"
PROJECT = "0123456789abcdef0123456789abcdef"
OPERATIONS = Path(__file__).resolve().parents[1] / "docs" / "operations.md"


def docs_jq_commands() -> list[str]:
    """The ``jq`` lines of docs/operations.md's "Adding up the logs" block."""
    block = OPERATIONS.read_text(encoding="utf-8").split("Adding up the logs", 1)[1]
    block = block.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.startswith("jq ")]


def run_jq(command: str, folder: Path, job_id: str) -> list[Any]:
    out = subprocess.run(
        ["bash", "-c", command],
        cwd=folder,
        env={"PATH": os.environ["PATH"], "JOB": job_id},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    decoder, values = json.JSONDecoder(), []
    while out:
        value, end = decoder.raw_decode(out)
        values.append(value)
        out = out[end:].strip()
    return values


def write_files(folder: Path, rows: int) -> tuple[Path, Path]:
    ids = [str(uuid.uuid4()) for _ in range(rows)]
    seed, job = folder / "seed.csv", folder / "job.csv"
    seed.write_text("image_id,key,value\n" + "".join(f"{i},env,a\n" for i in ids[rows // 100 :]))
    job.write_text("image_id,key,value\n" + "".join(f"{i},env,a\n" for i in ids))
    return seed, job


async def job_totals(url: str, job_id: str) -> dict[str, object]:
    client = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        totals = await ResultStore(client).totals(job_id)
    finally:
        await client.aclose()
    return {} if totals is None else totals.as_fields()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    url = bench_redis_url(LOGS_DB)
    client = redis.Redis.from_url(url, decode_responses=True)
    empty_database(client)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        seed, job_csv = write_files(folder, args.rows)
        faults = ("--fail-rate", "503=0.1", "--drop-rate", "0.02", "--rate-limit", "150")
        sim = start_simulator(seed, "--ak", AK, "--sk", SK, "--project-id", PROJECT, *faults)
        env = sim_worker_env(
            url, sim.url, ak=AK, sk=SK, project_id=PROJECT, TAGSWEEP_CONCURRENCY="32"
        )
        workers = [
            start_worker(env, processes=1, log_path=folder / f"worker-{n}.log")
            for n in range(args.workers)
        ]
        try:
            started = time.monotonic()
            job_id = submit_job(env, str(job_csv), "--rate", "1000", "--max-attempts", "3")
            status = wait_finished(client, job_id, interval_s=0.5)
            wall_s = time.monotonic() - started
        finally:
            for worker in workers:
                worker.stop()
            sim.stop()
        rows_cmd, calls_cmd, finished_cmd = docs_jq_commands()
        counts = {k: n for k, n in status.counts.items() if n}
        summed_rows = run_jq(rows_cmd, folder, job_id)[0]
        summed_calls = run_jq(calls_cmd, folder, job_id)[0]
        finished = run_jq(finished_cmd, folder, job_id)
        totals = asyncio.run(job_totals(url, job_id))
    empty_database(client)
    print(f"{args.rows:,} rows, {args.workers} workers, {wall_s:.0f} s, state {status.job.state}")
    print(f"status counts       {json.dumps(counts, sort_keys=True)}")
    print(f"jq sum of rows      {json.dumps(summed_rows, sort_keys=True)}")
    calls = {name: totals[name] for name in ("requests", "throttled", "retries")}
    print(f"job counters        {json.dumps(calls, sort_keys=True)}")
    print(f"jq sum of counters  {json.dumps(summed_calls, sort_keys=True)}")
    print(f"job.finished lines  {json.dumps(finished, sort_keys=True)}")
    same = summed_rows == counts and summed_calls == calls
    print("the logs add up" if same else "THE LOGS DO NOT ADD UP")


if __name__ == "__main__":
    main()
