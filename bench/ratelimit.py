"""The shared rate limit against a simulator that throttles: 40 requests/s, or 600 per 30 s.

    python -m bench.ratelimit [--images 800] [--no-backup] [--no-window]

Each case runs two worker processes on a Redis database of its own (REDIS_URL's server,
database 6): --rate 40 and --rate 400 at a limit of 40/s, each without and with --backup (a
read of the image's tags before each delete, under the same shared limit); and 1,200 images
at --rate 200 against fixed windows of 600 calls per 30 s (20/s on average), with the
gateway's 429 message naming that limit and with a plain one. Prints the achieved rate of
accepted calls, its share of the limit (over fixed windows, above 100% when the job's first and
last windows were only partly needed), the rate of deletions (what --backup costs), 429s in
all and in the first 5 s (the start transient), calls per row and the wall time; draws the
effective rate (the shared limiter's, from the workers' logs) and the accepted calls per second
over time to bench/out/ratelimit.png.
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

from bench.common import bench_redis_url, sim_worker_env, submit_job, wait_finished
from producer.local import start_simulator, start_worker
from producer.store.server import empty_database

OUT = Path(__file__).parent / "out"
BENCH_DB = 6
LIMIT = 40


@dataclass(frozen=True)
class Case:
    name: str
    rate: float
    images: int
    sim_limit: str = str(LIMIT)  # the simulator's --rate-limit
    limit_per_s: float = LIMIT
    extra: tuple[str, ...] = ()
    sim_extra: tuple[str, ...] = ()


@dataclass
class CaseResult:
    name: str
    rate: float
    limit_per_s: float
    sim_limit: str
    achieved: float  # accepted calls/s (reads and deletes)
    deletions: float  # deleting calls accepted per second
    throttled: int
    throttled_first_5s: int
    calls_first_5s: int
    calls: int
    rows: int
    wall_s: float
    effective: list[tuple[float, float]]  # (seconds since start, limiter rate)
    accepted: list[tuple[float, int]]  # (second since start, accepted calls)


def run_case(case: Case, work: Path, redis_url: str) -> CaseResult:
    name, rate = case.name, case.rate
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    empty_database(client)
    ids = [str(uuid.uuid4()) for _ in range(case.images)]
    csv_path = work / f"{name}.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_id", "key", "value"])
        writer.writerows([i, "env", "a"] for i in ids)
    sim = start_simulator(
        csv_path,
        "--ak",
        "BENCHAK",
        "--sk",
        "bench-sk-0000",
        "--rate-limit",
        case.sim_limit,
        *case.sim_extra,
    )
    env = sim_worker_env(
        redis_url,
        sim.url,
        ak="BENCHAK",
        sk="bench-sk-0000",
        TAGSWEEP_LOG_LEVEL="debug",  # the per-request lines carry the effective rate plotted
    )
    log_path = OUT / f"ratelimit-{name}-worker.log"
    log_path.unlink(missing_ok=True)
    worker = start_worker(env, processes=2, log_path=log_path)
    try:
        time.sleep(2)  # the worker's start-up is not what this measures
        started = time.monotonic()
        job_id = submit_job(env, str(csv_path), "--rate", str(rate), *case.extra)
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
    first_5s = [c for s, c in sorted(timeline.items()) if s < first + 5]
    return CaseResult(
        name,
        rate,
        case.limit_per_s,
        case.sim_limit,
        achieved,
        deleted / span_s,
        stats["calls_by_status"].get("429", 0),
        sum(t for _, t in first_5s),
        sum(c for c, _ in first_5s),
        calls,
        case.images,
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
        limit = result.limit_per_s
        axis.axhline(
            limit, color="red", linestyle="--", linewidth=1, label=f"cloud limit {limit:g}/s"
        )
        axis.set_title(f"{result.name}: --rate {result.rate:g}, limit {result.sim_limit}")
        axis.set_ylabel("requests/s")
        axis.set_ylim(0, max(limit * 2.5, 10) if limit == LIMIT else 220)
        axis.legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel("seconds since the first call")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


PLAIN = ("--rate-limit-message", "plain")


def cases(images: int, *, backup: bool, window: bool) -> list[Case]:
    chosen = [Case("at-limit", LIMIT, images), Case("over-limit", LIMIT * 10, images)]
    if backup:
        chosen += [
            Case("at-limit+backup", LIMIT, images, extra=("--backup",)),
            Case("over+backup", LIMIT * 10, images, extra=("--backup",)),
        ]
    if window:
        # 600 calls per fixed 30 s window: 20/s on average, 1,200 images take ideally 60 s.
        chosen += [
            Case("window", 200, 1200, "600/30s", 20),
            Case("window-plain", 200, 1200, "600/30s", 20, sim_extra=PLAIN),
        ]
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=800)
    parser.add_argument("--no-backup", action="store_true", help="Skip the --backup cases.")
    parser.add_argument("--no-window", action="store_true", help="Skip the 600/30s cases.")
    args = parser.parse_args()
    redis_url = bench_redis_url(BENCH_DB)
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        results = [
            run_case(case, Path(tmp), redis_url)
            for case in cases(args.images, backup=not args.no_backup, window=not args.no_window)
        ]
    print(
        f"{'case':<17}{'limit':>9}{'--rate':>8}{'calls ok/s':>12}{'share':>8}{'deletes/s':>11}"
        f"{'429s':>7}{'429s 0-5s':>14}{'calls/row':>11}{'wall s':>8}"
    )
    for r in results:
        first = f"{r.throttled_first_5s}/{r.calls_first_5s}"
        print(
            f"{r.name:<17}{r.sim_limit:>9}{r.rate:>8g}{r.achieved:>12.1f}"
            f"{r.achieved / r.limit_per_s:>8.0%}{r.deletions:>11.1f}{r.throttled:>7}{first:>14}"
            f"{r.calls / r.rows:>11.3f}{r.wall_s:>8.1f}"
        )
    png = OUT / "ratelimit.png"
    plot(results, png)
    print(f"plot: {png}")
    empty_database(redis.Redis.from_url(redis_url))


if __name__ == "__main__":
    main()
