"""Reading in pages (#23): plan and --backup read the live tags through IMS's tag query, 1,000
images a call, with the same per-row results as one read per image; real workers, Redis and a
simulator process."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from tests.helpers import MakeScene, Scene, new_image_id, run_cli, write_csv

COLUMNS = ["image_id", "key", "value"]
IMAGES = [new_image_id() for _ in range(1000)]
UNTAGGED = IMAGES[:5]  # hold neither key: only a read per image tells absent from missing
MISSING = new_image_id()  # in the CSV, not in the cloud


def seed_rows() -> list[dict[str, str]]:
    rows = []
    for n, image in enumerate(IMAGES):
        if image in UNTAGGED:
            rows.append({"image_id": image, "key": "keep", "value": "yes"})
            continue
        env = "prod" if n % 10 == 0 else "staging"
        rows.append({"image_id": image, "key": "env", "value": env})
        if n % 3:
            rows.append({"image_id": image, "key": "owner", "value": f"team-{n}"})
    return rows


def job_rows() -> list[dict[str, str]]:
    rows = []
    for n, image in enumerate(IMAGES):
        rows.append({"image_id": image, "key": "env", "value": "staging"})
        rows.append({"image_id": image, "key": "owner", "value": f"team-{n}"})
    rows.append({"image_id": MISSING, "key": "env", "value": "staging"})
    return rows


def calls(scene: Scene) -> int:
    return sum(scene.sim.stats()["calls_by_api"].values())


def planned(scene: Scene, job_csv: Path, tmp_path: Path, *args: str) -> tuple[dict, int]:
    """Per (image, key): (status, current value) of a plan, and the calls it made."""
    before = calls(scene)
    result = run_cli(scene.env, "plan", str(job_csv), "--rate", "3000", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = csv.DictReader(io.StringIO(result.stdout))
    plan = {(r["image_id"], r["key"]): (r["status"], r["current_value"]) for r in rows}
    return plan, calls(scene) - before


def test_a_plan_read_in_pages_says_what_one_read_per_image_says_in_a_hundredth_of_the_calls(
    tmp_path: Path, scene: MakeScene
) -> None:
    """1,000 images, 995 holding the job's keys (5 without, one missing): the plan in pages
    costs a count, a page and a read for each of the 6 images the listing lacks."""
    seeded = scene(write_csv(tmp_path / "seed.csv", seed_rows(), COLUMNS), workers=())
    # Two files of the same rows: two jobs (a plan of the same file again is the same job).
    first, second = (write_csv(tmp_path / name, job_rows(), COLUMNS) for name in ("a.csv", "b.csv"))

    per_image, image_calls = planned(seeded, first, tmp_path, "--read", "image")
    in_pages, paged_calls = planned(seeded, second, tmp_path)

    assert in_pages == per_image
    assert image_calls == len(IMAGES) + 1
    assert paged_calls <= 0.01 * (len(IMAGES) + 1), paged_calls
    statuses = {status for status, _ in in_pages.values()}
    assert statuses == {"would_delete", "value_differs", "absent", "image_not_found"}


def test_a_backup_read_in_pages_keeps_the_values_a_read_per_image_keeps(
    tmp_path: Path, scene: MakeScene
) -> None:
    """The same deletion with --backup, on two fresh simulators: per image and in pages end
    with the same statuses and the same previous values, in far fewer read calls."""
    job_csv = write_csv(tmp_path / "job.csv", job_rows(), COLUMNS)
    outcomes = []
    for read in ("image", "auto"):
        seeded = scene(write_csv(tmp_path / f"seed-{read}.csv", seed_rows(), COLUMNS), workers=())
        report = tmp_path / f"report-{read}.csv"
        result = run_cli(
            seeded.env,
            "run",
            str(job_csv),
            "--backup",
            "--read",
            read,
            "--rate",
            "3000",
            "--yes",
            "--report",
            str(report),
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        operations = seeded.sim.stats()["calls_by_operation"]
        with report.open() as handle:
            rows = {
                (r["image_id"], r["key"]): (r["status"], r["previous_value"])
                for r in csv.DictReader(handle)
            }
        outcomes.append((rows, operations))
    (per_image, image_ops), (in_pages, paged_ops) = outcomes
    assert in_pages == per_image
    # A count (the listing's first pass takes it) and a page; a read for each image not listed.
    assert paged_ops.get("v2_query", 0) == 2, paged_ops
    assert paged_ops["v2_list"] == len(UNTAGGED) + 1, paged_ops
    assert sum(image_ops.values()) - sum(paged_ops.values()) >= len(IMAGES) - 20
