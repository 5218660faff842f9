"""The start-up check against real redis-servers, CONFIG and INFO disabled included."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis

from worker.errors import EvictionRefused
from worker.redis_safety import check_server


def test_a_safe_server_passes_and_one_without_persistence_is_warned_about(
    start_redis_server: Callable[..., str],
) -> None:
    durable = redis.Redis.from_url(start_redis_server("--appendonly", "yes"))
    assert check_server(durable) == []
    [warning] = check_server(redis.Redis.from_url(start_redis_server()))
    assert "keeps nothing on disk" in warning


def test_the_policy_is_read_from_info_when_config_is_disabled(
    start_redis_server: Callable[..., str],
) -> None:
    url = start_redis_server(
        "--maxmemory-policy", "volatile-lru", "--rename-command", "CONFIG", '""'
    )
    client = redis.Redis.from_url(url)
    with pytest.raises(EvictionRefused, match="maxmemory-policy volatile-lru"):
        check_server(client)
    # No AOF, but the RDB settings cannot be read: no persistence warning, the override warns.
    [warning] = check_server(client, allow_eviction=True)
    assert "--allow-eviction: going on anyway" in warning


def test_a_server_that_hides_its_policy_gets_a_warning_not_a_refusal(
    start_redis_server: Callable[..., str],
) -> None:
    url = start_redis_server(
        "--maxmemory-policy",
        "allkeys-lru",
        "--rename-command",
        "CONFIG",
        '""',
        "--rename-command",
        "INFO",
        "info-under-another-name",
    )
    [warning] = check_server(redis.Redis.from_url(url))
    assert warning.startswith("cannot read this Redis's maxmemory-policy")
