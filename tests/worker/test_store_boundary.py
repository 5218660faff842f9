"""Workers reach Redis only through their stores (``worker/store/``): a grep, like a lint."""

from __future__ import annotations

import re
from pathlib import Path

WORKER = Path(__file__).resolve().parents[2] / "worker"
# A Redis command called on a client, a pipeline or a registered script's client.
COMMAND = re.compile(
    r"\.(register_script|pipeline|eval|evalsha|hgetall|hget|hmget|hset|hdel|hincrby|zadd|zrem"
    r"|zcount|zrange\w*|zscore|sadd|srem|smembers|sismember|lpush|rpush|lrange|bitfield\w*"
    r"|setbit|getbit|expire|pexpire\w*|persist|incr\w*|config_get|config_set|scan_iter"
    r"|flushdb|flushall)\("
    r"|\b(redis|_redis|client|pipe)\.(get|set|delete|keys|info)\("
)
# The shared rate limiter keeps its schedule with its own scripts (worker/ratelimit.py says
# why); the runtime only opens and closes the process's connection.
ALLOWED = {"ratelimit.py"}


def test_no_worker_module_outside_the_stores_calls_redis_commands() -> None:
    found = [
        f"{path.relative_to(WORKER)}:{number}: {line.strip()}"
        for path in sorted(WORKER.rglob("*.py"))
        if path.parent.name != "store" and path.name not in ALLOWED
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if COMMAND.search(line) and not line.lstrip().startswith("#")
    ]
    assert found == []
