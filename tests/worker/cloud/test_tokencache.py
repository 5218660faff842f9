"""Tokens shared by workers through Redis: sealed at rest, renewed once for all."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from simulator.config import SimUser
from tests.helpers import TEST_PROJECT, new_image_id, write_csv
from worker.cloud.auth import Token, TokenAuth
from worker.cloud.client import ImsClient
from worker.cloud.credentials import PasswordCredentials
from worker.cloud.outcomes import OutcomeKind
from worker.cloud.tokencache import RedisTokenCache

USER = SimUser("bot", "a-long-password-77", "acme")
IMAGE = new_image_id()
Start = Callable[..., Any]


def worker_client(aredis: Any, session: aiohttp.ClientSession, url: str) -> ImsClient:
    """One "worker": its own TokenAuth and the shared Redis cache."""
    creds = PasswordCredentials(USER.name, USER.password, USER.domain)
    cache = RedisTokenCache(aredis, identity=creds.identity, secret=creds.password)
    auth = TokenAuth(creds, session=session, iam_endpoint=url, cache=cache)
    return ImsClient(session, endpoint=url, auth=auth)


async def test_workers_share_one_token_and_one_renewal(
    aredis: Any, start_sim: Start, tmp_path: Path
) -> None:
    seed = write_csv(tmp_path / "s.csv", [{"image_id": IMAGE, "key": "k"}], ["image_id", "key"])
    server = await start_sim(seed, users=(USER,), token_ttl_s=3600)
    async with aiohttp.ClientSession() as session:
        workers = [worker_client(aredis, session, server.url) for _ in range(4)]
        first = await asyncio.gather(*(w.list_image_tags(TEST_PROJECT, IMAGE) for w in workers))
        assert {o.kind for o in first} == {OutcomeKind.OK}
        assert len(server.sim.gateway.tokens) == 1
        later = datetime.now(UTC) + timedelta(hours=2)
        server.sim.gateway.now = lambda: later  # every worker's token is now expired
        second = await asyncio.gather(*(w.list_image_tags(TEST_PROJECT, IMAGE) for w in workers))
    assert {o.kind for o in second} == {OutcomeKind.OK}
    assert len(server.sim.gateway.tokens) == 2  # one renewal for the four
    sealed = "".join([str(v) for v in [await aredis.get(k) for k in await aredis.keys("*")]])
    assert all(token not in sealed for token in server.sim.gateway.tokens)


async def test_a_token_sealed_with_another_password_is_ignored(aredis: Any) -> None:
    one = RedisTokenCache(aredis, identity="user:d/u", secret="password-one")
    two = RedisTokenCache(aredis, identity="user:d/u", secret="password-two")
    await one.put("p", Token("MIIsecret", 9e9))
    assert await one.get("p") == Token("MIIsecret", 9e9)
    assert await two.get("p") is None
