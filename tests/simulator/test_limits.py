"""The simulator's throttle: the one-second bucket, fixed windows, their 429 text and stats."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from simulator.limits import RateLimit, Throttle
from tests.helpers import TEST_AK, TEST_PROJECT, TEST_SK, new_image_id, write_csv
from worker.cloud.auth import AkSkAuth
from worker.cloud.client import ImsClient
from worker.cloud.credentials import AkSkCredentials

Start = Callable[..., Any]


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("text", "count", "window_s", "policy"),
    [
        ("40", 40, 1, "limit:40,time:1 second"),
        ("600/30s", 600, 30, "limit:600,time:30 second"),
        ("2000/1min", 2000, 60, "limit:2000,time:1 minute"),
        ("200/5min", 200, 300, "limit:200,time:5 minute"),
        ("10/90s", 10, 90, "limit:10,time:90 second"),
    ],
)
def test_rate_limits_parse_and_are_named_as_the_gateway_names_them(
    text: str, count: float, window_s: float, policy: str
) -> None:
    limit = RateLimit.parse(text)
    assert (limit.count, limit.window_s) == (count, window_s)
    assert limit.policy_text == policy


@pytest.mark.parametrize("text", ["", "x", "40/", "40/5parsecs", "0/1s", "-3"])
def test_bad_rate_limits_are_refused_with_the_text(text: str) -> None:
    with pytest.raises(ValueError, match=r"COUNT|WINDOW"):
        RateLimit.parse(text)


def test_the_default_window_is_the_one_second_bucket_of_before() -> None:
    """A full bucket of 40 at the start, then 40 more a second, not 40 per calendar second."""
    clock = Clock()
    throttle = Throttle(RateLimit(40), clock=clock)
    assert sum(throttle.allow("a") for _ in range(50)) == 40
    clock.now += 0.5
    assert sum(throttle.allow("a") for _ in range(50)) == 20


def test_a_fixed_window_allows_count_calls_then_refuses_until_the_next_window() -> None:
    clock = Clock(3000.0)  # a window boundary: 3000 is a multiple of 30
    throttle = Throttle(RateLimit(600, 30), clock=clock)
    assert sum(throttle.allow("a") for _ in range(700)) == 600
    clock.now += 29.9
    assert not throttle.allow("a")
    assert throttle.allow("b")  # per identity
    clock.now += 0.2
    assert sum(throttle.allow("a") for _ in range(700)) == 600
    assert throttle.windows_json() == {
        "window_s": 30,
        "counts": {"0": [601, 101], "30": [600, 100]},
    }


@pytest.fixture
def seed(tmp_path: Path) -> tuple[Path, str]:
    image = new_image_id()
    rows = [{"image_id": image, "key": "env", "value": "prod"}]
    return write_csv(tmp_path / "seed.csv", rows, ["image_id", "key", "value"]), image


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "gateway",
            "The throttling threshold has been reached: "
            "policy user over ratelimit,limit:2,time:5 minute",
        ),
        ("plain", "The throttling threshold has been reached."),
    ],
)
async def test_a_429_names_the_window_like_the_real_gateway_or_says_nothing(
    start_sim: Start, seed: tuple[Path, str], message: str, expected: str
) -> None:
    server = await start_sim(seed[0], rate_limit=RateLimit(2, 300), rate_limit_message=message)
    async with aiohttp.ClientSession() as session:
        auth = AkSkAuth(AkSkCredentials(TEST_AK, TEST_SK))
        client = ImsClient(session, endpoint=server.url, auth=auth)
        outcomes = [await client.list_image_tags(TEST_PROJECT, seed[1]) for _ in range(3)]
        async with session.get(f"{server.url}/_sim/stats") as response:
            stats = await response.json()
    assert [o.http_status for o in outcomes] == [200, 200, 429]
    assert (outcomes[2].error_code, outcomes[2].error_message) == ("APIGW.0308", expected)
    assert stats["windows"]["window_s"] == 300
    assert list(stats["windows"]["counts"].values()) == [[2, 1]]


async def _statuses_from(url: str, image: str, address: str, calls: int) -> list[tuple[int, str]]:
    """Statuses and messages of ``calls`` reads sent from the local ``address``."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0))
    async with aiohttp.ClientSession(connector=connector) as session:
        auth = AkSkAuth(AkSkCredentials(TEST_AK, TEST_SK))
        client = ImsClient(session, endpoint=url, auth=auth)
        outcomes = [await client.list_image_tags(TEST_PROJECT, image) for _ in range(calls)]
    return [(o.http_status, o.error_message or "") for o in outcomes]


@pytest.mark.parametrize(
    ("policy", "second_address_statuses"),
    [("ip", [200, 200, 429]), ("user", [429, 429, 429])],
)
async def test_the_ip_policy_counts_each_source_address_and_the_user_policy_each_identity(
    start_sim: Start, seed: tuple[Path, str], policy: str, second_address_statuses: list[int]
) -> None:
    """Same credentials from 127.0.0.1 then 127.0.0.2: two allowances under ip, one under user;
    the 429 names the scope."""
    server = await start_sim(seed[0], rate_limit=RateLimit(2, 300), rate_limit_policy=policy)
    first = await _statuses_from(server.url, seed[1], "127.0.0.1", 3)
    second = await _statuses_from(server.url, seed[1], "127.0.0.2", 3)
    assert [status for status, _ in first] == [200, 200, 429]
    assert [status for status, _ in second] == second_address_statuses
    assert first[2][1].endswith(f"policy {policy} over ratelimit,limit:2,time:5 minute")


def test_the_simulator_command_refuses_a_bad_rate_limit() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "producer.cli", "simulator", "--rate-limit", "600/30parsecs"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "--rate-limit" in result.stderr
    assert "Traceback" not in result.stderr
