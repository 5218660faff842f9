"""The TMS client: signed as the SDK's global credentials sign, its answers and per-resource
failures classified, its endpoint and key rules."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from huaweicloudsdkcore.auth.credentials import GlobalCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from yarl import URL

from worker.cloud.auth import DomainAkSkAuth, domain_auth
from worker.cloud.credentials import AkSkCredentials, TokenCredentials
from worker.cloud.outcomes import OutcomeKind
from worker.cloud.signing import parse_authorization
from worker.cloud.tms import TmsClient, encode_batch_delete, parse_image_type
from worker.cloud.tmsrules import tms_endpoint, tms_takes_key
from worker.errors import CredentialsError

IMAGES = ["67e17426-359e-49fb-aa12-0bd1756ec240", "0b7a7d0e-1111-4e2e-9a7c-2f8b3f7d9c01"]


async def test_a_batch_delete_signs_x_domain_id_exactly_as_the_sdks_global_credentials() -> None:
    """The oracle is huaweicloudsdkcore's GlobalCredentials: X-Domain-Id is sent and signed,
    X-Project-Id is not (a global service)."""
    credentials = AkSkCredentials("AKEXAMPLE", "SKEXAMPLE")
    auth = DomainAkSkAuth(
        credentials, domain_id="d0m41n", now=lambda: datetime(2026, 1, 1, tzinfo=UTC)
    )
    body = encode_batch_delete("p1", "private_image", IMAGES, ["env", "owner"])
    url = URL("https://tms-intl.myhuaweicloud.com/v1.0/resource-tags/batch-delete")
    headers = {"Content-Type": "application/json;charset=UTF-8"}
    ours = await auth.headers_for(
        method="POST", url=url, headers=headers, body=body, project_id="p1"
    )

    request = SdkRequest(
        method="POST",
        schema="https",
        host=url.host,
        resource_path=url.path,
        query_params=[],
        header_params={**headers, "X-Sdk-Date": ours["X-Sdk-Date"]},
        body=body.decode(),
    )
    GlobalCredentials("AKEXAMPLE", "SKEXAMPLE", "d0m41n").sign_request(request)
    assert ours["X-Domain-Id"] == "d0m41n"
    assert "X-Project-Id" not in ours
    assert ours["Authorization"] == request.header_params["Authorization"]
    parsed = parse_authorization(ours["Authorization"])
    assert parsed is not None
    assert "x-domain-id" in parsed[1]


def test_tms_refuses_token_credentials_in_one_line() -> None:
    with pytest.raises(CredentialsError, match="TMS needs AK/SK credentials"):
        domain_auth(TokenCredentials("t" * 40), "d0m41n")


def test_the_endpoint_is_the_sdks_for_the_region_or_the_override() -> None:
    assert tms_endpoint("cn-north-4") == "https://tms.myhuaweicloud.com"
    assert tms_endpoint("ap-southeast-1") == "https://tms-intl.myhuaweicloud.com"
    assert tms_endpoint("eu-west-101") == "https://tms.eu-west-101.myhuaweicloud.eu"
    assert tms_endpoint("la-north-2") is None
    assert tms_endpoint("la-north-2", "http://127.0.0.1:9/") == "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("key", "taken"),
    [
        ("env", True),
        ("a-b_c@d", True),
        ("k" * 36, True),
        ("k" * 37, False),
        ("a.b", False),
        ("", False),
        ("é", False),
        ("with space", False),
    ],
)
def test_tms_takes_only_short_keys_of_letters_digits_dash_underscore_at(
    key: str, taken: bool
) -> None:
    assert tms_takes_key(key) is taken


def test_the_providers_answer_names_the_image_type_or_nothing() -> None:
    def answer(*types: str, provider: str = "ims") -> bytes:
        items = [{"resource_type": t, "global": False} for t in types]
        return json.dumps({"providers": [{"provider": provider, "resource_types": items}]}).encode()

    assert parse_image_type(answer("private_image")) == "private_image"
    assert parse_image_type(answer("images")) == "images"
    assert parse_image_type(answer()) == ""
    assert parse_image_type(answer("private_image", provider="ecs")) == ""
    assert parse_image_type(b"<html>") is None


Seen = list[tuple[str, str, bytes, dict[str, str]]]
SEEN = web.AppKey("seen", Seen)


@pytest.fixture
async def tms_server() -> AsyncIterator[tuple[TestServer, list[web.Response]]]:
    """A loopback server answering each call with the next queued response, keeping bodies."""
    answers: list[web.Response] = []

    async def handle(request: web.Request) -> web.Response:
        seen = (request.method, request.path_qs, await request.read(), dict(request.headers))
        request.app[SEEN].append(seen)
        return answers.pop(0)

    app = web.Application()
    app[SEEN] = []
    app.router.add_route("*", "/{tail:.*}", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server, answers
    await server.close()


def _client(session: aiohttp.ClientSession, server: TestServer) -> TmsClient:
    auth = DomainAkSkAuth(AkSkCredentials("AK", "SK"), domain_id="dom")
    return TmsClient(session, endpoint=str(server.make_url("")), auth=auth, domain_id="dom")


async def test_failed_resources_get_their_own_outcome_and_the_others_are_deleted(
    tms_server: tuple[TestServer, list[web.Response]],
) -> None:
    server, answers = tms_server
    failed = [
        {
            "resource_id": IMAGES[1],
            "resource_type": "private_image",
            "error_code": "TMS.0040",
            "error_msg": "The resource does not exist.",
        },
    ]
    answers.append(web.json_response({"failed_resources": failed}))
    async with aiohttp.ClientSession() as session:
        answer = await _client(session, server).batch_delete("p1", "private_image", IMAGES, ["env"])
    assert answer.outcome.kind is OutcomeKind.OK
    assert answer.outcome_of(IMAGES[0]).kind is OutcomeKind.OK
    gone = answer.outcome_of(IMAGES[1])
    assert (gone.kind, gone.error_code, gone.http_status) == (
        OutcomeKind.NOT_FOUND,
        "TMS.0040",
        200,
    )
    method, path, body, headers = server.app[SEEN][0]
    assert (method, path) == ("POST", "/v1.0/resource-tags/batch-delete")
    assert json.loads(body) == {
        "project_id": "p1",
        "resources": [{"resource_id": i, "resource_type": "private_image"} for i in IMAGES],
        "tags": [{"key": "env"}],
    }
    assert headers["X-Domain-Id"] == "dom"


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (
            403,
            {"error_code": "TMS.0006", "error_msg": "The request is Too much"},
            OutcomeKind.THROTTLED,
        ),
        (
            403,
            {"error": {"error_code": "TMS.0006", "error_msg": "The request is Too much"}},
            OutcomeKind.THROTTLED,
        ),
        (
            429,
            {
                "error_code": "APIG.0308",
                "error_msg": "policy user over ratelimit,limit:5,time:1 second",
            },
            OutcomeKind.THROTTLED,
        ),
        (429, {"error_code": "APIGW.0308", "error_msg": "throttled"}, OutcomeKind.THROTTLED),
        (403, {"error_code": "TMS.0003", "error_msg": "no permission"}, OutcomeKind.FORBIDDEN),
        (400, {"error": {"error_code": "TMS.0002", "error_msg": "bad key"}}, OutcomeKind.REJECTED),
    ],
)
async def test_both_throttling_answers_are_throttled_and_other_errors_keep_their_class(
    tms_server: tuple[TestServer, list[web.Response]],
    status: int,
    body: dict[str, object],
    kind: OutcomeKind,
) -> None:
    server, answers = tms_server
    answers.append(web.json_response(body, status=status))
    async with aiohttp.ClientSession() as session:
        answer = await _client(session, server).batch_delete("p1", "private_image", IMAGES, ["env"])
    assert answer.outcome.kind is kind
    assert answer.outcome.error_code
    assert answer.outcome.error_code.startswith(("TMS", "APIG"))
    assert answer.failed == {}


@pytest.mark.parametrize(
    ("code", "message", "kind"),
    [
        ("TMS.0006", "The request is Too much", OutcomeKind.THROTTLED),
        ("TMS.0014", "The resource type is not supported.", OutcomeKind.UNSUPPORTED),
        ("TMS.0002", "Invalid tag key.", OutcomeKind.UNSUPPORTED),
        ("TMS.0500", "Internal error", OutcomeKind.REJECTED),
        ("TMS.0005", "The resources requested cannot be found.", OutcomeKind.NOT_FOUND),
        ("TMS.0002", "The resource type images is not supported.", OutcomeKind.UNSUPPORTED),
    ],
)
async def test_a_failed_resource_is_classified_from_its_code_and_words(
    tms_server: tuple[TestServer, list[web.Response]], code: str, message: str, kind: OutcomeKind
) -> None:
    server, answers = tms_server
    failed = [{"resource_id": IMAGES[0], "error_code": code, "error_msg": message}]
    answers.append(web.json_response({"failed_resources": failed}))
    async with aiohttp.ClientSession() as session:
        answer = await _client(session, server).batch_delete("p1", "private_image", IMAGES, ["env"])
    assert answer.outcome_of(IMAGES[0]).kind is kind
    assert answer.outcome_of(IMAGES[1]).kind is OutcomeKind.OK


async def test_the_providers_call_names_ims_images_type(
    tms_server: tuple[TestServer, list[web.Response]],
) -> None:
    server, answers = tms_server
    providers = {
        "providers": [{"provider": "ims", "resource_types": [{"resource_type": "private_image"}]}]
    }
    answers.append(web.json_response(providers))
    async with aiohttp.ClientSession() as session:
        outcome, found = await _client(session, server).ims_resource_type()
    assert (outcome.kind, found) == (OutcomeKind.OK, "private_image")
    assert server.app[SEEN][0][1] == "/v1.0/tms/providers?provider=ims"
