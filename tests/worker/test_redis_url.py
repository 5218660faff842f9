"""The Redis URL's TLS options in both spellings, and the one line a refusal gives."""

from __future__ import annotations

import pytest
from redis.exceptions import AuthenticationError, ConnectionError, ResponseError

from worker.redis_url import client_url, redis_problem
from worker.settings import Settings


@pytest.mark.parametrize(
    ("written", "given"),
    [
        (
            "rediss://h:6380/0?ssl_cert_reqs=CERT_REQUIRED",
            "rediss://h:6380/0?ssl_cert_reqs=required",
        ),
        (
            "rediss://:pw@h/0?ssl_ca_certs=/etc/ca.pem&ssl_cert_reqs=cert_optional",
            "rediss://:pw@h/0?ssl_ca_certs=/etc/ca.pem&ssl_cert_reqs=optional",
        ),
        ("rediss://h/0?ssl_cert_reqs=CERT_NONE&x=1", "rediss://h/0?ssl_cert_reqs=none&x=1"),
        ("rediss://h/0?ssl_cert_reqs=required", "rediss://h/0?ssl_cert_reqs=required"),
        ("redis://h/0?other=CERT_REQUIRED", "redis://h/0?other=CERT_REQUIRED"),
    ],
)
def test_celerys_spelling_of_the_certificate_check_becomes_redis_pys(
    written: str, given: str
) -> None:
    assert client_url(written) == given


def test_settings_give_every_client_redis_pys_spelling() -> None:
    env = {"REDIS_URL": "rediss://h/0?ssl_cert_reqs=CERT_REQUIRED"}
    assert Settings.from_env(env).redis_url == "rediss://h/0?ssl_cert_reqs=required"


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (
            ConnectionError(
                "Error 1 connecting to h:6380. [SSL: CERTIFICATE_VERIFY_FAILED] certificate "
                "verify failed: self-signed certificate in certificate chain (_ssl.c:1006)."
            ),
            "its TLS certificate is not trusted (self-signed certificate in certificate chain); "
            "name the CA that signed it in REDIS_URL with ssl_ca_certs: ",
        ),
        (AuthenticationError("Authentication required."), "this Redis wants a password; "),
        (ResponseError("NOAUTH Authentication required."), "this Redis wants a password; "),
        (
            AuthenticationError("HELLO must be called with the client already authenticated"),
            "this Redis wants a password; put it in REDIS_URL: redis://:PASSWORD@",
        ),
        (
            AuthenticationError("invalid username-password pair or user is disabled."),
            "Redis refused the user or password in REDIS_URL (invalid username-password pair",
        ),
        (ConnectionError("Error 111 connecting to h:6379. Connection refused."), "Error 111"),
    ],
)
def test_a_refusal_is_one_line_naming_the_fix(error: Exception, says: str) -> None:
    line = redis_problem(error)
    assert line.startswith(says)
    assert "\n" not in line
