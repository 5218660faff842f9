"""The simulator's TMS: X-Domain-Id, providers, batch delete and its limits, its own throttle.

Requests are signed by the official SDK's ``GlobalCredentials`` (which adds ``X-Domain-Id``
and signs it), so the simulator is checked against what a real TMS client sends.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials, GlobalCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest

from simulator.config import DEMO_DOMAIN_ID, SimUser, TmsConfig
from simulator.limits import RateLimit
from tests.helpers import TEST_AK, TEST_PROJECT, TEST_SK, new_image_id, write_csv

Start = Callable[..., Any]
IMAGES = [new_image_id() for _ in range(3)]
DELETE_PATH = "/v1.0/resource-tags/batch-delete"


@pytest.fixture
def seed(tmp_path: Path) -> Path:
    """Three images, each with ``env`` (values differ) and ``owner``."""
    rows = [
        {"image_id": image, "key": key, "value": value}
        for image, env in zip(IMAGES, ["prod", "dev", "test"], strict=True)
        for key, value in (("env", env), ("owner", "ops"))
    ]
    return write_csv(tmp_path / "seed.csv", rows, ["image_id", "key", "value"])


def signed(
    url: str,
    method: str,
    path: str,
    *,
    body: str = "",
    query: list[tuple[str, str]] | None = None,
    domain_id: str | None = DEMO_DOMAIN_ID,
) -> dict[str, str]:
    """Headers the official SDK sends: global credentials (X-Domain-Id), or basic ones when
    ``domain_id`` is None."""
    request = SdkRequest(
        method=method,
        schema="http",
        host=url.removeprefix("http://"),
        resource_path=path,
        query_params=list(query or []),
        header_params={"Content-Type": "application/json;charset=UTF-8"},
        body=body,
    )
    if domain_id is None:
        BasicCredentials(ak=TEST_AK, sk=TEST_SK).sign_request(request)
    else:
        GlobalCredentials(ak=TEST_AK, sk=TEST_SK, domain_id=domain_id).sign_request(request)
    return {k: str(v) for k, v in request.header_params.items()}


async def batch_delete(
    url: str, resources: list[tuple[str, str]], keys: list[str], **sign: Any
) -> tuple[int, dict[str, Any]]:
    body = json.dumps(
        {
            "project_id": TEST_PROJECT,
            "resources": [{"resource_id": i, "resource_type": t} for i, t in resources],
            "tags": [{"key": key} for key in keys],
        }
    )
    headers = signed(url, "POST", DELETE_PATH, body=body, **sign)
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + DELETE_PATH, data=body.encode(), headers=headers) as response,
    ):
        return response.status, await response.json()


async def providers(url: str, **sign: Any) -> tuple[int, dict[str, Any]]:
    query = [("provider", "ims")]
    headers = signed(url, "GET", "/v1.0/tms/providers", query=query, **sign)
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{url}/v1.0/tms/providers?provider=ims", headers=headers) as response,
    ):
        return response.status, await response.json()


async def get_json(url: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return await response.json()


def images_of() -> list[tuple[str, str]]:
    return [(image, "private_image") for image in IMAGES]


@pytest.mark.parametrize(
    ("tms", "expected"),
    [
        (TmsConfig(), ["private_image"]),
        (TmsConfig(resource_type="images"), ["images"]),
    ],
)
async def test_providers_names_the_resource_type_of_ims_images(
    start_sim: Start, tms: TmsConfig, expected: list[str]
) -> None:
    server = await start_sim(tms=tms)
    status, body = await providers(server.url)
    assert status == 200
    assert body["total_count"] == 1
    [provider] = body["providers"]
    assert provider["provider"] == "ims"
    assert [t["resource_type"] for t in provider["resource_types"]] == expected
    assert provider["resource_types"][0]["global"] is False


async def test_a_tms_that_does_not_list_ims_answers_no_provider_and_refuses_images(
    start_sim: Start, seed: Path
) -> None:
    server = await start_sim(seed, tms=TmsConfig(lists_ims=False))
    assert await providers(server.url) == (200, {"providers": [], "total_count": 0})
    status, body = await batch_delete(server.url, images_of(), ["env"])
    assert status == 200
    assert [f["error_code"] for f in body["failed_resources"]] == ["TMS.0002"] * 3
    assert server.sim.store.tags_of(TEST_PROJECT, IMAGES[0]) == {"env": "prod", "owner": "ops"}


@pytest.mark.parametrize(
    ("domain_id", "reason"),
    [
        (None, "x-domain-id not found"),
        ("0" * 32, "the x-domain-id does not match the ak's account"),
    ],
)
async def test_aksk_calls_to_tms_need_the_accounts_domain_id(
    start_sim: Start, seed: Path, domain_id: str | None, reason: str
) -> None:
    """Basic credentials (no X-Domain-Id) or another account's id: 401, nothing deleted."""
    server = await start_sim(seed)
    status, body = await batch_delete(server.url, images_of(), ["env"], domain_id=domain_id)
    assert status == 401
    assert body["error_code"] == "APIGW.0301"
    assert body["error_msg"] == f"Incorrect IAM authentication information: {reason}"
    assert server.sim.store.tags_of(TEST_PROJECT, IMAGES[0]) == {"env": "prod", "owner": "ops"}


async def test_the_signature_covers_x_domain_id(start_sim: Start, seed: Path) -> None:
    """A domain id swapped after signing breaks the signature, even for the right account."""
    server = await start_sim(seed, tms=TmsConfig(domain_id="e" * 32))
    body = json.dumps(
        {
            "project_id": TEST_PROJECT,
            "resources": [{"resource_id": IMAGES[0], "resource_type": "private_image"}],
            "tags": [{"key": "env"}],
        }
    )
    headers = signed(server.url, "POST", DELETE_PATH, body=body)
    assert "x-domain-id" in headers["Authorization"]
    headers["X-Domain-Id"] = "e" * 32
    async with (
        aiohttp.ClientSession() as session,
        session.post(server.url + DELETE_PATH, data=body.encode(), headers=headers) as response,
    ):
        assert response.status == 401
        assert (await response.json())["error_msg"].endswith("verify aksk signature fail")


async def test_batch_delete_removes_the_keys_whatever_their_value_and_ims_reads_see_it(
    start_sim: Start, seed: Path
) -> None:
    """Three images, three different values of env: one call, all gone, answer 200 with an
    empty failed_resources; an IMS read of the same image shows it."""
    server = await start_sim(seed)
    status, body = await batch_delete(server.url, images_of(), ["env"])
    assert (status, body) == (200, {"failed_resources": []})
    for image in IMAGES:
        assert server.sim.store.tags_of(TEST_PROJECT, image) == {"owner": "ops"}
    seen = await get_json(f"{server.url}/_sim/images/{TEST_PROJECT}/{IMAGES[1]}")
    assert seen == {"tags": {"owner": "ops"}}
    stats = await get_json(f"{server.url}/_sim/stats")
    assert stats["calls_by_api"] == {"ims": 0, "tms": 1}
    assert stats["tms_resources_deleted"] == 3


async def test_unknown_images_and_other_types_fail_alone_inside_a_200(
    start_sim: Start, seed: Path
) -> None:
    server = await start_sim(seed)
    unknown = new_image_id()
    resources = [(IMAGES[0], "private_image"), (unknown, "private_image"), (IMAGES[1], "images")]
    status, body = await batch_delete(server.url, resources, ["env", "owner"])
    assert status == 200
    assert body["failed_resources"] == [
        {
            "resource_id": unknown,
            "resource_type": "private_image",
            "error_code": "TMS.0005",
            "error_msg": "The resources requested cannot be found.",
        },
        {
            "resource_id": IMAGES[1],
            "resource_type": "images",
            "error_code": "TMS.0002",
            "error_msg": "The resource type images is not supported.",
        },
    ]
    assert server.sim.store.tags_of(TEST_PROJECT, IMAGES[0]) == {}
    assert server.sim.store.tags_of(TEST_PROJECT, IMAGES[1]) == {"env": "dev", "owner": "ops"}
    stats = await get_json(f"{server.url}/_sim/stats")
    assert stats["tms_resources_deleted"] == 1


@pytest.mark.parametrize(
    ("resources", "keys", "code"),
    [
        (21, ["env"], "TMS.0002"),
        (1, [f"k{i}" for i in range(11)], "TMS.0002"),
        (1, [], "TMS.0012"),
        (1, ["k" * 37], "TMS.0009"),
        (1, ["a.b"], "TMS.0009"),
        (1, ["a b"], "TMS.0009"),
        (1, ["clé"], "TMS.0009"),
    ],
)
async def test_requests_over_the_limits_or_with_keys_tms_refuses_are_400(
    start_sim: Start, seed: Path, resources: int, keys: list[str], code: str
) -> None:
    server = await start_sim(seed)
    status, body = await batch_delete(server.url, [(IMAGES[0], "private_image")] * resources, keys)
    assert status == 400
    assert body["error_code"] == code
    assert server.sim.store.tags_of(TEST_PROJECT, IMAGES[0]) == {"env": "prod", "owner": "ops"}


async def test_keys_of_36_letters_digits_dash_underscore_at_and_more_resources_when_told(
    start_sim: Start, seed: Path
) -> None:
    server = await start_sim(seed, tms=TmsConfig(max_resources=50))
    key = "Ab9-_@" * 6
    status, body = await batch_delete(server.url, [(IMAGES[0], "private_image")] * 21, [key])
    assert (status, body) == (200, {"failed_resources": []})


@pytest.mark.parametrize(
    ("throttle_status", "code", "message"),
    [
        (403, "TMS.0006", "The request is Too much, try again later."),
        (
            429,
            "APIGW.0308",
            "The throttling threshold has been reached: "
            "policy user over ratelimit,limit:2,time:5 minute",
        ),
    ],
)
async def test_tms_has_its_own_allowance_and_throttles_with_a_403_or_a_429(
    start_sim: Start, seed: Path, throttle_status: int, code: str, message: str
) -> None:
    """IMS's allowance is one call and TMS's two: the third TMS call is refused, and an IMS
    call still passes, then IMS's own second one is a 429."""
    tms = TmsConfig(rate_limit=RateLimit(2, 300), throttle_status=throttle_status)
    server = await start_sim(seed, rate_limit=RateLimit(1, 300), tms=tms)
    answers = [await batch_delete(server.url, images_of(), ["env"]) for _ in range(3)]
    assert [status for status, _ in answers] == [200, 200, throttle_status]
    assert (answers[2][1]["error_code"], answers[2][1]["error_msg"]) == (code, message)
    ims_url = f"{server.url}/v2/{TEST_PROJECT}/images/{IMAGES[0]}/tags"
    statuses = []
    async with aiohttp.ClientSession() as session:
        for _ in range(2):
            path = ims_url.removeprefix(server.url)
            headers = signed(server.url, "GET", path, domain_id=None)
            async with session.get(ims_url, headers=headers) as response:
                statuses.append(response.status)
    assert statuses == [200, 429]
    stats = await get_json(f"{server.url}/_sim/stats")
    assert stats["calls_by_api"] == {"ims": 2, "tms": 3}
    assert list(stats["tms_windows"]["counts"].values()) == [[2, 1]]


async def token_for(url: str, scope: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A token from the simulator's IAM for user u1 with ``scope``, and its body."""
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": "u1", "password": "p1", "domain": {"name": "d1"}}},
            },
            "scope": scope,
        }
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/v3/auth/tokens", json=body) as response,
    ):
        assert response.status == 201
        return response.headers["X-Subject-Token"], (await response.json())["token"]


async def test_tms_takes_account_scoped_tokens_and_ims_project_scoped_ones(
    start_sim: Start, seed: Path
) -> None:
    """As TMS's pages say: a global service wants a token scoped to the domain. A project
    token gets TMS's 403 TMS.0004; a domain token on IMS is refused too."""
    server = await start_sim(seed, users=(SimUser("u1", "p1", "d1"),))
    domain_token, issued = await token_for(server.url, {"domain": {"name": "d1"}})
    project_token, _ = await token_for(server.url, {"project": {"id": TEST_PROJECT}})
    assert issued["domain"] == {"id": DEMO_DOMAIN_ID, "name": "d1"}
    assert "project" not in issued
    body = json.dumps(
        {
            "project_id": TEST_PROJECT,
            "resources": [{"resource_id": IMAGES[0], "resource_type": "private_image"}],
            "tags": [{"key": "env"}],
        }
    ).encode()
    ims_url = f"{server.url}/v2/{TEST_PROJECT}/images/{IMAGES[0]}/tags"
    async with aiohttp.ClientSession() as session:
        async with session.post(
            server.url + DELETE_PATH, data=body, headers={"X-Auth-Token": project_token}
        ) as refused:
            assert refused.status == 403
            assert (await refused.json())["error_code"] == "TMS.0004"
        async with session.get(ims_url, headers={"X-Auth-Token": domain_token}) as wrong:
            assert wrong.status == 401
        async with session.post(
            server.url + DELETE_PATH, data=body, headers={"X-Auth-Token": domain_token}
        ) as accepted:
            assert (accepted.status, await accepted.json()) == (200, {"failed_resources": []})
        async with session.get(ims_url, headers={"X-Auth-Token": project_token}) as read:
            assert (await read.json())["tags"] == [{"key": "owner", "value": "ops"}]


def test_the_simulator_command_refuses_a_bad_tms_rate_limit() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "producer.cli", "simulator", "--tms-rate-limit", "5/fortnight"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "--tms-rate-limit" in result.stderr
    assert "Traceback" not in result.stderr
