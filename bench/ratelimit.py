"""The shared rate limit against a simulator that throttles at 40 requests/s.

    python -m bench.ratelimit [--images 800] [--no-backup]

Four cases, each with two worker processes on a Redis database of its own (REDIS_URL's server,
database 6): --rate 40 and --rate 400 at a limit of 40/s, each without and with --backup (a
read of the image's tags before each delete, under the same shared limit). Prints the achieved
rate of accepted calls, its share of the limit, the rate of deletions (what --backup costs),
429s, and calls per row; draws the effective rate (the shared limiter's, from the workers'
logs) and the accepted calls per second over time to bench/out/ratelimit.png.
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
from datetime import datetime
from pathlib import Path

import redis

from bench.common import bench_redis_url, client_env, submit_job, wait_finished
from producer.local import start_simulator, start_worker

OUT = Path(__file__).parent / "out"
BENCH_DB = 6
LIMIT = 40


@dataclass
class CaseResult:
    name: str
    rate: float
    achieved: float  # accepted calls/s (reads and deletes)
    deletions: float  # deleting calls accepted per second
    throttled: int
    calls: int
    rows: int
    wall_s: float
    effective: list[tuple[float, float]]  # (seconds since start, limiter rate)
    accepted: list[tuple[float, int]]  # (second since start, accepted calls)


def run_case(
    name: str, rate: float, images: int, work: Path, redis_url: str, *extra: str
) -> CaseResult:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.flushdb()
    ids = [str(uuid.uuid4()) for _ in range(images)]
    csv_path = work / f"{name}.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_id", "key", "value"])
        writer.writerows([i, "env", "a"] for i in ids)
    sim = start_simulator(
        csv_path, "--ak", "BENCHAK", "--sk", "bench-sk-0000", "--rate-limit", str(LIMIT)
    )
    env = client_env(
        REDIS_URL=redis_url,
        HUAWEICLOUD_SDK_AK="BENCHAK",
        HUAWEICLOUD_SDK_SK="bench-sk-0000",
        HUAWEICLOUD_SDK_PROJECT_ID="0123456789abcdef0123456789abcdef",
        TAGSWEEP_ENDPOINT=sim.url,
        TAGSWEEP_REGION="bench-1",
        TAGSWEEP_LOG_FORMAT="json",
        TAGSWEEP_LOG_LEVEL="debug",  # the per-request lines carry the effective rate plotted
    )
    log_path = OUT / f"ratelimit-{name}-worker.log"
    log_path.unlink(missing_ok=True)
    worker = start_worker(env, processes=2, log_path=log_path)
    try:
        time.sleep(2)  # the worker's start-up is not what this measures
        started = time.monotonic()
        job_id = submit_job(env, str(csv_path), "--rate", str(rate), *extra)
        wait_finished(client, job_id, interval_s=0.5)
        wall_s = time.monotonic() - started
        with urllib.request.urlopen(sim.url + "/_sim/stats", timeout=5) as response:  # noqa: S310
            stats = json.load(response)
    finally:
        worker.stop()
        sim.stop()
    calls = sum(stats["calls_by_status"].values())
    deleted = stats["calls_by_status"].get("204", 0)
    ok = deleted + stats["calls_by_status"].get("200", 0)
    span_s = stats["last_call_at"] - stats["first_call_at"]
    achieved = (ok - 1) / span_s
    timeline = {int(s): c for s, c in stats["timeline"].items()}
    first = min(timeline)
    accepted = [(s - first, c[0] - c[1]) for s, c in sorted(timeline.items())]
    effective = []
    start_wall = stats["first_call_at"]
    for line in log_path.read_text().splitlines():
        event = json.loads(line)
        if event.get("event") == "batch.done":
            at = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()
            effective.append((at - start_wall, float(event["rate"])))
    return CaseResult(
        name,
        rate,
        achieved,
        deleted / span_s,
        stats["calls_by_status"].get("429", 0),
        calls,
        images,
        wall_s,
        effective,
        accepted,
    )


def plot(results: list[CaseResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(results), 1, figsize=(9, 3.2 * len(results)), sharex=True)
    for axis, result in zip(axes, results, strict=True):
        axis.plot(
            *zip(*result.effective, strict=True),
            ".",
            markersize=2,
            label="effective rate (limiter)",
        )
        axis.step(
            *zip(*result.accepted, strict=True), where="post", label="accepted calls/s (simulator)"
        )
        axis.axhline(
            LIMIT, color="red", linestyle="--", linewidth=1, label=f"cloud limit {LIMIT}/s"
        )
        axis.set_title(f"{result.name}: --rate {result.rate:g}, limit {LIMIT}/s")
        axis.set_ylabel("requests/s")
        axis.set_ylim(0, max(LIMIT * 2.5, 10))
        axis.legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel("seconds since the first call")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=800)
    parser.add_argument("--no-backup", action="store_true", help="Skip the --backup cases.")
    args = parser.parse_args()
    redis_url = bench_redis_url(BENCH_DB)
    OUT.mkdir(exist_ok=True)
    cases: list[tuple[str, float, tuple[str, ...]]] = [
        ("at-limit", LIMIT, ()),
        ("over-limit", LIMIT * 10, ()),
    ]
    if not args.no_backup:
        cases += [
            ("at-limit+backup", LIMIT, ("--backup",)),
            ("over+backup", LIMIT * 10, ("--backup",)),
        ]
    with tempfile.TemporaryDirectory() as tmp:
        results = [
            run_case(name, rate, args.images, Path(tmp), redis_url, *extra)
            for name, rate, extra in cases
        ]
    print(
        f"{'case':<17}{'--rate':>8}{'calls ok/s':>12}{'share':>8}{'deletes/s':>11}{'429s':>7}"
        f"{'calls/row':>11}{'wall s':>8}"
    )
    for r in results:
        print(
            f"{r.name:<17}{r.rate:>8g}{r.achieved:>12.1f}{r.achieved / LIMIT:>8.0%}"
            f"{r.deletions:>11.1f}{r.throttled:>7}{r.calls / r.rows:>11.3f}{r.wall_s:>8.1f}"
        )
    png = OUT / "ratelimit.png"
    plot(results, png)
    print(f"plot: {png}")
    redis.Redis.from_url(redis_url).flushdb()


if __name__ == "__main__":
    main()
