"""Hostile CSVs: clear errors or faithful handling, bounded memory, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from producer.collect import Collection, collect

IMG = "67e17426-359e-49fb-aa12-0bd1756ec240"


# Runs a command and prints its peak RSS (kB). Measured from this small parent: a child forked
# straight from pytest inherits pytest's peak RSS in its own (Linux keeps the larger of the
# two across exec), which made the bound fail whenever the test session had grown past it.
PEAK_RSS = (
    "import os, subprocess, sys; p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL); "
    "_, status, usage = os.wait4(p.pid, 0); print(usage.ru_maxrss); "
    "sys.exit(os.waitstatus_to_exitcode(status))"
)


def run_validate(path: Path) -> tuple[int, list[str], float]:
    """``tagsweep validate PATH`` in a process: (exit code, stderr lines, peak RSS in MB)."""
    command = [sys.executable, "-m", "producer.cli", "validate", str(path)]
    done = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, *command, "--project-id", "p", "--region", "r"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode, done.stderr.splitlines(), int(done.stdout) / 1024


def run_collect(path: Path) -> Collection:
    return collect([str(path)], default_project_id="p", default_region="r")


def test_a_huge_field_is_one_clear_error_and_the_rest_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    path.write_text(f"image_id,key,value\n{IMG},k1,{'v' * 300_000}\n{IMG},k2,ok\n")
    collection = run_collect(path)
    assert [str(e) for e in collection.errors] == [
        f"{path}:2: malformed CSV: field larger than field limit (131072)"
    ]
    assert collection.valid == 1


def test_nul_bytes_and_formula_like_values_are_kept_as_they_are(tmp_path: Path) -> None:
    path = tmp_path / "odd.csv"
    path.write_bytes(f"image_id,key,value\n{IMG},k\x00ey,=cmd|' /C calc'!A0\n".encode())
    collection = run_collect(path)
    [image] = list(collection.iter_images())
    assert (image.tags[0].key, image.tags[0].value) == ("k\x00ey", "=cmd|' /C calc'!A0")


def test_ten_thousand_columns_are_read_with_one_short_warning(tmp_path: Path) -> None:
    extra = [f"c{i}" for i in range(10_000)]
    path = tmp_path / "wide.csv"
    path.write_text(
        ",".join(["image_id", "key", *extra]) + "\n" + ",".join([IMG, "k", *extra]) + "\n"
    )
    collection = run_collect(path)
    assert collection.valid == 1
    [warning] = collection.warnings
    assert warning.endswith(
        "c0, c1, c2, c3, c4, c5, c6, c7, c8, c9 and 9990 more not used; ignored"
    )


def test_a_200_mb_line_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    """The line is read in 1 MiB pieces; validate's peak RSS stays far below the line's size."""
    path = tmp_path / "long.csv"
    with path.open("w") as handle:
        handle.write(f"image_id,key,value\n{IMG},k,ok\n{IMG},big,")
        block = "x" * (1 << 20)
        for _ in range(200):
            handle.write(block)
        handle.write("\n")
    returncode, errors, peak_rss_mb = run_validate(path)
    assert returncode == 2
    # Each 1 MiB piece counts as a malformed line: one mistake the whole file makes, told once.
    assert errors[0].startswith(
        f"{path}: 200 rows (lines 3, 4, 5, 6, 7, ...): malformed CSV: field larger than field "
        "limit (131072)"
    )
    assert "Traceback" not in "".join(errors)
    assert peak_rss_mb < 150  # the line is 200 MB


def test_binary_garbage_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "garbage.csv"
    path.write_bytes(os.urandom(50_000))
    returncode, errors, _ = run_validate(path)
    assert returncode == 2
    assert "Traceback" not in "".join(errors)
    assert errors[0].startswith(str(path))
