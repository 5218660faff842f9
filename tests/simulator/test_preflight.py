"""The gateway's quirks a preflight (``tagsweep doctor``) must see: a clock off, a wrong project."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from simulator.config import GatewayConfig
from tests.helpers import TEST_AK, TEST_PROJECT, TEST_SK, new_image_id, write_csv
from worker.cloud.auth import AkSkAuth
from worker.cloud.credentials import AkSkCredentials

Start = Callable[..., Any]
IMAGE = new_image_id()
OTHER_PROJECT = "f" * 32


@pytest.fixture
def seed(tmp_path: Path) -> Path:
    """One image in the default project, one in another project of the same account."""
    rows = [
        {"image_id": IMAGE, "key": "env", "value": "prod", "project_id": TEST_PROJECT},
        {"image_id": new_image_id(), "key": "env", "value": "dev", "project_id": OTHER_PROJECT},
    ]
    return write_csv(tmp_path / "seed.csv", rows, ["image_id", "key", "value", "project_id"])


async def signed_get(
    base: str, path_project: str, *, project_id: str = TEST_PROJECT
) -> tuple[int, dict[str, Any], str]:
    """A signed read of IMAGE's tags under ``path_project``, X-Project-Id ``project_id``."""
    url = URL(f"{base}/v2/{path_project}/images/{IMAGE}/tags")
    auth = AkSkAuth(AkSkCredentials(TEST_AK, TEST_SK))
    headers = await auth.headers_for(
        method="GET", url=url, headers={}, body=b"", project_id=project_id
    )
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status, await response.json(), response.headers["Date"]


@pytest.mark.parametrize(("skew_s", "status"), [(600, 200), (1200, 401), (-1200, 401)])
async def test_a_skewed_gateway_dates_its_answers_and_refuses_signatures_over_15_minutes_off(
    start_sim: Start, seed: Path, skew_s: float, status: int
) -> None:
    """Ten minutes off still signs; twenty either way does not. The Date header carries the
    gateway's clock, which is how a client can measure the skew."""
    server = await start_sim(seed, gateway=GatewayConfig(clock_skew_s=skew_s))
    got, body, date = await signed_get(server.url, TEST_PROJECT)
    assert got == status
    if status == 401:
        assert body["error_msg"].endswith("verify aksk signature fail")
    offset = parsedate_to_datetime(date) - datetime.now(UTC)
    assert abs(offset - timedelta(seconds=skew_s)) < timedelta(minutes=1)


async def test_without_skew_the_date_is_the_local_clock(start_sim: Start, seed: Path) -> None:
    server = await start_sim(seed)
    _, _, date = await signed_get(server.url, TEST_PROJECT)
    assert abs(parsedate_to_datetime(date) - datetime.now(UTC)) < timedelta(minutes=1)


@pytest.mark.parametrize(
    ("path_project", "header_project", "status", "code", "words"),
    [
        ("e" * 32, "e" * 32, 401, "APIGW.0301", "does not belong to the account"),
        (OTHER_PROJECT, TEST_PROJECT, 403, "APIGW.0302", "not the credentials' project"),
    ],
)
async def test_a_checking_gateway_refuses_a_project_the_account_or_credentials_do_not_hold(
    start_sim: Start,
    seed: Path,
    path_project: str,
    header_project: str,
    status: int,
    code: str,
    words: str,
) -> None:
    server = await start_sim(seed, gateway=GatewayConfig(check_project=True))
    got, body, _ = await signed_get(server.url, path_project, project_id=header_project)
    assert (got, body["error_code"]) == (status, code)
    assert words in body["error_msg"]
    assert (await signed_get(server.url, TEST_PROJECT))[0] == 200


async def test_by_default_an_unknown_project_is_only_an_image_not_found(
    start_sim: Start, seed: Path
) -> None:
    server = await start_sim(seed)
    got, body, _ = await signed_get(server.url, "e" * 32, project_id="e" * 32)
    assert (got, body["error"]["code"]) == (404, "IMG.0027")


def test_the_simulator_command_takes_the_gateway_and_tms_options(seed: Path) -> None:
    """``--clock-skew-s`` shows in the Date of any answer; the option groups reach the config."""
    command = [
        sys.executable,
        "-m",
        "producer.cli",
        "simulator",
        "--port",
        "0",
        "--seed",
        str(seed),
    ]
    command += ["--clock-skew-s", "-1200", "--check-project", "--tms-no-ims"]
    command += ["--tms-rate-limit", "2/5min", "--tms-throttle-status", "429", "--domain-id", "d1"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            url = process.stdout.readline().split()[-1]
            with urllib.request.urlopen(f"{url}/_sim/stats", timeout=5) as response:  # noqa: S310
                date = parsedate_to_datetime(response.headers["Date"])
        finally:
            process.terminate()
        assert process.wait(timeout=10) == 0
    assert abs(date - datetime.now(UTC) + timedelta(seconds=1200)) < timedelta(minutes=1)
