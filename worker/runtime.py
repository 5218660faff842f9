"""One runtime per worker process: its event loop, aiohttp session, Redis client and IMS
clients, created after fork and kept for the life of the process (connections are reused)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

import aiohttp
import redis.asyncio as aioredis

from worker.cloud.auth import Auth, domain_auth, make_auth
from worker.cloud.client import ImsClient
from worker.cloud.credentials import CredentialSources, PasswordCredentials, load_credentials
from worker.cloud.tms import TmsClient
from worker.cloud.tokencache import RedisTokenCache
from worker.engine import ChunkOutcome, EngineContext, run_chunk
from worker.engine.background import log_loop_error
from worker.errors import CredentialsError
from worker.limits.limiter import SharedRateLimiter
from worker.limits.scopes import DEFAULT_API, Schedules
from worker.logs import REDACTOR
from worker.model import Scope
from worker.redis_url import client_url
from worker.settings import Settings
from worker.store import ResultStore

T = TypeVar("T")
DEFAULT_IAM_ENDPOINT = "https://iam.myhuaweicloud.com"


class Runtime:
    """The long-lived parts of a worker process."""

    def __init__(self, settings: Settings, credentials: CredentialSources) -> None:
        self.settings = settings
        self.credentials = credentials
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(log_loop_error)
        self._context: EngineContext | None = None
        self._session: aiohttp.ClientSession | None = None
        self._redis: aioredis.Redis | None = None
        self._auth: Auth | None = None
        self._clients: dict[str, ImsClient] = {}
        self._tms_clients: dict[tuple[str, str], TmsClient] = {}
        self._limiters: dict[tuple[str, str, str], SharedRateLimiter] = {}
        secrets = credentials.credentials
        REDACTOR.register(
            # The AK is an id, not a key, but a job's logs have no need of it either.
            [
                getattr(secrets, name, None)
                for name in ("ak", "sk", "security_token", "token", "password")
            ]
        )

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    async def context(self) -> EngineContext:
        """Build the engine context on first use, inside this process's loop."""
        if self._context is None:
            self._session = aiohttp.ClientSession(connector=make_connector(self.settings))
            url = client_url(self.settings.redis_url)  # ``select`` gives REDIS_URL as it is
            self._redis = aioredis.Redis.from_url(url, decode_responses=True)
            iam = (
                self.settings.iam_endpoint or self.credentials.iam_endpoint or DEFAULT_IAM_ENDPOINT
            )
            credentials = self.credentials.credentials
            # Password users share their tokens (sealed) through Redis: one renewal for all.
            cache = (
                RedisTokenCache(
                    self._redis, identity=credentials.identity, secret=credentials.password
                )
                if isinstance(credentials, PasswordCredentials)
                else None
            )
            self._auth = make_auth(
                credentials, session=self._session, iam_endpoint=iam, cache=cache
            )
            self._context = EngineContext(
                store=ResultStore(self._redis),
                client_for=self._client_for,
                limiter_for=self._limiter_for,
                tms_client_for=self._tms_client_for,
                concurrency=self.settings.concurrency,
                lease_s=self.settings.lease_s,
            )
        return self._context

    def _client_for(self, endpoint: str) -> ImsClient:
        client = self._clients.get(endpoint)
        if client is None:
            assert self._session is not None
            assert self._auth is not None
            client = self._clients[endpoint] = ImsClient(
                self._session, endpoint=endpoint, auth=self._auth
            )
        return client

    def _tms_client_for(self, endpoint: str, domain_id: str | None) -> TmsClient:
        """The TMS client of an endpoint and account (the job's, else this worker's own)."""
        domain = domain_id or self.credentials.domain_id
        if not domain:
            raise CredentialsError(
                "TMS needs the account (domain) id: --domain-id, HUAWEICLOUD_SDK_DOMAIN_ID, "
                "or domain_id in the credentials profile"
            )
        client = self._tms_clients.get((endpoint, domain))
        if client is None:
            assert self._session is not None
            auth = domain_auth(self.credentials.credentials, domain)
            client = self._tms_clients[(endpoint, domain)] = TmsClient(
                self._session, endpoint=endpoint, auth=auth, domain_id=domain
            )
        return client

    def _limiter_for(
        self, endpoint: str, identity: str, api: str = DEFAULT_API
    ) -> SharedRateLimiter:
        """The process's limiter of an (endpoint, identity) of ``api`` (ims, tms): on the user
        schedule first, on another scope's once a 429 names it."""
        limiter = self._limiters.get((api, endpoint, identity))
        if limiter is None:
            assert self._redis is not None
            schedules = Schedules(endpoint, identity, self.settings.egress_id, api)
            limiter = self._limiters[(api, endpoint, identity)] = SharedRateLimiter(
                self._redis, schedules.key(Scope.USER), schedules=schedules
            )
        return limiter

    async def run_chunk(self, job_id: str, number: int) -> ChunkOutcome:
        return await run_chunk(await self.context(), job_id, number)

    async def aclose(self) -> None:
        if self._context is not None:
            self._context.progress.close()  # a warm shutdown: every last interval said
        if self._session is not None:
            await self._session.close()
        if self._redis is not None:
            await self._redis.aclose()


def make_connector(settings: Settings) -> aiohttp.TCPConnector:
    """The process's connection pool, its connections bound to ``settings.source_address``
    when one is set (so that a gateway counting per source address sees that one)."""
    local = None if settings.source_address is None else (settings.source_address, 0)
    return aiohttp.TCPConnector(limit=max(8, settings.concurrency * 2), local_addr=local)


_runtime: Runtime | None = None
_runtime_pid = 0


def get_runtime() -> Runtime:
    """This process's runtime; a forked child builds its own instead of sharing its parent's."""
    global _runtime, _runtime_pid  # one runtime per process, by design
    if _runtime is None or _runtime_pid != os.getpid():
        _runtime = Runtime(Settings.from_env(), load_credentials(os.environ))
        _runtime_pid = os.getpid()
    return _runtime


def close_runtime() -> None:
    global _runtime
    if _runtime is not None and _runtime_pid == os.getpid():
        _runtime.run(_runtime.aclose())
        _runtime.loop.close()
        _runtime = None
