"""The IMS client against the simulator over loopback HTTP: one outcome class per case."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from simulator.config import SimUser
from simulator.limits import RateLimit
from simulator.server import RunningSimulator
from tests.helpers import TEST_AK, TEST_PROJECT, TEST_SK, new_image_id, write_csv
from worker.cloud.auth import AkSkAuth, Auth, TokenAuth
from worker.cloud.client import ImsClient
from worker.cloud.credentials import AkSkCredentials, PasswordCredentials, TokenCredentials
from worker.cloud.outcomes import OutcomeKind
from worker.model import RowStatus, Tag

IMAGE = new_image_id()
OTHER_IMAGE = new_image_id()


@pytest.fixture
def seed(tmp_path: Path) -> Path:
    rows = [
        {"image_id": IMAGE, "key": "env", "value": "prod"},
        {"image_id": IMAGE, "key": "owner", "value": "ops"},
        {"image_id": IMAGE, "key": "keep", "value": "yes"},
        {"image_id": OTHER_IMAGE, "key": "env", "value": "dev"},
    ]
    return write_csv(tmp_path / "seed.csv", rows, ["image_id", "key", "value"])


Start = Callable[..., Any]


def aksk_client(
    session: aiohttp.ClientSession, server: RunningSimulator, *, sk: str = TEST_SK, **kw: Any
) -> ImsClient:
    return ImsClient(
        session, endpoint=server.url, auth=AkSkAuth(AkSkCredentials(TEST_AK, sk)), **kw
    )


async def test_v1_batch_delete_removes_the_tags_and_reports_deleted(
    start_sim: Start, seed: Path, session: aiohttp.ClientSession
) -> None:
    server = await start_sim(seed)
    client = aksk_client(session, server)
    outcome = await client.batch_delete_tags(
        TEST_PROJECT, IMAGE, [Tag("env", "prod"), Tag("owner", "ops"), Tag("never-there", "")]
    )
    assert outcome.kind is OutcomeKind.OK
    assert outcome.row_status is RowStatus.DELETED
    assert outcome.http_status == 204
    assert outcome.request_id
    assert outcome.latency_ms > 0
    assert server.sim.store.tags_of(TEST_PROJECT, IMAGE) == {"keep": "yes"}


async def test_v2_action_deletes_and_creates_and_list_reads_them(
    start_sim: Start, seed: Path, session: aiohttp.ClientSession
) -> None:
    server = await start_sim(seed)
    client = aksk_client(session, server)
    deleted = await client.tags_action(TEST_PROJECT, IMAGE, [Tag("env", "prod")], action="delete")
    created = await client.tags_action(TEST_PROJECT, IMAGE, [Tag("new", "v")], action="create")
    listed = await client.list_image_tags(TEST_PROJECT, IMAGE)
    assert (deleted.kind, created.kind, listed.kind) == (OutcomeKind.OK,) * 3
    assert listed.tags is not None
    assert set(listed.tags) == {Tag("owner", "ops"), Tag("keep", "yes"), Tag("new", "v")}


async def test_unknown_image_is_not_found_with_the_ims_error_code(
    start_sim: Start, seed: Path, session: aiohttp.ClientSession
) -> None:
    server = await start_sim(seed)
    outcome = await aksk_client(session, server).batch_delete_tags(
        TEST_PROJECT, new_image_id(), [Tag("env", "prod")]
    )
    assert outcome.kind is OutcomeKind.NOT_FOUND
    assert outcome.http_status == 404
    assert outcome.error_code is not None
    assert outcome.error_code.startswith("IMG.")
    assert outcome.error_message


async def test_an_overlong_key_is_rejected_with_the_ims_message(
    start_sim: Start, seed: Path, session: aiohttp.ClientSession
) -> None:
    server = await start_sim(seed)
    outcome = await aksk_client(session, server).batch_delete_tags(
        TEST_PROJECT, IMAGE, [Tag("k" * 128, "v")]
    )
    assert outcome.kind is OutcomeKind.REJECTED
    assert outcome.row_status is RowStatus.REJECTED
    assert outcome.error_message is not None
    assert "127" in outcome.error_message
    assert server.sim.store.tags_of(TEST_PROJECT, IMAGE) == {
        "env": "prod",
        "owner": "ops",
        "keep": "yes",
    }


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [
        (403, OutcomeKind.FORBIDDEN, "APIGW.0302"),
        (500, OutcomeKind.SERVER_ERROR, "APIGW.0601"),
        (503, OutcomeKind.SERVER_ERROR, "APIGW.0613"),
    ],
)
async def test_injected_gateway_faults_become_their_outcome_class(
    start_sim: Start,
    seed: Path,
    session: aiohttp.ClientSession,
    status: int,
    kind: OutcomeKind,
    code: str,
) -> None:
    server = await start_sim(seed, fail_rates={status: 1.0})
    outcome = await aksk_client(session, server).batch_delete_tags(
        TEST_PROJECT, IMAGE, [Tag("env")]
    )
    assert (outcome.kind, outcome.http_status, outcome.error_code) == (kind, status, code)
    assert outcome.request_id
    assert outcome.kind.retryable is (status >= 500)


async def test_above_the_rate_limit_calls_are_throttled_with_apigw_0308(
    start_sim: Start, seed: Path, session: aiohttp.ClientSession
) -> None:
    server = await start_sim(seed, rate_limit=RateLimit(1))
    client = aksk_client(session, server)
    first = await client.list_image_tags(TEST_PROJECT, IMAGE)
    second = await client.list_image_tags(TEST_PROJECT, IMAGE)
    assert first.kind is OutcomeKind.OK
    assert second.kind is OutcomeKind.THROTTLED
    assert second.error_code == "APIGW.0308"
    assert second.error_message is not None
    assert "over ratelimit" in second.error_message
    assert second.kind.retryable


async def test_a_dropped_connection_is_a_network_error(
    start_sim: Start, seed: Path, session: aiohttp.ClientSession
) -> None:
    server = await start_sim(seed, drop_rate=1.0)
    outcome = await aksk_client(session, server).list_image_tags(TEST_PROJECT, IMAGE)
    assert outcome.kind is OutcomeKind.NETWORK_ERROR
    assert outcome.http_status is None
    assert outcome.kind.retryable
    # aiohttp resends an idempotent request once on a dropped connection (RFC 9112 9.3.1).
    assert server.sim.stats.dropped == 2


async def test_a_refused_connection_is_a_network_error(session: aiohttp.ClientSession) -> None:
    client = ImsClient(
        session, endpoint="http://127.0.0.1:9", auth=AkSkAuth(AkSkCredentials(TEST_AK, TEST_SK))
    )
    outcome = await client.list_image_tags(TEST_PROJECT, IMAGE)
    assert outcome.kind is OutcomeKind.NETWORK_ERROR
    assert outcome.error_message


async def test_a_slow_answer_is_a_timeout(
    start_sim: Start, seed: Path, session: aiohttp.ClientSession
) -> None:
    server = await start_sim(seed, latency_ms=500)
    outcome = await aksk_client(session, server, timeout_s=0.05).list_image_tags(
        TEST_PROJECT, IMAGE
    )
    assert outcome.kind is OutcomeKind.TIMEOUT
    assert outcome.row_status is RowStatus.FAILED


async def test_a_wrong_sk_is_a_signature_failure_that_is_never_retried(
    start_sim: Start, seed: Path, session: aiohttp.ClientSession
) -> None:
    server = await start_sim(seed)
    outcome = await aksk_client(session, server, sk="wrong").batch_delete_tags(
        TEST_PROJECT, IMAGE, [Tag("env", "prod")]
    )
    assert outcome.kind is OutcomeKind.SIGNATURE_FAILED
    assert (outcome.http_status, outcome.error_code) == (401, "APIGW.0301")
    assert outcome.row_status is RowStatus.UNAUTHORIZED
    assert not outcome.kind.retryable
    assert server.sim.stats.by_status[401] == 1


async def test_five_bad_signatures_lock_the_ak_for_five_minutes(
    start_sim: Start, seed: Path, session: aiohttp.ClientSession
) -> None:
    server = await start_sim(seed)
    now = [1000.0]
    server.sim.gateway.clock = lambda: now[0]
    bad, good = aksk_client(session, server, sk="wrong"), aksk_client(session, server)
    for _ in range(5):
        assert (await bad.list_image_tags(TEST_PROJECT, IMAGE)).kind is OutcomeKind.SIGNATURE_FAILED
    locked = await good.list_image_tags(TEST_PROJECT, IMAGE)
    assert locked.kind is OutcomeKind.SIGNATURE_FAILED
    assert locked.error_message is not None
    assert "reach the limit" in locked.error_message
    now[0] += 299.0
    assert (await good.list_image_tags(TEST_PROJECT, IMAGE)).kind is OutcomeKind.SIGNATURE_FAILED
    now[0] += 2.0
    assert (await good.list_image_tags(TEST_PROJECT, IMAGE)).kind is OutcomeKind.OK


async def test_a_good_signature_resets_the_count_of_bad_ones(
    start_sim: Start, seed: Path, session: aiohttp.ClientSession
) -> None:
    server = await start_sim(seed)
    bad, good = aksk_client(session, server, sk="wrong"), aksk_client(session, server)
    for _ in range(4):
        await bad.list_image_tags(TEST_PROJECT, IMAGE)
    assert (await good.list_image_tags(TEST_PROJECT, IMAGE)).kind is OutcomeKind.OK
    for _ in range(4):
        await bad.list_image_tags(TEST_PROJECT, IMAGE)
    assert (await good.list_image_tags(TEST_PROJECT, IMAGE)).kind is OutcomeKind.OK


async def test_temporary_credentials_send_their_security_token(
    start_sim: Start, seed: Path, session: aiohttp.ClientSession
) -> None:
    server = await start_sim(seed)
    auth = AkSkAuth(AkSkCredentials(TEST_AK, TEST_SK, security_token="temp-token-xyz"))
    client = ImsClient(session, endpoint=server.url, auth=auth)
    assert (await client.list_image_tags(TEST_PROJECT, IMAGE)).kind is OutcomeKind.OK
    headers = await auth.headers_for(
        method="GET", url=server_url(server), headers={}, body=b"", project_id=TEST_PROJECT
    )
    assert headers["X-Security-Token"] == "temp-token-xyz"
    assert "x-security-token" in headers["Authorization"]


def server_url(server: RunningSimulator) -> Any:
    from yarl import URL

    return URL(server.url + "/v2/p/images/i/tags")


USER = SimUser("ops-bot", "pa55-word-not-logged", "acme")


def password_auth(session: aiohttp.ClientSession, server: RunningSimulator, **kw: Any) -> TokenAuth:
    creds = PasswordCredentials(USER.name, USER.password, USER.domain)
    return TokenAuth(creds, session=session, iam_endpoint=server.url, **kw)


async def test_a_password_user_fetches_a_token_once_and_reuses_it(
    start_sim: Start, seed: Path, session: aiohttp.ClientSession
) -> None:
    server = await start_sim(seed, users=(USER,))
    client = ImsClient(session, endpoint=server.url, auth=password_auth(session, server))
    for _ in range(3):
        assert (await client.list_image_tags(TEST_PROJECT, IMAGE)).kind is OutcomeKind.OK
    assert len(server.sim.gateway.tokens) == 1


async def test_an_expired_token_is_renewed_once_and_the_call_succeeds(
    start_sim: Start, seed: Path, session: aiohttp.ClientSession
) -> None:
    """The client's clock says the token is fresh; the server says it expired."""
    server = await start_sim(seed, users=(USER,), token_ttl_s=3600)
    auth = password_auth(session, server, clock=lambda: 0.0)
    client = ImsClient(session, endpoint=server.url, auth=auth)
    assert (await client.list_image_tags(TEST_PROJECT, IMAGE)).kind is OutcomeKind.OK
    later = datetime.now(UTC) + timedelta(hours=2)
    server.sim.gateway.now = lambda: later
    outcome = await client.batch_delete_tags(TEST_PROJECT, IMAGE, [Tag("env", "prod")])
    assert outcome.kind is OutcomeKind.OK
    assert len(server.sim.gateway.tokens) == 2
    assert server.sim.stats.by_status[401] == 1


async def test_a_token_near_its_end_is_renewed_before_it_is_used(
    start_sim: Start, seed: Path, session: aiohttp.ClientSession
) -> None:
    server = await start_sim(seed, users=(USER,), token_ttl_s=100)
    now = [0.0]
    client = ImsClient(
        session, endpoint=server.url, auth=password_auth(session, server, clock=lambda: now[0])
    )
    await client.list_image_tags(TEST_PROJECT, IMAGE)
    now[0] = 91.0  # past 90% of the lifetime
    await client.list_image_tags(TEST_PROJECT, IMAGE)
    assert len(server.sim.gateway.tokens) == 2
    assert server.sim.stats.by_status.get(401, 0) == 0


async def test_a_given_token_that_expired_is_reported_not_retried(
    start_sim: Start, seed: Path, session: aiohttp.ClientSession
) -> None:
    server = await start_sim(seed, users=(USER,))
    issued = server.sim.gateway.issue_token(
        user=USER.name, password=USER.password, domain=USER.domain, project_id=TEST_PROJECT
    )
    assert issued is not None
    later = datetime.now(UTC) + timedelta(days=2)
    server.sim.gateway.now = lambda: later
    auth: Auth = TokenAuth(TokenCredentials(issued[0]))
    outcome = await ImsClient(session, endpoint=server.url, auth=auth).list_image_tags(
        TEST_PROJECT, IMAGE
    )
    assert outcome.kind is OutcomeKind.TOKEN_EXPIRED
    assert outcome.row_status is RowStatus.UNAUTHORIZED
    assert server.sim.stats.by_status[401] == 1


async def test_an_unknown_token_is_unauthorized(
    start_sim: Start, seed: Path, session: aiohttp.ClientSession
) -> None:
    server = await start_sim(seed)
    auth = TokenAuth(TokenCredentials("MIIforged"))
    outcome = await ImsClient(session, endpoint=server.url, auth=auth).list_image_tags(
        TEST_PROJECT, IMAGE
    )
    assert outcome.kind is OutcomeKind.UNAUTHORIZED
    assert outcome.error_code == "APIGW.0301"


async def test_wrong_iam_password_raises_a_clear_auth_error(
    start_sim: Start, seed: Path, session: aiohttp.ClientSession
) -> None:
    from worker.errors import AuthError

    server = await start_sim(seed, users=(USER,))
    creds = PasswordCredentials(USER.name, "not-the-password", USER.domain)
    auth = TokenAuth(creds, session=session, iam_endpoint=server.url)
    with pytest.raises(AuthError) as caught:
        await ImsClient(session, endpoint=server.url, auth=auth).list_image_tags(
            TEST_PROJECT, IMAGE
        )
    assert caught.value.http_status == 401
    assert "not-the-password" not in str(caught.value)
