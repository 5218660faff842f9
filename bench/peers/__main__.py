"""tagsweep beside what ops teams would otherwise use, on the same simulator and the same CSV.

    python -m bench.peers [--scale 1.0] [--scenarios A,B] [--tools "sdk 16 threads + retry,..."]

Peers: (1) the official SDK in a sequential loop, (2) the SDK in a 16-thread pool with its own
retry on, (3) Celery with one task per image (requests, ``rate_limit``, ``autoretry_for``).
Scenario A: the simulator limits to 100 requests/s with 50 ms latency, 5,000 images; B: no
limit, no latency, 20,000 images (``--scale`` multiplies the image counts). Every image has two
tags. tagsweep runs with two worker processes. Writes bench/out/peers.md, .json and .png.
CPU is user + system seconds of every client process (Redis and the simulator excluded);
peak RSS is the largest sum over the tool's processes at one time.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import redis

from bench.peers.measure import TreeSampler, wait_cpu_s
from producer.local import LocalSimulator, start_simulator, tagsweep_command
from producer.status import read_status
from producer.store.server import empty_database

OUT = Path(__file__).parents[1] / "out"
AK, SK, PROJECT = "PEERSAK0000000001", "peers-sk-0000-1111", "0123456789abcdef0123456789abcdef"
TAGSWEEP_DB, CELERY_DB = 4, 5


@dataclass(frozen=True)
class Scenario:
    name: str
    images: int
    limit_per_s: int | None
    latency_ms: int

    def simulator_args(self) -> list[str]:
        args = [
            "--ak",
            AK,
            "--sk",
            SK,
            "--project-id",
            PROJECT,
            "--latency-ms",
            str(self.latency_ms),
        ]
        return args + (["--rate-limit", str(self.limit_per_s)] if self.limit_per_s else [])


@dataclass
class Result:
    scenario: str
    tool: str
    images: int
    wall_s: float
    images_per_s: float
    share_of_limit: float | None
    throttled_429: int
    failed_rows: int
    cpu_s_per_1000_images: float
    peak_rss_mb: float


def write_csv(path: Path, images: int) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_id", "key", "value"])
        for _ in range(images):
            image = str(uuid.uuid4())
            writer.writerow([image, "env", "staging"])
            writer.writerow([image, "owner", "team-a"])


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAGSWEEP_", "HUAWEICLOUD_"))}
    env.update(HUAWEICLOUD_SDK_AK=AK, HUAWEICLOUD_SDK_SK=SK, **extra)
    return env


def redis_url(db: int) -> str:
    return os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0").rsplit("/", 1)[0] + f"/{db}"


SPAWNED: list[subprocess.Popen[bytes]] = []


def kill_spawned() -> None:
    """Leave no worker behind, whatever happened (a stray one would eat the next run's tasks)."""
    for process in SPAWNED:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)


def spawn(
    command: list[str], env: dict[str, str], sampler: TreeSampler, log: Path
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    sampler.add(process.pid)
    SPAWNED.append(process)
    return process


def finish(process: subprocess.Popen[bytes]) -> float:
    cpu_s = wait_cpu_s(process.pid)
    process.returncode = 0  # reaped by wait4 above
    return cpu_s


def wait_ready(log: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while "ready" not in log.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"worker not ready: {log}")
        time.sleep(0.2)


def stop_group(process: subprocess.Popen[bytes]) -> float:
    os.killpg(process.pid, signal.SIGTERM)
    return finish(process)


def run_script(
    module: str, csv_path: Path, sim: LocalSimulator, work: Path
) -> tuple[float, float, float, int]:
    """A one-process peer: (wall s, CPU s, peak RSS MB, failed rows)."""
    sampler = TreeSampler()
    log = work / f"{module.rsplit('.', 1)[1]}.out"
    started = time.perf_counter()
    process = spawn(
        [sys.executable, "-m", module, str(csv_path), sim.url, PROJECT], base_env(), sampler, log
    )
    sampler.start()
    cpu_s = finish(process)
    wall_s = time.perf_counter() - started
    sampler.stop()
    summary = json.loads(log.read_text().strip().splitlines()[-1])
    return wall_s, cpu_s, sampler.peak_rss_mb, int(summary["failed_rows"])


def run_celery_peer(
    scenario: Scenario, csv_path: Path, sim: LocalSimulator, work: Path
) -> tuple[float, float, float, int]:
    url = redis_url(CELERY_DB)
    empty_database(redis.Redis.from_url(url))
    rate = f"{scenario.limit_per_s}/s" if scenario.limit_per_s else ""
    env = base_env(
        REDIS_URL=url, PEER_ENDPOINT=sim.url, PEER_PROJECT_ID=PROJECT, PEER_RATE_LIMIT=rate
    )
    sampler = TreeSampler()
    worker_log = work / "celery-worker.log"
    workers = spawn(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "bench.peers.celery_peer",
            "worker",
            "-c",
            "2",
            "--loglevel",
            "INFO",
        ],
        env,
        sampler,
        worker_log,
    )
    sampler.start()
    wait_ready(worker_log)
    started = time.perf_counter()
    producer = spawn(
        [sys.executable, "-m", "bench.peers.celery_peer", str(csv_path)],
        env,
        sampler,
        work / "celery-producer.out",
    )
    cpu_s = finish(producer)
    wall_s = time.perf_counter() - started
    cpu_s += stop_group(workers)
    sampler.stop()
    summary = json.loads((work / "celery-producer.out").read_text().strip().splitlines()[-1])
    empty_database(redis.Redis.from_url(url))
    return wall_s, cpu_s, sampler.peak_rss_mb, int(summary["failed_rows"])


def run_tagsweep(
    scenario: Scenario, csv_path: Path, sim: LocalSimulator, work: Path
) -> tuple[float, float, float, int]:
    url = redis_url(TAGSWEEP_DB)
    client = redis.Redis.from_url(url, decode_responses=True)
    empty_database(client)
    env = base_env(
        REDIS_URL=url,
        TAGSWEEP_ENDPOINT=sim.url,
        TAGSWEEP_REGION="bench-1",
        HUAWEICLOUD_SDK_PROJECT_ID=PROJECT,
        TAGSWEEP_LOG_FORMAT="json",
    )
    sampler = TreeSampler()
    worker_log = work / "tagsweep-worker.log"
    workers = spawn(tagsweep_command("worker", "-c", "2"), env, sampler, worker_log)
    sampler.start()
    wait_ready(worker_log)
    rate = str(scenario.limit_per_s or 1_000_000)
    started = time.perf_counter()
    submit = spawn(
        tagsweep_command("submit", str(csv_path), "--rate", rate), env, sampler, work / "submit.out"
    )
    cpu_s = finish(submit)
    job_id = (work / "submit.out").read_text().strip().splitlines()[-1]
    while True:
        status = read_status(client, job_id)
        if status.over:
            break
        time.sleep(0.1)
    wall_s = time.perf_counter() - started
    cpu_s += stop_group(workers)
    sampler.stop()
    failed = status.missed
    empty_database(client)
    return wall_s, cpu_s, sampler.peak_rss_mb, failed


TOOLS: dict[str, Any] = {
    "sdk sequential": lambda sc, path, sim, work: run_script(
        "bench.peers.sdk_loop", path, sim, work
    ),
    "sdk 16 threads + retry": lambda sc, path, sim, work: run_script(
        "bench.peers.sdk_threads", path, sim, work
    ),
    "celery task per image": run_celery_peer,
    "tagsweep (2 workers)": run_tagsweep,
}


def sim_stats(sim: LocalSimulator) -> dict[str, Any]:
    with urllib.request.urlopen(sim.url + "/_sim/stats", timeout=10) as response:  # noqa: S310
        return dict(json.load(response))


def run_scenario(scenario: Scenario, work: Path, tools: list[str]) -> list[Result]:
    csv_path = work / f"scenario-{scenario.name}.csv"
    write_csv(csv_path, scenario.images)
    results = []
    for tool in tools:
        runner = TOOLS[tool]
        sim = start_simulator(csv_path, *scenario.simulator_args())
        try:
            wall_s, cpu_s, rss_mb, failed = runner(scenario, csv_path, sim, work)
            stats = sim_stats(sim)
        finally:
            sim.stop()
        rate = scenario.images / wall_s
        results.append(
            Result(
                scenario.name,
                tool,
                scenario.images,
                round(wall_s, 2),
                round(rate, 1),
                round(rate / scenario.limit_per_s, 3) if scenario.limit_per_s else None,
                int(stats["calls_by_status"].get("429", 0)),
                failed,
                round(cpu_s / scenario.images * 1000, 2),
                round(rss_mb, 1),
            )
        )
        print(f"  {scenario.name} {tool}: {results[-1]}", flush=True)
    return results


def markdown(results: list[Result]) -> str:
    lines = [
        "| scenario | tool | wall s | images/s | share of limit | 429s | failed rows "
        "| CPU s / 1000 images | peak RSS MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        share = f"{r.share_of_limit:.0%}" if r.share_of_limit is not None else "-"
        lines.append(
            f"| {r.scenario} | {r.tool} | {r.wall_s:.1f} | {r.images_per_s:,.1f} | {share} | "
            f"{r.throttled_429} | {r.failed_rows} | {r.cpu_s_per_1000_images:.2f} "
            f"| {r.peak_rss_mb:.0f} |"
        )
    return "\n".join(lines) + "\n"


def plot(results: list[Result], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = sorted({r.scenario for r in results})
    fig, axes = plt.subplots(len(scenarios), 2, figsize=(11, 3.4 * len(scenarios)), squeeze=False)
    for row, name in enumerate(scenarios):
        subset = [r for r in results if r.scenario == name]
        tools = [r.tool.replace(" + ", "\n+ ").replace(" (", "\n(") for r in subset]
        axes[row][0].barh(tools, [r.images_per_s for r in subset], color="tab:blue")
        axes[row][0].set_title(f"scenario {name}: images/s (higher is better)")
        axes[row][1].barh(tools, [r.cpu_s_per_1000_images for r in subset], color="tab:orange")
        axes[row][1].set_title(f"scenario {name}: client CPU s per 1000 images (lower is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--scenarios", default="A,B")
    parser.add_argument(
        "--tools", default=",".join(TOOLS), help="comma-separated, of: " + ", ".join(TOOLS)
    )
    args = parser.parse_args()
    tools = args.tools.split(",")
    unknown = set(tools) - set(TOOLS)
    if unknown:
        parser.error(f"unknown tools: {', '.join(sorted(unknown))}")
    scenarios = {
        "A": Scenario("A", int(5000 * args.scale), 100, 50),
        "B": Scenario("B", int(20000 * args.scale), None, 0),
    }
    OUT.mkdir(exist_ok=True)
    results: list[Result] = []
    atexit.register(kill_spawned)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.scenarios.split(","):
            print(f"scenario {name}: {scenarios[name]}", flush=True)
            results += run_scenario(scenarios[name], Path(tmp), tools)
    table = markdown(results)
    (OUT / "peers.md").write_text(table)
    (OUT / "peers.json").write_text(json.dumps([asdict(r) for r in results], indent=2))
    plot(results, OUT / "peers.png")
    print(table)
    print(f"written: {OUT / 'peers.md'}, peers.json, peers.png")


if __name__ == "__main__":
    main()
