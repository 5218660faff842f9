"""How a request proves who sends it: AK/SK signatures, or an IAM token fetched and renewed.

Tokens are project-scoped, so one is kept per project. A ``TokenCache`` lets every worker share
them (a Redis-backed cache arrives with the engine); the in-process one serves a single client.
Renewal is single-flight: when many calls see the same expired token, one fetch replaces it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import aiohttp
from yarl import URL

from worker.cloud.credentials import (
    AkSkCredentials,
    Credentials,
    PasswordCredentials,
    TokenCredentials,
)
from worker.cloud.outcomes import TRANSPORT_ERRORS, parse_error_body
from worker.cloud.signing import sign_request
from worker.errors import AuthError, CredentialsError

Clock = Callable[[], float]


class Auth(Protocol):
    """Adds authentication headers to a request about to be sent."""

    @property
    def identity(self) -> str:
        """A non-secret name of who calls, for rate limits and logs."""
        ...

    async def headers_for(
        self, *, method: str, url: URL, headers: Mapping[str, str], body: bytes, project_id: str
    ) -> dict[str, str]:
        """Return ``headers`` plus what authenticates this exact request."""
        ...

    async def renew(self, project_id: str, *, rejected: Mapping[str, str]) -> bool:
        """After a token-expired answer: get a new token; ``False`` when there is none to get."""
        ...


@dataclass
class AkSkAuth:
    """Signs every request with SDK-HMAC-SHA256."""

    credentials: AkSkCredentials
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    @property
    def identity(self) -> str:
        return self.credentials.identity

    async def headers_for(
        self, *, method: str, url: URL, headers: Mapping[str, str], body: bytes, project_id: str
    ) -> dict[str, str]:
        extra = dict(headers)
        # The SDK sends both for project credentials and temporary AK/SK; both are signed.
        extra.update(self.scope_headers(project_id))
        if self.credentials.security_token:
            extra["X-Security-Token"] = self.credentials.security_token
        return sign_request(
            ak=self.credentials.ak,
            sk=self.credentials.sk,
            method=method,
            host=url.host_port_subcomponent or "",
            path=url.raw_path,
            query=list(url.query.items()),
            headers=extra,
            body=body,
            now=self.now(),
        )

    def scope_headers(self, project_id: str) -> dict[str, str]:
        return {"X-Project-Id": project_id}

    async def renew(self, project_id: str, *, rejected: Mapping[str, str]) -> bool:
        return False


@dataclass
class DomainAkSkAuth(AkSkAuth):
    """Signs for a global service (TMS) as the SDK's ``GlobalCredentials`` do: the account's
    ``X-Domain-Id`` is sent and signed, and no ``X-Project-Id``."""

    domain_id: str = ""

    def scope_headers(self, project_id: str) -> dict[str, str]:
        return {"X-Domain-Id": self.domain_id}


def domain_auth(credentials: Credentials, domain_id: str) -> Auth:
    """The ``Auth`` of a global service for ``domain_id``. Only AK/SK: TMS takes a token only
    when it is domain-scoped, and the tokens tagsweep gets (or is given) are project-scoped."""
    if not isinstance(credentials, AkSkCredentials):
        raise CredentialsError(
            "TMS needs AK/SK credentials (HUAWEICLOUD_SDK_AK/SK): it takes only domain-scoped "
            "tokens and tagsweep's are project-scoped; use --api v1"
        )
    return DomainAkSkAuth(credentials, domain_id=domain_id)


@dataclass(frozen=True)
class Token:
    """An IAM token and when tagsweep stops using it (Unix seconds).

    Wall-clock time on purpose: the expiry is an absolute instant that workers on other hosts
    read from the shared cache, where a monotonic clock means nothing.
    """

    value: str = field(repr=False)
    expires_at_s: float


Fetch = Callable[[], Awaitable[Token]]


class TokenCache(Protocol):
    """Where tokens live between calls; shared by all workers when backed by Redis."""

    async def get(self, project_id: str) -> Token | None: ...

    async def refresh(self, project_id: str, *, stale: str | None, fetch: Fetch) -> Token:
        """Replace the token ``stale`` (None: no token yet); one caller fetches, others wait."""
        ...


@dataclass
class MemoryTokenCache:
    """Tokens kept in this process only."""

    tokens: dict[str, Token] = field(default_factory=dict)

    async def get(self, project_id: str) -> Token | None:
        return self.tokens.get(project_id)

    async def refresh(self, project_id: str, *, stale: str | None, fetch: Fetch) -> Token:
        token = self.tokens[project_id] = await fetch()
        return token


class TokenAuth:
    """Sends ``X-Auth-Token``; with a password, fetches project-scoped tokens and renews them."""

    def __init__(
        self,
        credentials: TokenCredentials | PasswordCredentials,
        *,
        session: aiohttp.ClientSession | None = None,
        iam_endpoint: str | None = None,
        cache: TokenCache | None = None,
        clock: Clock = time.time,
        renew_margin: float = 0.1,
    ) -> None:
        self.credentials = credentials
        self._session = session
        self._iam_endpoint = iam_endpoint
        self._cache = cache or MemoryTokenCache()
        self._clock = clock
        self._renew_margin = renew_margin
        self._locks: dict[str, asyncio.Lock] = {}
        if isinstance(credentials, PasswordCredentials) and not (session and iam_endpoint):
            raise ValueError("password credentials need a session and an IAM endpoint")

    @property
    def identity(self) -> str:
        return self.credentials.identity

    async def headers_for(
        self, *, method: str, url: URL, headers: Mapping[str, str], body: bytes, project_id: str
    ) -> dict[str, str]:
        out = dict(headers)
        out["X-Auth-Token"] = await self._token(project_id)
        return out

    async def renew(self, project_id: str, *, rejected: Mapping[str, str]) -> bool:
        if isinstance(self.credentials, TokenCredentials):
            return False
        await self._replace(project_id, rejected.get("X-Auth-Token"))
        return True

    async def _token(self, project_id: str) -> str:
        if isinstance(self.credentials, TokenCredentials):
            return self.credentials.token
        cached = await self._cache.get(project_id)
        if cached is not None and cached.expires_at_s > self._clock():
            return cached.value
        return (await self._replace(project_id, cached.value if cached else None)).value

    async def _replace(self, project_id: str, stale: str | None) -> Token:
        """A token other than ``stale``: one fetch per process (lock), per fleet (cache)."""
        async with self._lock(project_id):
            cached = await self._cache.get(project_id)
            if cached is not None and cached.value != stale and cached.expires_at_s > self._clock():
                return cached  # another call renewed it while this one waited
            return await self._cache.refresh(
                project_id, stale=stale, fetch=lambda: self._fetch(project_id)
            )

    def _lock(self, project_id: str) -> asyncio.Lock:
        return self._locks.setdefault(project_id, asyncio.Lock())

    async def _fetch(self, project_id: str) -> Token:
        assert isinstance(self.credentials, PasswordCredentials)
        assert self._session is not None
        assert self._iam_endpoint is not None
        issued = self._clock()
        token, lifetime_s = await fetch_token(
            self._session, self._iam_endpoint, self.credentials, project_id=project_id
        )
        # Renew ahead of expiry, by a share of the lifetime, so calls never carry a dying token.
        return Token(token, issued + lifetime_s * (1.0 - self._renew_margin))


async def fetch_token(
    session: aiohttp.ClientSession,
    iam_endpoint: str,
    credentials: PasswordCredentials,
    *,
    project_id: str,
) -> tuple[str, float]:
    """Exchange a user and password for a project-scoped token; return it and its lifetime."""
    url = iam_endpoint.rstrip("/") + "/v3/auth/tokens"
    try:
        async with session.post(
            url,
            data=_token_request(credentials, project_id),
            headers={"Content-Type": "application/json;charset=utf8"},
        ) as response:
            raw = await response.read()
            token = response.headers.get("X-Subject-Token")
            status = response.status
    except TRANSPORT_ERRORS as exc:
        raise AuthError(f"IAM at {url} unreachable: {type(exc).__name__}") from None
    if status != 201 or not token:
        _, message, _ = parse_error_body(raw)
        raise AuthError(
            f"IAM refused a token for {credentials.identity}: {status} {message}",
            http_status=status,
        )
    return token, _token_lifetime_s(raw)


def _token_request(credentials: PasswordCredentials, project_id: str) -> bytes:
    """The body of IAM's password token request, scoped to one project."""
    user = {
        "name": credentials.user,
        "password": credentials.password,
        "domain": {"name": credentials.domain},
    }
    identity = {"methods": ["password"], "password": {"user": user}}
    return json.dumps(
        {"auth": {"identity": identity, "scope": {"project": {"id": project_id}}}}
    ).encode()


def _token_lifetime_s(raw: bytes) -> float:
    """Seconds between ``issued_at`` and ``expires_at`` in IAM's answer (24 h if absent)."""
    try:
        token = json.loads(raw)["token"]
        issued = datetime.fromisoformat(token["issued_at"].replace("Z", "+00:00"))
        expires = datetime.fromisoformat(token["expires_at"].replace("Z", "+00:00"))
        return max(0.0, (expires - issued).total_seconds())
    except (ValueError, KeyError, TypeError, AttributeError):
        return 24 * 3600.0


def make_auth(
    credentials: Credentials,
    *,
    session: aiohttp.ClientSession,
    iam_endpoint: str | None,
    cache: TokenCache | None = None,
) -> Auth:
    """The ``Auth`` that fits a kind of credentials."""
    if isinstance(credentials, AkSkCredentials):
        return AkSkAuth(credentials)
    return TokenAuth(credentials, session=session, iam_endpoint=iam_endpoint, cache=cache)
