"""IAM tokens shared by every worker through Redis, encrypted so that Redis never holds one.

A token is a bearer secret, and tagsweep keeps no secret in Redis: the cached value is sealed
with AES-GCM under a key derived (HKDF-SHA256) from the IAM password, which every worker of that
identity has and Redis does not. Renewal is single-flight across hosts: one worker takes a short
lock and fetches; the others wait for the new token to appear.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import time
from collections.abc import Callable

import redis.asyncio as aioredis
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from worker.cloud.auth import Fetch, Token
from worker.store.tokens import TokenStore

LOCK_MS = 15_000
WAIT_STEP_S = 0.1


class RedisTokenCache:
    """Tokens per project for one identity, sealed in Redis."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        identity: str,
        secret: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._digest = hashlib.sha256(identity.encode()).hexdigest()[:24]
        self._store = TokenStore(client, self._digest)
        key = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=b"tagsweep-token-cache",
            info=identity.encode(),
        ).derive(secret.encode())
        self._aead = AESGCM(key)
        self._clock = clock

    async def get(self, project_id: str) -> Token | None:
        sealed = await self._store.sealed(project_id)
        if not sealed:
            return None
        raw = base64.b64decode(sealed)
        try:
            plain = self._aead.decrypt(raw[:12], raw[12:], self._digest.encode())
        except InvalidTag:
            return None  # sealed by another password: ignore it
        data = json.loads(plain)
        return Token(data["token"], float(data["expires_at_s"]))

    async def put(self, project_id: str, token: Token) -> None:
        nonce = os.urandom(12)
        plain = json.dumps({"token": token.value, "expires_at_s": token.expires_at_s}).encode()
        sealed = base64.b64encode(nonce + self._aead.encrypt(nonce, plain, self._digest.encode()))
        ttl_s = max(1, int(token.expires_at_s - self._clock()))
        await self._store.put(project_id, sealed, ttl_s)

    async def refresh(self, project_id: str, *, stale: str | None, fetch: Fetch) -> Token:
        if await self._store.lock(project_id, LOCK_MS):
            try:
                # Checked again under the lock: the last holder may have just put a new one.
                cached = await self.get(project_id)
                if (
                    cached is not None
                    and cached.value != stale
                    and cached.expires_at_s > self._clock()
                ):
                    return cached
                token = await fetch()
                await self.put(project_id, token)
                return token
            finally:
                await self._store.unlock(project_id)
        deadline = self._clock() + LOCK_MS / 1000
        while self._clock() < deadline:
            await asyncio.sleep(WAIT_STEP_S)
            cached = await self.get(project_id)
            if cached is not None and cached.value != stale and cached.expires_at_s > self._clock():
                return cached
        token = await fetch()  # the renewing worker died or hangs: fetch for ourselves
        await self.put(project_id, token)
        return token
