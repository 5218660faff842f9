"""``tagsweep doctor`` end to end: the command as a process against a simulator process over
HTTP, one per account fault it must name (wrong SK, a clock 20 minutes off, a TMS that does not
list IMS, a project the account does not hold), and never a write."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from producer.cli import cli
from simulator.config import DEMO_DOMAIN_ID
from tests.helpers import (
    HEADER,
    TEST_AK,
    TEST_PROJECT,
    SimProcess,
    new_image_id,
    run_cli,
    sim_user_env,
    user_env,
    write,
)
from worker import keys

StartSim = Callable[..., SimProcess]
READS = {"v2_query", "tms_providers"}


OTHER_PROJECT = "f" * 32


@pytest.fixture
def seed(tmp_path: Path) -> Path:
    """Three images in the test project, one in another project of the same account."""
    rows = [[new_image_id(), "env", "a", TEST_PROJECT] for _ in range(3)]
    rows.append([new_image_id(), "env", "a", OTHER_PROJECT])
    return write(tmp_path / "seed.csv", [*HEADER, "project_id"], rows)


@dataclass(frozen=True)
class Doctored:
    """What ``tagsweep doctor`` printed and its exit code."""

    returncode: int
    stdout: str


def doctor(
    sim: SimProcess, cwd: Path, *args: str, unset: tuple[str, ...] = (), **env: str
) -> tuple[Doctored, dict[str, str]]:
    """Run ``tagsweep doctor`` in this process (click's runner: a process each would double
    the test's time) in a user's environment aimed at ``sim`` (IMS and TMS); what it printed
    and its lines by check name (the state and the rest of the line). ``unset``: variables
    taken out of that environment."""
    env.setdefault("HUAWEICLOUD_SDK_DOMAIN_ID", DEMO_DOMAIN_ID)
    env.setdefault("TAGSWEEP_TMS_ENDPOINT", sim.url)
    wanted: dict[str, str | None] = dict(sim_user_env(sim, **env))
    wanted.update({name: None for name in os.environ if name not in wanted})
    wanted.update(dict.fromkeys(unset))
    with contextlib.chdir(cwd):
        result = CliRunner().invoke(
            cli, ["doctor", *args], env=wanted, standalone_mode=False, catch_exceptions=False
        )
    lines = {}
    for line in result.stdout.splitlines():
        state, name, rest = line.split(maxsplit=2)
        lines[name] = f"{state} {rest}"
    return Doctored(int(result.return_value), result.stdout), lines


def failing(lines: dict[str, str]) -> list[str]:
    return [name for name, line in lines.items() if line.startswith("FAIL")]


def test_every_check_passes_against_the_simulator_with_three_reads_and_no_write(
    start_sim_process: StartSim, seed: Path, tmp_path: Path, e2e_redis_url: str
) -> None:
    """IMS's count and TMS's providers: the only calls; nothing learnt yet is said so."""
    sim = start_sim_process(seed)
    result, lines = doctor(sim, tmp_path, REDIS_URL=e2e_redis_url)
    assert result.returncode == 0, result.stdout
    assert set(lines) == {"credentials", "project", "clock", "ims", "tms", "limits"}
    assert all(line.startswith("ok ") for line in lines.values()), result.stdout
    assert f"AK/SK (AK {TEST_AK}) accepted by IMS and TMS" in lines["credentials"]
    assert "counts 3 images" in lines["ims"]
    assert "'private_image'" in lines["tms"]
    assert "IMS: nothing learnt yet" in lines["limits"]
    stats = sim.stats()
    assert set(stats["calls_by_operation"]) <= READS
    assert sum(stats["calls_by_api"].values()) <= 3


def test_a_wrong_sk_fails_the_credentials_line_and_spares_tms_a_second_bad_signature(
    start_sim_process: StartSim, seed: Path, tmp_path: Path
) -> None:
    sim = start_sim_process(seed)
    result, lines = doctor(sim, tmp_path, sk="not-the-sk")
    assert result.returncode == 2
    assert failing(lines) == ["credentials"]
    assert "verify aksk signature fail" in lines["credentials"]
    assert "HUAWEICLOUD_SDK_AK and _SK" in lines["credentials"]
    assert sim.stats()["calls_by_api"] == {"ims": 1, "tms": 0}


@pytest.mark.parametrize("skew_s", ["1200", "-1200"])
def test_a_clock_20_minutes_off_is_blamed_on_the_clock_not_the_credentials(
    start_sim_process: StartSim, seed: Path, tmp_path: Path, skew_s: str
) -> None:
    """The gateway refuses the signature; the Date of that refusal shows why."""
    sim = start_sim_process(seed, "--clock-skew-s", skew_s)
    result, lines = doctor(sim, tmp_path)
    assert result.returncode == 2
    assert failing(lines) == ["clock"]
    way = "ahead of" if skew_s == "1200" else "behind"
    assert f"20 min {way} this machine's" in lines["clock"]
    assert "NTP" in lines["clock"]
    assert lines["credentials"].startswith("skip")


def test_a_clock_6_minutes_off_is_a_warning_only(
    start_sim_process: StartSim, seed: Path, tmp_path: Path
) -> None:
    sim = start_sim_process(seed, "--clock-skew-s", "360")
    result, lines = doctor(sim, tmp_path)
    assert result.returncode == 0, result.stdout
    assert lines["clock"].startswith("warn the gateway's clock is 6 min ahead")


def test_a_tms_that_does_not_list_ims_fails_the_tms_line_naming_the_resource_type(
    start_sim_process: StartSim, seed: Path, tmp_path: Path
) -> None:
    sim = start_sim_process(seed, "--tms-no-ims")
    result, lines = doctor(sim, tmp_path)
    assert result.returncode == 2
    assert failing(lines) == ["tms"]
    assert "lists no resource type for IMS images" in lines["tms"]
    assert "--api v1" in lines["tms"]
    # With --api v1, TMS is not asked at all.
    result, lines = doctor(sim, tmp_path, "--api", "v1")
    assert result.returncode == 0, result.stdout
    assert lines["tms"].startswith("skip not used with --api v1")


def test_a_wrong_project_fails_the_project_line(
    start_sim_process: StartSim, seed: Path, tmp_path: Path
) -> None:
    """The credentials are still proved, by TMS, which takes no project; a project the account
    holds passes."""
    sim = start_sim_process(seed, "--check-project")
    result, lines = doctor(sim, tmp_path, "--project-id", "e" * 32)
    assert result.returncode == 2, result.stdout
    assert failing(lines) == ["project"], result.stdout
    assert "does not belong to the account" in lines["project"]
    assert lines["credentials"].startswith("ok AK/SK")
    result, lines = doctor(sim, tmp_path, "--project-id", OTHER_PROJECT)
    assert result.returncode == 0, result.stdout
    assert "counts 1 images" in lines["ims"]


def test_without_credentials_it_says_so_in_one_line(tmp_path: Path) -> None:
    result = run_cli(
        user_env(HUAWEICLOUD_SDK_CREDENTIALS_FILE=str(tmp_path / "none")),
        "doctor",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert len(result.stdout.splitlines()) == 1
    assert result.stdout.startswith("FAIL  credentials no credentials:")
    assert "Traceback" not in result.stderr


def test_the_limits_learnt_are_read_from_redis_and_json_says_it_all(
    start_sim_process: StartSim, seed: Path, tmp_path: Path, e2e_redis_url: str
) -> None:
    sim = start_sim_process(seed)
    client = redis.Redis.from_url(e2e_redis_url)
    bucket = keys.rate_bucket(sim.url, f"ak:{TEST_AK}")
    client.hset(keys.rate_memory(bucket), mapping={"limit": 200, "window_ms": 300_000})
    result, _ = doctor(sim, tmp_path, "--json", REDIS_URL=e2e_redis_url)
    assert result.returncode == 0, result.stdout
    document = json.loads(result.stdout)
    assert document["ok"] is True
    checks = {check["name"]: check for check in document["checks"]}
    assert checks["limits"]["detail"].startswith("IMS: 200 calls per 5 min (named by a 429)")
    assert checks["credentials"]["state"] == "ok"


def test_without_redis_the_limits_are_skipped_and_the_rest_passes(
    start_sim_process: StartSim, seed: Path, tmp_path: Path
) -> None:
    sim = start_sim_process(seed)
    result, lines = doctor(sim, tmp_path, REDIS_URL="redis://127.0.0.1:9/0")
    assert result.returncode == 0, result.stdout
    assert lines["limits"].startswith("skip no Redis answered at redis://127.0.0.1:9/0")


def test_a_password_user_is_named_and_tms_is_refused_for_its_project_token(
    start_sim_process: StartSim, seed: Path, tmp_path: Path
) -> None:
    """Tokens tagsweep gets are project-scoped; TMS takes domain-scoped ones only."""
    sim = start_sim_process(seed, "--user", "ops", "--password", "pw", "--domain", "acme")
    user = {
        "TAGSWEEP_IAM_USER": "ops",
        "TAGSWEEP_IAM_PASSWORD": "pw",
        "TAGSWEEP_IAM_DOMAIN": "acme",
        "TAGSWEEP_IAM_ENDPOINT": sim.url,
    }
    aksk = ("HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK")
    result, lines = doctor(sim, tmp_path, unset=aksk, **user)
    assert result.returncode == 2
    assert "IAM user ops of account acme accepted by IMS" in lines["credentials"]
    assert failing(lines) == ["tms"]
    assert "TMS needs AK/SK" in lines["tms"]
    assert doctor(sim, tmp_path, "--api", "v1", unset=aksk, **user)[0].returncode == 0
    # A wrong password: IAM refuses the token, and that is the credentials' line alone.
    user["TAGSWEEP_IAM_PASSWORD"] = "wrong"
    result, lines = doctor(sim, tmp_path, "--api", "v1", unset=aksk, **user)
    assert result.returncode == 2
    assert failing(lines) == ["credentials"], result.stdout
    assert "refused by IAM" in lines["credentials"]
    assert lines["ims"] == "skip not asked: IAM gave no token (see credentials)"
