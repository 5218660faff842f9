"""`tagsweep validate` on a shuffled 1,000,000-row file, beside a plain csv.reader pass.

    python -m bench.validate [--rows 1000000] [--tags-per-image 4] [--runs 7]

Targets (issue #24): at most 3x the plain pass's time as the median of paired runs, peak RSS at
most 200 MB (and at least 150,000 rows/s). The file is clean, so validate takes its quick path
(producer/tally.py). Printed after it: the file with its first row repeated at the end (the
quick path reads the repeated pairs' rows again), and with an invalid last row (judged line by
line in its block). What the quick path leaves to the full pass (what submit and run read
with) is measured by `tagsweep validate - < FILE`: stdin takes the full pass.

Both sides run as fresh processes, so both include interpreter start-up, and take turns run
after run: this VM's speed drifts by a third within minutes, which measured one side after
the other gave ratios from 2.1x to 3.5x in one hour.
Each pair's ratio is taken under one load; their median (wall and CPU time) is the figure, the
best run of each side is printed beside it.
"""

from __future__ import annotations

import argparse
import csv
import random
import shutil
import statistics
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

from bench.measure import paired_ratios

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


def with_last_row(path: Path, name: str, last: Callable[[list[str]], list[str]]) -> Path:
    """The file with one more row, made from its first data row: clean until its last row."""
    changed = path.with_name(f"{path.stem}-{name}.csv")
    if not changed.exists():
        with path.open(encoding="utf-8", newline="") as source:
            reader = csv.reader(source)
            next(reader)
            first = next(reader)
        shutil.copyfile(path, changed)
        with changed.open("a", encoding="utf-8", newline="") as out:
            csv.writer(out, lineterminator="\n").writerow(last(first))
    return changed


def variants(path: Path) -> tuple[Path, Path]:
    """The file with its first row repeated at the end, and with an invalid last row."""
    repeat = with_last_row(path, "repeat", lambda first: first)
    return repeat, with_last_row(path, "invalid", lambda first: [first[0], "", first[2]])


def compare(
    runs: int, path: Path, rows: int, name: str, *, target: str = "", exit_code: int = 0
) -> None:
    """Print the paired figures of ``tagsweep validate`` against the plain pass on one file."""
    tagsweep = str(Path(sys.executable).with_name("tagsweep"))
    pairs = paired_ratios(
        runs,
        [sys.executable, "-c", PLAIN_PASS, str(path)],
        [tagsweep, "validate", str(path), "--project-id", "p", "--region", "r"],
    )
    if any(ours.returncode != exit_code for _, ours in pairs):
        sys.exit(f"tagsweep validate did not exit {exit_code}")
    ratio = statistics.median(ours.wall_s / plain.wall_s for plain, ours in pairs)
    cpu_ratio = statistics.median(ours.cpu_s / plain.cpu_s for plain, ours in pairs)
    plain = min((plain for plain, _ in pairs), key=lambda m: m.wall_s)
    ours = min((ours for _, ours in pairs), key=lambda m: m.wall_s)
    peak_mb = max(ours.peak_rss_mb for _, ours in pairs)
    print(f"{name}: {path.name}")
    print(f"{'best of ' + str(runs):22} {'wall s':>8} {'CPU s':>7} {'rows/s':>10}")
    for label, result in (("plain csv.reader pass", plain), ("tagsweep validate", ours)):
        print(f"{label:22} {result.wall_s:8.2f} {result.cpu_s:7.2f} {rows / result.wall_s:10,.0f}")
    print(f"time ratio tagsweep/plain, median of {runs} pairs: {ratio:.2f}x{target}")
    print(f"CPU time ratio, median of {runs} pairs: {cpu_ratio:.2f}x")
    print(f"rows/s (best): {rows / ours.wall_s:,.0f} (target >= 150,000)")
    print(f"peak RSS (highest): {peak_mb:.0f} MB (target <= 200 MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--tags-per-image", type=int, default=4)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_only:
        variants(build_file(args.rows, args.tags_per_image))
        return
    # Built in a child process: a fork of this one would start with its memory, and peak RSS
    # (a high-water mark) would count it.
    build = [sys.executable, "-m", "bench.validate", "--build-only"]
    build += ["--rows", str(args.rows), "--tags-per-image", str(args.tags_per_image)]
    subprocess.run(build, check=True)
    path = build_file(args.rows, args.tags_per_image)
    print(f"{args.rows:,} rows, {args.rows // args.tags_per_image:,} images\n")
    compare(args.runs, path, args.rows, "clean file", target=" (target <= 3x)")
    print()
    repeat, invalid = variants(path)
    compare(args.runs, repeat, args.rows + 1, "its first row repeated at the end")
    print()
    compare(args.runs, invalid, args.rows + 1, "an invalid last row", exit_code=2)


if __name__ == "__main__":
    main()
