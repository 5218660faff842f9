"""The engine's TMS path in-process (no Celery): TMS batches of 20 images, each image's own
result from ``failed_resources``, TMS's 403 throttling, ``--api auto`` falling back to IMS,
and the resource type asked once per account. IMS is the simulator; TMS a scripted server on
loopback that deletes from the simulator's store (until the simulator serves TMS itself)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from simulator.server import RunningSimulator
from tests.helpers import IMAGES, JOB, TEST_AK, TEST_PROJECT, TEST_SK, results, setup, write_csv
from worker import keys
from worker.cloud.auth import DomainAkSkAuth
from worker.cloud.credentials import AkSkCredentials
from worker.cloud.tms import TmsClient
from worker.engine import EngineContext, run_chunk
from worker.errors import CredentialsError
from worker.jobs import Api, JobState
from worker.limits.limiter import SharedRateLimiter, bucket_key

Start = Callable[..., Any]
DOMAIN = "domain-1"


@dataclass
class ScriptedTms:
    """What the scripted TMS answers, and the calls it saw."""

    sim: RunningSimulator
    image_type: str | None = "private_image"
    throttle_first: int = 0  # answer this many batch deletes 403 TMS.0006
    refuse_all: bool = False  # answer every batch delete 403 TMS.0004 (no TMS permission)
    fail: dict[str, tuple[str, str]] = field(default_factory=dict)  # image -> code, message
    calls: list[dict[str, Any]] = field(default_factory=list)
    providers_calls: int = 0
    url: str = ""  # where it listens

    async def providers(self, request: web.Request) -> web.Response:
        assert request.headers["X-Domain-Id"] == DOMAIN
        self.providers_calls += 1
        types = [{"resource_type": self.image_type}] if self.image_type else []
        listed = [{"provider": "ims", "resource_types": types}] if self.image_type else []
        return web.json_response({"providers": listed, "total_count": len(listed)})

    async def batch_delete(self, request: web.Request) -> web.Response:
        assert request.headers["X-Domain-Id"] == DOMAIN
        body = json.loads(await request.read())
        self.calls.append(body)
        if self.refuse_all:
            message = "You do not have permissions to perform the operation."
            return web.json_response({"error_code": "TMS.0004", "error_msg": message}, status=403)
        if self.throttle_first:
            self.throttle_first -= 1
            return web.json_response(
                {"error_code": "TMS.0006", "error_msg": "The request is Too much"}, status=403
            )
        failed = []
        for resource in body["resources"]:
            image = resource["resource_id"]
            if image in self.fail:
                code, message = self.fail[image]
                failed.append({"resource_id": image, "error_code": code, "error_msg": message})
            else:
                store = self.sim.sim.store
                store.delete(body["project_id"], image, [tag["key"] for tag in body["tags"]])
        return web.json_response({"failed_resources": failed})


@pytest.fixture
def seed(tmp_path: Path) -> Path:
    rows = [{"image_id": i, "key": k, "value": "v"} for i in IMAGES for k in ("a", "b")]
    return write_csv(tmp_path / "seed.csv", rows, ["image_id", "key", "value"])


@pytest.fixture
async def tms(start_sim: Start, seed: Path) -> AsyncIterator[ScriptedTms]:
    scripted = ScriptedTms(await start_sim(seed))
    app = web.Application()
    app.router.add_get("/v1.0/tms/providers", scripted.providers)
    app.router.add_post("/v1.0/resource-tags/batch-delete", scripted.batch_delete)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    scripted.url = str(server.make_url("")).rstrip("/")
    yield scripted
    await server.close()


async def tms_setup(
    aredis: Any, session: aiohttp.ClientSession, tms: ScriptedTms, **options: Any
) -> EngineContext:
    """The engine's job as TMS batches, with a TMS client for the scripted server."""
    options.setdefault("api", Api.TMS)
    ctx = await setup(aredis, session, tms.sim, group=True, tms_endpoint=tms.url, **options)

    def tms_client_for(endpoint: str, domain_id: str | None) -> TmsClient:
        if domain_id is None:
            raise CredentialsError("no domain")
        auth = DomainAkSkAuth(AkSkCredentials(TEST_AK, TEST_SK), domain_id=domain_id)
        return TmsClient(session, endpoint=endpoint, auth=auth, domain_id=domain_id)

    ctx.tms_client_for = tms_client_for
    # TMS on a schedule of its own, as the runtime gives it.
    ims = ctx.limiter_for(tms.sim.url, "")
    tms_limiter = SharedRateLimiter(aredis, bucket_key(tms.url, f"ak:{TEST_AK}", api="tms"))

    def limiter_for(endpoint: str, identity: str, api: str = "ims") -> SharedRateLimiter:
        return tms_limiter if api == "tms" else ims

    ctx.limiter_for = limiter_for
    return ctx


def statuses(found: dict[str, list[Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in found.values():
        counts[row[0]] = counts.get(row[0], 0) + 1
    return counts


async def test_thirty_images_losing_the_same_keys_take_two_calls_each_image_its_own_result(
    aredis: Any, session: aiohttp.ClientSession, tms: ScriptedTms
) -> None:
    """20 + 10 images a call; an image TMS says does not exist ends not_found, as via IMS."""
    tms.fail[IMAGES[3]] = ("TMS.0040", "The resource does not exist.")
    ctx = await tms_setup(aredis, session, tms, domain_id=DOMAIN)
    assert await run_chunk(ctx, JOB, 0) == "worked"
    found = await results(aredis)
    assert statuses(found) == {"deleted": 58, "not_found": 2}
    assert found["6"][2] == "TMS.0040"
    assert [len(call["resources"]) for call in tms.calls] == [20, 10]
    assert all(call["tags"] == [{"key": "a"}, {"key": "b"}] for call in tms.calls)
    assert tms.calls[0]["resources"][0]["resource_type"] == "private_image"
    assert tms.sim.sim.store.tags_of(TEST_PROJECT, IMAGES[0]) == {}
    job = await ctx.store.load_job(JOB)
    assert job is not None
    assert job.requests == 2


async def test_tms_403_throttling_goes_through_the_limiter_and_is_retried(
    aredis: Any, session: aiohttp.ClientSession, tms: ScriptedTms
) -> None:
    tms.throttle_first = 2
    ctx = await tms_setup(aredis, session, tms, domain_id=DOMAIN, max_attempts=8)
    assert await run_chunk(ctx, JOB, 0) == "worked"
    found = await results(aredis)
    assert statuses(found) == {"deleted": 60}
    # Two calls answered 403 TMS.0006 (recorded as throttled, not forbidden), sent again.
    assert len(tms.calls) == 4
    assert max(row[4] for row in found.values()) in (2, 3)


async def test_the_resource_type_is_asked_once_per_account_and_kept_30_days(
    aredis: Any, session: aiohttp.ClientSession, tms: ScriptedTms
) -> None:
    ctx = await tms_setup(aredis, session, tms, domain_id=DOMAIN)
    assert await run_chunk(ctx, JOB, 0) == "worked"
    assert tms.providers_calls == 1
    key = keys.tms_resource_type(DOMAIN)
    assert await aredis.get(key) == "private_image"
    assert 29 * 86400 < await aredis.ttl(key) <= 30 * 86400


async def test_tms_aborts_the_job_in_one_reason_when_tms_does_not_list_ims(
    aredis: Any, session: aiohttp.ClientSession, tms: ScriptedTms
) -> None:
    """No delete is sent: the job is aborted with the reason, its rows cancelled."""
    tms.image_type = None
    ctx = await tms_setup(aredis, session, tms, domain_id=DOMAIN)
    assert await run_chunk(ctx, JOB, 0) == "worked"
    found = await results(aredis)
    assert statuses(found) == {"cancelled": 60}
    reason = await ctx.store.stop_reason(JOB)
    assert reason.startswith("--api tms: TMS does not list IMS images as a resource type")
    assert "\n" not in reason
    assert await ctx.store.job_state(JOB) is JobState.ABORTED
    assert tms.calls == []


async def test_auto_uses_ims_alone_when_tms_does_not_list_ims(
    aredis: Any, session: aiohttp.ClientSession, tms: ScriptedTms
) -> None:
    tms.image_type = None
    ctx = await tms_setup(aredis, session, tms, domain_id=DOMAIN, api=Api.AUTO)
    assert await run_chunk(ctx, JOB, 0) == "worked"
    assert statuses(await results(aredis)) == {"deleted": 60}
    assert tms.calls == []
    assert tms.sim.sim.store.tags_of(TEST_PROJECT, IMAGES[5]) == {}


async def test_auto_sends_what_tms_refuses_through_ims(
    aredis: Any, session: aiohttp.ClientSession, tms: ScriptedTms
) -> None:
    tms.fail[IMAGES[4]] = ("TMS.0014", "The resource type is not supported.")
    ctx = await tms_setup(aredis, session, tms, domain_id=DOMAIN, api=Api.AUTO)
    assert await run_chunk(ctx, JOB, 0) == "worked"
    found = await results(aredis)
    assert statuses(found) == {"deleted": 60}
    assert found["8"][1] == 204  # its rows' answer is IMS's
    assert tms.sim.sim.store.tags_of(TEST_PROJECT, IMAGES[4]) == {}


async def test_tms_without_a_domain_id_aborts_the_job_saying_so(
    aredis: Any, session: aiohttp.ClientSession, tms: ScriptedTms
) -> None:
    ctx = await tms_setup(aredis, session, tms)
    assert await run_chunk(ctx, JOB, 0) == "worked"
    assert statuses(await results(aredis)) == {"cancelled": 60}
    assert await ctx.store.stop_reason(JOB) == "--api tms: no domain"


async def test_backup_with_match_values_reads_each_image_and_sends_only_matching_ones(
    aredis: Any, session: aiohttp.ClientSession, tms: ScriptedTms
) -> None:
    """By key through TMS, but --match-values still leaves a key holding another value."""
    tms.sim.sim.store.add_image(TEST_PROJECT, IMAGES[2], {"a": "other"})
    ctx = await tms_setup(aredis, session, tms, domain_id=DOMAIN, backup=True, match_values=True)
    assert await run_chunk(ctx, JOB, 0) == "worked"
    found = await results(aredis)
    assert statuses(found) == {"deleted": 59, "value_differs": 1}
    assert found["4"][0] == "value_differs"
    assert tms.sim.sim.store.tags_of(TEST_PROJECT, IMAGES[2]) == {"a": "other"}
    sent = [len(call["resources"]) for call in tms.calls]
    assert sorted(sent) == [1, 10, 19]  # image 2 loses only b: a call of its own


@pytest.mark.parametrize(("api", "status"), [(Api.AUTO, "deleted"), (Api.TMS, "forbidden")])
async def test_a_user_without_tms_rights_is_served_by_ims_under_auto_only(
    aredis: Any, session: aiohttp.ClientSession, tms: ScriptedTms, api: Api, status: str
) -> None:
    tms.refuse_all = True
    ctx = await tms_setup(aredis, session, tms, domain_id=DOMAIN, api=api)
    assert await run_chunk(ctx, JOB, 0) == "worked"
    assert statuses(await results(aredis)) == {status: 60}
    assert len(tms.calls) == 2  # one per TMS batch: a 403 is not sent again
