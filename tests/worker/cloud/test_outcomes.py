"""Response classification: one function, both error body shapes, every status class."""

from __future__ import annotations

from datetime import UTC, datetime

import aiohttp
import pytest

from worker.cloud.outcomes import (
    OutcomeKind,
    classify_exception,
    classify_response,
    parse_cloud_limit,
    parse_retry_after,
    parse_scope,
)
from worker.model import CloudLimit, Scope


def classify(status: int, body: bytes = b"", **headers: str) -> object:
    return classify_response(status, headers, body, latency_ms=1.0)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (204, OutcomeKind.OK),
        (200, OutcomeKind.OK),
        (400, OutcomeKind.REJECTED),
        (403, OutcomeKind.FORBIDDEN),
        (404, OutcomeKind.NOT_FOUND),
        (405, OutcomeKind.REJECTED),
        (429, OutcomeKind.THROTTLED),
        (500, OutcomeKind.SERVER_ERROR),
        (502, OutcomeKind.SERVER_ERROR),
        (503, OutcomeKind.SERVER_ERROR),
        (504, OutcomeKind.SERVER_ERROR),
    ],
)
def test_each_status_maps_to_its_class(status: int, kind: OutcomeKind) -> None:
    assert classify_response(status, {}, b"", latency_ms=0).kind is kind


def test_the_ims_body_shape_gives_code_and_message() -> None:
    body = b'{"error":{"message":"The imagetype is invalid.","code":"IMG.0024"}}'
    outcome = classify_response(400, {"X-Request-Id": "r-1"}, body, latency_ms=0)
    assert (outcome.error_code, outcome.error_message, outcome.request_id) == (
        "IMG.0024",
        "The imagetype is invalid.",
        "r-1",
    )


def test_the_gateway_body_shape_gives_code_message_and_request_id() -> None:
    body = b'{"error_msg":"over ratelimit","error_code":"APIGW.0308","request_id":"abc"}'
    outcome = classify_response(429, {}, body, latency_ms=0)
    assert (outcome.error_code, outcome.error_message, outcome.request_id) == (
        "APIGW.0308",
        "over ratelimit",
        "abc",
    )


@pytest.mark.parametrize("prefix", ["APIGW", "APIG"])
@pytest.mark.parametrize(
    ("code", "message", "kind"),
    [
        ("0307", "The token must be updated.", OutcomeKind.TOKEN_EXPIRED),
        (
            "0301",
            "Incorrect IAM authentication information: token expires, expires_at: x",
            OutcomeKind.TOKEN_EXPIRED,
        ),
        (
            "0301",
            "Incorrect IAM authentication information: verify aksk signature fail",
            OutcomeKind.SIGNATURE_FAILED,
        ),
        ("0301", "AK access failed to reach the limit,forbidden.", OutcomeKind.SIGNATURE_FAILED),
        (
            "0301",
            "Incorrect IAM authentication information: Get secretKey failed,ak:X,err:ak not exist",
            OutcomeKind.SIGNATURE_FAILED,
        ),
        (
            "0301",
            "Incorrect IAM authentication information: x-auth-token not found",
            OutcomeKind.UNAUTHORIZED,
        ),
    ],
)
def test_401s_tell_expired_token_from_signature_failure(
    prefix: str, code: str, message: str, kind: OutcomeKind
) -> None:
    body = f'{{"error_msg":"{message}","error_code":"{prefix}.{code}"}}'.encode()
    assert classify_response(401, {}, body, latency_ms=0).kind is kind


def test_a_non_json_error_body_keeps_its_text() -> None:
    outcome = classify_response(502, {}, b"<html>Bad Gateway</html>", latency_ms=0)
    assert outcome.kind is OutcomeKind.SERVER_ERROR
    assert outcome.error_message == "<html>Bad Gateway</html>"
    assert outcome.error_code is None


def test_retry_after_in_seconds_and_as_an_http_date() -> None:
    now = datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC)
    assert parse_retry_after("3", now=now) == 3.0
    assert parse_retry_after("Thu, 01 Jan 2026 00:00:07 GMT", now=now) == 7.0
    assert parse_retry_after("Wed, 31 Dec 2025 23:59:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after(None) is None
    outcome = classify_response(429, {"Retry-After": "2"}, b"{}", latency_ms=0)
    assert outcome.retry_after_s == 2.0


def test_transport_failures_are_timeouts_or_network_errors() -> None:
    assert classify_exception(TimeoutError(), latency_ms=5).kind is OutcomeKind.TIMEOUT
    dropped = classify_exception(aiohttp.ServerDisconnectedError(), latency_ms=5)
    assert dropped.kind is OutcomeKind.NETWORK_ERROR
    assert dropped.error_message is not None
    assert "ServerDisconnected" in dropped.error_message


def test_only_throttling_server_and_transport_failures_are_retryable() -> None:
    retryable = {kind for kind in OutcomeKind if kind.retryable}
    assert retryable == {
        OutcomeKind.THROTTLED,
        OutcomeKind.SERVER_ERROR,
        OutcomeKind.NETWORK_ERROR,
        OutcomeKind.TIMEOUT,
    }


@pytest.mark.parametrize(
    ("message", "limit"),
    [
        (
            "The throttling threshold has been reached: "
            "policy user over ratelimit,limit:200,time:5 minute",
            CloudLimit(200, 300),
        ),
        ("policy ip over ratelimit,limit:2000,time:1 minute", CloudLimit(2000, 60)),
        ("policy api over ratelimit,limit:40,time:1 second", CloudLimit(40, 1)),
        ("over ratelimit, limit: 600 , time: 30 seconds", CloudLimit(600, 30)),
        ("limit:10,time:1 hour", CloudLimit(10, 3600)),
        ("The throttling threshold has been reached.", None),
        ("limit:0,time:1 minute", None),
        ("limit:200", None),
        (None, None),
    ],
)
def test_the_limit_named_in_a_throttling_message_is_parsed(
    message: str | None, limit: CloudLimit | None
) -> None:
    assert parse_cloud_limit(message) == limit


@pytest.mark.parametrize("code", ["APIGW.0308", "APIG.0308"])
def test_a_429_carries_the_limit_its_gateway_message_names(code: str) -> None:
    body = (
        b'{"error_msg":"The throttling threshold has been reached: policy user over '
        b'ratelimit,limit:200,time:5 minute","error_code":"%s","request_id":"r1"}' % code.encode()
    )
    outcome = classify_response(429, {}, body, latency_ms=1.0)
    assert outcome.kind is OutcomeKind.THROTTLED
    assert outcome.limit == CloudLimit(200, 300)
    assert outcome.limit.rate_per_s == pytest.approx(0.6667, abs=1e-3)
    assert str(outcome.limit) == "200 calls per 5 min"


def test_a_plain_429_or_another_code_carries_no_limit() -> None:
    plain = b'{"error_msg":"The throttling threshold has been reached.","error_code":"APIGW.0308"}'
    other = b'{"error_msg":"limit:5,time:1 minute","error_code":"APIGW.0601"}'
    assert classify_response(429, {}, plain, latency_ms=1.0).limit is None
    assert classify_response(500, {}, other, latency_ms=1.0).limit is None


@pytest.mark.parametrize(
    ("message", "scope"),
    [
        ("The throttling threshold has been reached: policy user over ratelimit,limit:2", "user"),
        ("policy ip over ratelimit,limit:2000,time:1 minute", "ip"),
        ("Policy API over ratelimit,limit:40,time:1 second", "api"),
        ("The throttling threshold has been reached.", None),
        ("policy ipv6 over ratelimit", None),
        (None, None),
    ],
)
def test_the_scope_named_in_a_throttling_message_is_parsed(
    message: str | None, scope: str | None
) -> None:
    """The gateway says whose allowance ran out: the credentials', the address's or the API's."""
    assert parse_scope(message) == (None if scope is None else Scope(scope))


def test_a_429_carries_the_scope_of_its_policy_and_another_answer_none() -> None:
    body = (
        b'{"error_msg":"The throttling threshold has been reached: policy ip over '
        b'ratelimit,limit:40,time:1 second","error_code":"APIGW.0308","request_id":"r1"}'
    )
    assert classify_response(429, {}, body, latency_ms=1.0).scope is Scope.IP
    assert classify_response(403, {}, body, latency_ms=1.0).scope is None
