"""TMS end to end (#23): real Celery workers and Redis, the simulator serving IMS and TMS on one
port. ``--api tms`` and ``auto`` end every row as ``--api v1`` does on the same data."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

import pytest

from producer.local import tagsweep_command
from simulator.config import DEMO_DOMAIN_ID
from tests.helpers import TEST_PROJECT, MakeScene, Scene, images, run_cli, user_env, write

HEADER = ["image_id", "key", "value"]
# A key IMS takes and TMS does not (over 36 characters): through IMS whatever --api.
LONG_KEY = "k" * 40


@pytest.mark.parametrize("api", ["v1", "tms", "auto"])
def test_shared_keys_go_20_images_a_call_and_every_row_ends_as_through_v1(
    tmp_path: Path, scene: MakeScene, api: str
) -> None:
    """100 images lose env and owner, 10 of them a key TMS refuses too, 10 images do not
    exist: deleted and not_found per row, whichever API; TMS takes 6 calls for 110 images."""
    present, missing = images(100), images(10)
    seed = [[i, k, f"{k}-ü"] for i in present for k in ("env", "owner", "keep")]
    seed += [[i, LONG_KEY, "x"] for i in present[:10]]
    made = scene(
        write(tmp_path / "seed.csv", HEADER, seed), HUAWEICLOUD_SDK_DOMAIN_ID=DEMO_DOMAIN_ID
    )
    rows = [[i, k, f"{k}-ü"] for i in present + missing for k in ("env", "owner")]
    rows += [[i, LONG_KEY, "x"] for i in present[:10]]
    job_csv = write(tmp_path / "job.csv", HEADER, rows)

    job_id, status = made.run(
        job_csv, "--api", api, "--tms-endpoint", made.sim.url, "--rate", "200", timeout_s=60
    )

    assert status.counts == {"deleted": 210, "not_found": 20}
    report = made.report(job_id)
    assert len(report) == len(rows)
    expected = {(i, k): "deleted" for i in present for k in ("env", "owner")}
    expected |= {(i, LONG_KEY): "deleted" for i in present[:10]}
    expected |= {(i, k): "not_found" for i in missing for k in ("env", "owner")}
    assert {(r["image_id"], r["key"]): r["status"] for r in report} == expected
    assert all(made.sim.tags(TEST_PROJECT, i) == {"keep": "keep-ü"} for i in present)
    calls = made.sim.stats()["calls_by_api"]
    if api == "v1":
        assert calls == {"ims": 110, "tms": 0}  # one call per image
    else:  # 20, 20, 20, 20, 20 and 10 images a call, the providers list, and IMS for LONG_KEY
        assert calls == {"ims": 10, "tms": 7}
    assert status.job.requests == (110 if api == "v1" else 16)


def test_backup_and_undo_of_a_tms_job_put_the_values_back(tmp_path: Path, scene: MakeScene) -> None:
    """The backup read (IMS) keeps each value TMS removed by key; undo re-creates them."""
    present = images(30)
    seed = [[i, "env", f"v{n}"] for n, i in enumerate(present)]
    made = scene(
        write(tmp_path / "seed.csv", HEADER, seed), HUAWEICLOUD_SDK_DOMAIN_ID=DEMO_DOMAIN_ID
    )
    # The CSV's value is not the image's for every other image: TMS deletes by key anyway.
    rows = [[i, "env", f"v{n}" if n % 2 else "other"] for n, i in enumerate(present)]
    job_csv = write(tmp_path / "job.csv", HEADER, rows)
    job_id, status = made.run(
        job_csv, "--api", "tms", "--tms-endpoint", made.sim.url, "--backup", "--yes", timeout_s=60
    )
    assert status.counts == {"deleted": 30}
    assert all(made.sim.tags(TEST_PROJECT, i) == {} for i in present)
    report = made.report(job_id)
    assert Counter(r["previous_value"] == f"v{n}" for n, r in enumerate(report)) == {True: 30}

    undo_id = undo(made, job_id)
    assert made.wait(undo_id, timeout_s=60).counts == {"restored": 30}
    assert all(made.sim.tags(TEST_PROJECT, i) == {"env": f"v{n}"} for n, i in enumerate(present))


def undo(made: Scene, job_id: str) -> str:
    """Queue the undo of ``job_id`` for the scene's workers; its id."""
    result = subprocess.run(
        tagsweep_command("undo", job_id, "--queue-only"),
        env=made.env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_retry_with_api_tms_sends_the_rows_again_20_images_a_call(
    tmp_path: Path, scene: MakeScene
) -> None:
    """A v1 job's rows, sent again through TMS (a delete of a key gone is deleted again)."""
    present = images(50)
    seed = write(tmp_path / "seed.csv", HEADER, [[i, "env", "a"] for i in present])
    made = scene(seed, HUAWEICLOUD_SDK_DOMAIN_ID=DEMO_DOMAIN_ID)
    job_csv = write(tmp_path / "job.csv", HEADER, [[i, "env", "a"] for i in present])
    made.env["TAGSWEEP_TMS_ENDPOINT"] = made.sim.url  # a setting the command line knows
    job_id, status = made.run(job_csv, timeout_s=60)
    assert status.counts == {"deleted": 50}
    retried = subprocess.run(
        tagsweep_command("retry", job_id, "--only", "deleted", "--api", "tms", "--queue-only"),
        env=made.env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert retried.returncode == 0, retried.stderr
    status = made.wait(job_id, timeout_s=60, until=lambda s: s.job.state.finished)
    assert status.counts == {"deleted": 50}
    assert status.job.options.api.value == "tms"
    assert made.sim.stats()["calls_by_api"] == {"ims": 50, "tms": 4}  # 20, 20, 10; providers


def test_run_simulate_api_auto_and_plan_say_a_key_goes_whatever_its_value(tmp_path: Path) -> None:
    """The demo path: run --simulate aims TMS at its own simulator, for its demo account."""
    present = images(45)
    rows = [[i, k, "a"] for i in present for k in ("env", "owner")] + [[present[0], LONG_KEY, "x"]]
    write(tmp_path / "job.csv", HEADER, rows)
    planned = run_cli(user_env(), "plan", "job.csv", "--simulate", "--api", "tms", cwd=tmp_path)
    assert planned.returncode == 0, planned.stderr
    assert (
        "by key through TMS: a key is removed whatever its value" in planned.stdout + planned.stderr
    )
    result = run_cli(
        user_env(), "run", "job.csv", "--simulate", "--api", "auto", "--yes", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    shown = result.stdout + result.stderr
    assert "requests    4: 3 TMS (up to 20 images each), 1 IMS" in shown
    assert "deleted       91" in shown


@pytest.mark.parametrize("throttle_status", ["403", "429"])
def test_tms_throttling_of_either_kind_slows_the_shared_schedule_and_loses_no_row(
    tmp_path: Path, scene: MakeScene, throttle_status: str
) -> None:
    """TMS at 4 calls/s answering 403 TMS.0006 (its own) or the gateway's 429: a job asking
    for 50/s ends every row deleted, and its 403s are throttling, never forbidden rows."""
    present = images(400)
    seed = write(tmp_path / "seed.csv", HEADER, [[i, "env", "a"] for i in present])
    made = scene(
        seed,
        "--tms-rate-limit",
        "4",
        "--tms-throttle-status",
        throttle_status,
        HUAWEICLOUD_SDK_DOMAIN_ID=DEMO_DOMAIN_ID,
    )
    job_csv = write(tmp_path / "job.csv", HEADER, [[i, "env", "a"] for i in present])
    _, status = made.run(
        job_csv, "--api", "tms", "--tms-endpoint", made.sim.url, "--rate", "50", timeout_s=90
    )
    assert status.counts == {"deleted": 400}
    stats = made.sim.stats()
    assert stats["tms_resources_deleted"] == 400
    assert stats["calls_by_status"].get(throttle_status, 0) >= 1  # it was throttled
