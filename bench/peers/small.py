"""The small case: a whole ``tagsweep run`` of 1,200 images beside the 16-thread SDK script as a
whole process, on the same unlimited simulator, in the same run.

    python -m bench.peers.small [--images 1200] [--runs 3]

Each pair gets a fresh simulator (no limit, no latency) seeded from the same CSV (two tags per
image). ``tagsweep run`` runs in a fresh folder, as a user would type it: its private Redis, its
own lane (and its two local workers if the job needs them), ``--rate 1000000 -y``; the SDK
script is bench/peers/sdk_threads.py. Both are
timed from their start to their exit; which goes first alternates from pair to pair. Each line
splits a tool's wall time at the simulator's first and last call: start (to the first call),
work, end (from the last call to the exit). Prints the medians and tagsweep's wall time as a
share of the script's (issue #24: done at <= 0.8, median of 3 paired runs).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.peers.__main__ import PROJECT, Scenario, base_env, write_csv
from producer.local import LocalSimulator, start_simulator, tagsweep_command

TAGSWEEP, SCRIPT = "tagsweep run", "sdk 16 threads"
REPO = Path(__file__).parents[2]  # where ``python -m bench...`` finds the script


@dataclass(frozen=True)
class Timing:
    """One tool's run: wall seconds, split at the simulator's first and last call."""

    wall_s: float
    start_s: float
    work_s: float
    end_s: float
    calls: int

    def __str__(self) -> str:
        return (
            f"wall {self.wall_s:5.2f} s (start {self.start_s:4.2f}, work {self.work_s:4.2f}, "
            f"end {self.end_s:4.2f}; {self.calls:,} calls)"
        )


def timed(command: list[str], *, cwd: Path, env: dict[str, str], sim: LocalSimulator) -> Timing:
    """Run ``command`` to its end (exit 0 required) and split its wall time."""
    started_at = time.time()
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, check=False)
    wall_s = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{command[:4]} exited {done.returncode}: {done.stderr[-500:]!r}")
    with urllib.request.urlopen(sim.url + "/_sim/stats", timeout=10) as response:  # noqa: S310
        stats = json.load(response)
    first_s = stats["first_call_at"] - started_at
    last_s = stats["last_call_at"] - started_at
    calls = sum(int(n) for n in stats["calls_by_status"].values())
    return Timing(wall_s, first_s, last_s - first_s, wall_s - last_s, calls)


def run_tool(tool: str, csv_path: Path, work: Path) -> Timing:
    """One tool against a fresh simulator seeded from ``csv_path``; tagsweep in a fresh folder."""
    sim = start_simulator(csv_path, *Scenario("small", 0, None, 0).simulator_args())
    try:
        if tool == SCRIPT:
            command = [sys.executable, "-m", "bench.peers.sdk_threads", str(csv_path)]
            return timed([*command, sim.url, PROJECT], cwd=REPO, env=base_env(), sim=sim)
        folder = Path(tempfile.mkdtemp(prefix="run-", dir=work))
        env = base_env(
            TAGSWEEP_ENDPOINT=sim.url, TAGSWEEP_REGION="bench-1", HUAWEICLOUD_SDK_PROJECT_ID=PROJECT
        )
        env.pop("REDIS_URL", None)  # a fresh folder: run starts its own Redis
        command = tagsweep_command("run", str(csv_path), "--rate", "1000000", "-y")
        return timed(command, cwd=folder, env=env, sim=sim)
    finally:
        sim.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[Timing]] = {TAGSWEEP: [], SCRIPT: []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        csv_path = work / "small.csv"
        write_csv(csv_path, args.images)
        for n in range(args.runs):
            order = [TAGSWEEP, SCRIPT] if n % 2 == 0 else [SCRIPT, TAGSWEEP]
            for tool in order:
                results[tool].append(run_tool(tool, csv_path, work))
                print(f"pair {n + 1} {tool:15s} {results[tool][-1]}", flush=True)
    medians = {tool: statistics.median(t.wall_s for t in runs) for tool, runs in results.items()}
    for tool, runs in results.items():
        start_s = statistics.median(t.start_s for t in runs)
        end_s = statistics.median(t.end_s for t in runs)
        wall_s = medians[tool]
        print(f"median {tool:15s} wall {wall_s:.2f} s (start {start_s:.2f}, end {end_s:.2f})")
    ratios = [t.wall_s / s.wall_s for t, s in zip(results[TAGSWEEP], results[SCRIPT], strict=True)]
    print(
        f"{TAGSWEEP} / {SCRIPT}: {medians[TAGSWEEP] / medians[SCRIPT]:.2f}x of the medians "
        f"(per pair: {', '.join(f'{r:.2f}' for r in ratios)}; done when <= 0.8)"
    )


if __name__ == "__main__":
    main()
