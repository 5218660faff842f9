"""The simulator's gateway: official-SDK signatures, tampering, IAM tokens, stats, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
from yarl import URL

from simulator.config import SimUser
from tests.helpers import TEST_AK, TEST_PROJECT, TEST_SK, new_image_id, write_csv
from worker.cloud.auth import AkSkAuth
from worker.cloud.credentials import AkSkCredentials
from worker.cloud.outcomes import OutcomeKind, classify_response

Start = Callable[..., Any]
IMAGE = new_image_id()


@pytest.fixture
def seed(tmp_path: Path) -> Path:
    rows = [{"image_id": IMAGE, "key": "env", "value": "prod"}]
    return write_csv(tmp_path / "seed.csv", rows, ["image_id", "key", "value"])


def sdk_signed(url: str, body: str, *, ak: str = TEST_AK) -> tuple[str, dict[str, str]]:
    """Sign a v1 batch delete with the official SDK, as its own client would."""
    host = url.removeprefix("http://")
    path = f"/v1/{TEST_PROJECT}/cloudimages/{IMAGE}/tags/delete"
    request = SdkRequest(
        method="DELETE",
        schema="http",
        host=host,
        resource_path=path,
        query_params=[],
        header_params={
            "Content-Type": "application/json;charset=UTF-8",
            "X-Project-Id": TEST_PROJECT,
        },
        body=body,
    )
    Signer(BasicCredentials(ak=ak, sk=TEST_SK)).sign(request)
    return url + path, {k: str(v) for k, v in request.header_params.items()}


async def test_a_request_signed_by_the_official_sdk_is_accepted(
    start_sim: Start, seed: Path
) -> None:
    server = await start_sim(seed)
    body = json.dumps({"tags": [{"key": "env", "value": "prod"}]})
    url, headers = sdk_signed(server.url, body)
    async with (
        aiohttp.ClientSession() as session,
        session.delete(url, data=body.encode(), headers=headers) as response,
    ):
        assert response.status == 204
    assert server.sim.store.tags_of(TEST_PROJECT, IMAGE) == {}


async def test_the_same_request_with_one_byte_changed_is_refused(
    start_sim: Start, seed: Path
) -> None:
    server = await start_sim(seed)
    body = json.dumps({"tags": [{"key": "env", "value": "prod"}]})
    url, headers = sdk_signed(server.url, body)
    tampered = body.replace("prod", "prOd").encode()
    async with (
        aiohttp.ClientSession() as session,
        session.delete(url, data=tampered, headers=headers) as response,
    ):
        assert response.status == 401
        error = await response.json()
    assert error["error_code"] == "APIGW.0301"
    assert "verify aksk signature fail" in error["error_msg"]
    assert server.sim.store.tags_of(TEST_PROJECT, IMAGE) == {"env": "prod"}


async def test_an_unknown_ak_gets_the_gateway_get_secretkey_message(
    start_sim: Start, seed: Path
) -> None:
    """The real gateway's answer to an AK it does not know (docs/ims-api.md), which the
    client takes for refused AK/SK credentials."""
    server = await start_sim(seed)
    body = json.dumps({"tags": [{"key": "env", "value": "prod"}]})
    url, headers = sdk_signed(server.url, body, ak="NOSUCHAK4711")
    async with (
        aiohttp.ClientSession() as session,
        session.delete(url, data=body.encode(), headers=headers) as response,
    ):
        assert response.status == 401
        raw = await response.read()
    error = json.loads(raw)
    assert error["error_code"] == "APIGW.0301"
    assert error["error_msg"] == (
        "Incorrect IAM authentication information: "
        "Get secretKey failed,ak:NOSUCHAK4711,err:ak not exist"
    )
    assert classify_response(401, {}, raw, latency_ms=0).kind is OutcomeKind.SIGNATURE_FAILED


async def test_a_request_without_auth_gets_the_gateway_message(
    start_sim: Start, seed: Path
) -> None:
    server = await start_sim(seed)
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{server.url}/v2/{TEST_PROJECT}/images/{IMAGE}/tags") as response,
    ):
        assert response.status == 401
        error = await response.json()
    assert error["error_code"] == "APIGW.0301"
    assert error["error_msg"].endswith("x-auth-token not found")
    assert response.headers["X-Request-Id"] == error["request_id"]


async def test_iam_issues_a_project_scoped_token_in_x_subject_token(
    start_sim: Start, seed: Path
) -> None:
    server = await start_sim(seed, users=(SimUser("u1", "p1", "d1"),), token_ttl_s=60)
    body: dict[str, Any] = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": "u1", "password": "p1", "domain": {"name": "d1"}}},
            },
            "scope": {"project": {"id": TEST_PROJECT}},
        }
    }
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{server.url}/v3/auth/tokens", json=body) as response:
            assert response.status == 201
            token = response.headers["X-Subject-Token"]
            issued = (await response.json())["token"]
        async with session.get(
            f"{server.url}/v2/{TEST_PROJECT}/images/{IMAGE}/tags", headers={"X-Auth-Token": token}
        ) as listed:
            assert listed.status == 200
            assert (await listed.json())["tags"] == [{"key": "env", "value": "prod"}]
        body["auth"]["identity"]["password"]["user"]["password"] = "wrong"
        async with session.post(f"{server.url}/v3/auth/tokens", json=body) as refused:
            assert refused.status == 401
    assert issued["project"]["id"] == TEST_PROJECT
    assert issued["expires_at"] > issued["issued_at"]


async def test_v2_single_key_delete_is_not_idempotent(start_sim: Start, seed: Path) -> None:
    server = await start_sim(seed)
    auth = AkSkAuth(AkSkCredentials(TEST_AK, TEST_SK))
    url = URL(f"{server.url}/v2/{TEST_PROJECT}/images/{IMAGE}/tags/env")
    statuses = []
    async with aiohttp.ClientSession() as session:
        for _ in range(2):
            headers = await auth.headers_for(
                method="DELETE", url=url, headers={}, body=b"", project_id=TEST_PROJECT
            )
            async with session.delete(url, headers=headers) as response:
                statuses.append(response.status)
    assert statuses == [204, 404]


async def test_v2_action_is_case_sensitive(start_sim: Start, seed: Path) -> None:
    server = await start_sim(seed)
    auth = AkSkAuth(AkSkCredentials(TEST_AK, TEST_SK))
    url = URL(f"{server.url}/v2/{TEST_PROJECT}/images/{IMAGE}/tags/action")
    body = b'{"action":"DELETE","tags":[{"key":"env","value":"prod"}]}'
    headers = await auth.headers_for(
        method="POST",
        url=url,
        headers={"Content-Type": "application/json"},
        body=body,
        project_id=TEST_PROJECT,
    )
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as r,
    ):
        outcome = classify_response(r.status, r.headers, await r.read(), latency_ms=1)
    assert outcome.http_status == 400
    assert outcome.error_code == "IMG.0001"
    assert server.sim.store.tags_of(TEST_PROJECT, IMAGE) == {"env": "prod"}


async def test_stats_report_calls_by_status_peak_rate_and_images(
    start_sim: Start, seed: Path
) -> None:
    server = await start_sim(seed)
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            async with session.get(f"{server.url}/v2/{TEST_PROJECT}/images/{IMAGE}/tags"):
                pass
        async with session.get(f"{server.url}/_sim/stats") as response:
            stats = await response.json()
    assert stats["calls_by_status"] == {"401": 3}
    assert stats["peak_rate_per_s"] >= 1
    assert stats["images"] == 1


def test_the_simulator_command_serves_a_seeded_simulator(seed: Path) -> None:
    """``tagsweep simulator`` prints its URL and answers over HTTP until terminated."""
    import urllib.request

    command = [sys.executable, "-m", "producer.cli", "simulator", "--port", "0"]
    command += ["--seed", str(seed), "--ak", TEST_AK, "--sk", TEST_SK, "--fail-rate", "503=0.5"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line.startswith("simulator listening on http://127.0.0.1:")
            url = line.split()[-1]
            with urllib.request.urlopen(f"{url}/_sim/stats", timeout=5) as response:  # noqa: S310
                assert json.load(response)["images"] == 1
        finally:
            process.terminate()
        assert process.wait(timeout=10) == 0


def test_the_simulator_command_refuses_a_bad_fail_rate() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "producer.cli", "simulator", "--fail-rate", "503=2"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "--fail-rate" in result.stderr
