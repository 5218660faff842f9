"""`tagsweep submit` of a 1,000,000-row file, beside one Celery message per image.

    python -m bench.submit [--rows 1000000] [--sample-images 5000]

Target (issue: engine): at least 100,000 rows/s for submit. The baseline sends one
``apply_async`` per image (what a naive Celery design does) for a sample of images in the same
run, and its rows/s is extrapolated from the sample. Uses REDIS_URL's server, database 7,
flushed before and after.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import redis

from bench.validate import build_file
from producer.store import JobStore
from producer.store.server import empty_database, used_memory_bytes

BENCH_DB = 7


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--tags-per-image", type=int, default=4)
    parser.add_argument("--sample-images", type=int, default=5000)
    args = parser.parse_args()
    base = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0").rsplit("/", 1)[0]
    url = f"{base}/{BENCH_DB}"
    client = redis.Redis.from_url(url)
    empty_database(client)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.validate",
            "--build-only",
            "--rows",
            str(args.rows),
            "--tags-per-image",
            str(args.tags_per_image),
        ],
        check=True,
    )
    path = build_file(args.rows, args.tags_per_image)
    env = {**os.environ, "REDIS_URL": url}
    tagsweep = str(Path(sys.executable).with_name("tagsweep"))
    started = time.perf_counter()
    subprocess.run(
        [tagsweep, "submit", str(path), "--project-id", "p", "--region", "r"],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    submit_s = time.perf_counter() - started
    # kombu's priority emulation keeps one list per priority step: tagsweep, tagsweep:5, ...
    queues = ["tagsweep", "tagsweep:0", "tagsweep:5", "tagsweep:9"]
    messages, _, _ = JobStore(redis.Redis.from_url(url, decode_responses=True)).fleet(queues, 0)
    used_mb = used_memory_bytes(client) / 2**20
    empty_database(client)

    os.environ["REDIS_URL"] = url
    from worker.app import app

    started = time.perf_counter()
    for n in range(args.sample_images):
        app.send_task(
            "bench.one_image", args=[f"image-{n}", [["k", "v", [n]]] * args.tags_per_image]
        )
    per_image_s = time.perf_counter() - started
    empty_database(client)

    ours = args.rows / submit_s
    baseline = args.sample_images * args.tags_per_image / per_image_s
    print(f"file: {path.name}, {args.rows:,} rows, {args.rows // args.tags_per_image:,} images")
    print(
        f"tagsweep submit:            {submit_s:6.2f} s  {ours:10,.0f} rows/s  "
        f"({messages:,} messages, Redis {used_mb:,.0f} MB)"
    )
    print(
        f"one apply_async per image:  {per_image_s:6.2f} s for {args.sample_images:,} images  "
        f"{baseline:10,.0f} rows/s (extrapolated)"
    )
    print(f"ratio: {ours / baseline:.1f}x; target >= 100,000 rows/s")


if __name__ == "__main__":
    main()
