"""`tagsweep validate` on a shuffled 1,000,000-row file, beside a plain csv.reader pass.

    python -m bench.validate [--rows 1000000] [--tags-per-image 4] [--runs 3]

Targets (issue: producer): at least 150,000 rows/s, at most 4x the plain pass's time, peak RSS
at most 300 MB. Both sides run as fresh processes, so both include interpreter start-up, and
take turns run after run (the best of each is kept): this VM's speed drifts by a third within
minutes, which measured one side after the other gave ratios from 2.1x to 3.5x in one hour.
"""

from __future__ import annotations

import argparse
import csv
import random
import subprocess
import sys
import uuid
from pathlib import Path

from bench.measure import best_of_interleaved

OUT = Path(__file__).parent / "out"
PLAIN_PASS = (
    "import csv, sys\n"
    "with open(sys.argv[1], newline='', encoding='utf-8') as f:\n"
    "    for row in csv.reader(f):\n"
    "        pass\n"
)


def build_file(rows: int, tags_per_image: int, *, seed: int = 7) -> Path:
    """A shuffled CSV of ``rows`` rows over ``rows / tags_per_image`` images (cached)."""
    path = OUT / f"validate-{rows}-{tags_per_image}.csv"
    if path.exists():
        return path
    OUT.mkdir(exist_ok=True)
    rng = random.Random(seed)
    keys = [f"cost-center-{i}" for i in range(40)]
    records = []
    for _ in range(rows // tags_per_image):
        image = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        for key in rng.sample(keys, tags_per_image):
            records.append((image, key, f"value-{rng.getrandbits(40):x}"))
    rng.shuffle(records)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_id", "key", "value"])
        writer.writerows(records)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--tags-per-image", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_only:
        build_file(args.rows, args.tags_per_image)
        return
    # Built in a child process: a fork of this one would start with its memory, and peak RSS
    # (a high-water mark) would count it.
    build = [sys.executable, "-m", "bench.validate", "--build-only"]
    build += ["--rows", str(args.rows), "--tags-per-image", str(args.tags_per_image)]
    subprocess.run(build, check=True)
    path = build_file(args.rows, args.tags_per_image)
    tagsweep = str(Path(sys.executable).with_name("tagsweep"))
    plain, ours = best_of_interleaved(
        args.runs,
        [sys.executable, "-c", PLAIN_PASS, str(path)],
        [tagsweep, "validate", str(path), "--project-id", "p", "--region", "r"],
    )
    if ours.returncode != 0:
        sys.exit(f"tagsweep validate exited {ours.returncode}")
    ratio = ours.wall_s / plain.wall_s
    rate = args.rows / ours.wall_s
    print(f"file: {path.name}, {args.rows:,} rows, {args.rows // args.tags_per_image:,} images")
    print(f"{'':22} {'wall s':>8} {'CPU s':>7} {'rows/s':>10} {'peak RSS MB':>12}")
    for name, result in (("plain csv.reader pass", plain), ("tagsweep validate", ours)):
        print(
            f"{name:22} {result.wall_s:8.2f} {result.cpu_s:7.2f} "
            f"{args.rows / result.wall_s:10,.0f} "
            f"{result.peak_rss_mb:12.0f}"
        )
    print(f"time ratio tagsweep/plain: {ratio:.2f}x (target <= 4x)")
    print(f"CPU time ratio: {ours.cpu_s / plain.cpu_s:.2f}x")
    print(f"rows/s: {rate:,.0f} (target >= 150,000)")
    print(f"peak RSS: {ours.peak_rss_mb:.0f} MB (target <= 300 MB)")


if __name__ == "__main__":
    main()
