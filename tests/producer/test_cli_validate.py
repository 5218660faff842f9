"""``tagsweep validate``: the plan on stdout, errors on stderr, exit 0 or 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

IMG = "67e17426-359e-49fb-aa12-0bd1756ec240"


def tagsweep(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "producer.cli", *args],
        capture_output=True,
        text=True,
        input=stdin,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path.cwd())},
    )


def test_a_valid_file_prints_the_plan_and_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "ok.csv"
    rows = "".join(f"{IMG},k{i},v\n" for i in range(25))
    path.write_text(f"image_id,key,value\n{rows}{IMG},k0,v\n")
    result = tagsweep("validate", str(path), "--project-id", "p", "--region", "r", "--rate", "2")
    assert result.returncode == 0, result.stderr
    assert "rows read   26" in result.stdout
    assert "duplicate 1" in result.stdout
    assert "requests    2 (at most 20 tags each)" in result.stdout
    assert "estimated   1.0s at 2 requests/s" in result.stdout
    assert result.stderr == ""


def test_invalid_rows_are_listed_on_stderr_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(f"image_id,key,value\n{IMG},,v\nnope,k,v\n")
    result = tagsweep("validate", str(path), "--project-id", "p", "--region", "r")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"{path}:2: the key is empty",
        f"{path}:3: image_id 'nope' is not a UUID",
    ]
    assert "invalid   2" in result.stdout


def test_json_output_for_scripts_reads_stdin(tmp_path: Path) -> None:
    result = tagsweep(
        "validate",
        "-",
        "--json",
        "--project-id",
        "p",
        "--region",
        "r",
        stdin=f"image_id,key\n{IMG},a\n{IMG},\n",
    )
    assert result.returncode == 2
    document = json.loads(result.stdout)
    assert document["plan"]["valid"] == 1
    assert document["plan"]["invalid"] == 1
    assert document["errors"] == ["-:3: the key is empty"]


def test_an_unreadable_file_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "data.csv.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00garbage")
    result = tagsweep("validate", str(path), "--project-id", "p", "--region", "r")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(f"{path}")


def test_a_header_that_is_not_utf8_is_one_readable_line(tmp_path: Path) -> None:
    """Like a data row with such bytes (``FILE:LINE: the row is not valid UTF-8``), but the
    header decides every column, so the file is refused; the bytes are shown as ``\\xff``, not
    as Python's surrogate escapes."""
    path = tmp_path / "latin.csv"
    path.write_bytes(b"image_id,k\xffey,value\n" + f"{IMG},k,v\n".encode())
    result = tagsweep("validate", str(path), "--project-id", "p", "--region", "r")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"{path}:1: the header is not valid UTF-8 (column 2: k\\xffey); save the file as UTF-8"
    ]


def test_validate_with_api_tms_counts_tms_calls_and_says_it_deletes_by_key(tmp_path: Path) -> None:
    """45 images losing env: 3 TMS calls (20, 20, 5); a key TMS refuses goes through IMS."""
    images = [f"{n:08x}-359e-49fb-aa12-0bd1756ec240" for n in range(45)]
    rows = "".join(f"{image},env,v{n}\n" for n, image in enumerate(images))
    path = tmp_path / "tms.csv"
    path.write_text(f"image_id,key,value\n{rows}{images[0]},{'k' * 37},v\n")
    result = tagsweep("validate", str(path), "--project-id", "p", "--region", "r", "--api", "tms")
    assert result.returncode == 0, result.stderr
    assert "requests    4: 3 TMS (up to 20 images each), 1 IMS" in result.stdout
    assert (
        "api         tms: by key through TMS: a key is removed whatever its value" in result.stdout
    )


def test_a_mistake_most_rows_of_a_file_share_is_one_line_with_its_count(tmp_path: Path) -> None:
    """50 rows without a region printed 50 identical lines; now one names the cause, the count
    and the first lines, while a row's own mistake keeps its line; --all-errors lists each."""
    path = tmp_path / "noregion.csv"
    rows = "".join(f"{IMG},k{i},v\n" for i in range(50))
    path.write_text(f"image_id,key,value\n{rows}nope,k,v\n")
    result = tagsweep("validate", str(path), "--project-id", "p")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"{path}: 51 rows (lines 2, 3, 4, 5, 6, ...): no region in the row and no default "
        "(--region or TAGSWEEP_REGION) [one line for them all; --all-errors lists each]",
    ]
    assert "invalid   51" in result.stdout
    every = tagsweep("validate", str(path), "--project-id", "p", "--all-errors")
    assert every.returncode == 2
    assert len(every.stderr.splitlines()) == 51
    assert every.stderr.splitlines()[0] == f"{path}:2: no region in the row and no default " + (
        "(--region or TAGSWEEP_REGION)"
    )
    few = tmp_path / "few.csv"
    rows = "".join(f"{IMG},k{i},v,\n" for i in range(50))
    few.write_text(f"image_id,key,value,region\n{rows}{IMG},,v,r\n" + f"{IMG},x,v,\n" * 3)
    told = tagsweep("validate", str(few), "--project-id", "p").stderr.splitlines()
    assert len(told) == 2  # 53 without a region told once, the empty key on its own line
    assert told[0].startswith(f"{few}: 53 rows (lines 2, 3, 4, 5, 6, ...): no region")
    assert told[1] == f"{few}:52: the key is empty"
