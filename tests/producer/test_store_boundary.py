"""Outside the job store (``producer/store/``), no producer module sends Redis a command: it
asks the store. A lint-like check over the source."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import redis
import redis.client

PRODUCER = Path(__file__).resolve().parents[2] / "producer"
STORE = PRODUCER / "store"
# Every command method of a client or pipeline (get, hset, pipeline, eval, scan_iter, ...).
COMMANDS = {
    name
    for kind in (redis.Redis, redis.client.Pipeline)
    for name in dir(kind)
    if not name.startswith("_")
} - {"close", "from_url", "from_pool"}
# What a client is called: ``client``, ``pipe``, ``self.redis``, ``probe``, or a client made in
# place (``redis.Redis.from_url(url).ping()``); a Path named ``target`` is not one.
CLIENT = re.compile(r"(client|pipe|redis|probe|conn)\w*$|from_url\(.*\)$", re.I)


def redis_calls(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        receiver = ast.unparse(node.func.value)
        if node.func.attr in COMMANDS and CLIENT.search(receiver):
            found.append(f"{path.name}:{node.lineno} {receiver}.{node.func.attr}()")
    return found


def test_no_producer_module_outside_the_store_calls_redis_commands() -> None:
    modules = [p for p in PRODUCER.rglob("*.py") if STORE not in p.parents]
    assert modules
    assert [call for path in sorted(modules) for call in redis_calls(path)] == []


def test_the_check_finds_a_command_call() -> None:
    """The check itself: the store's own modules are full of them."""
    assert redis_calls(STORE / "records.py")
    assert any("from_url" in call for call in redis_calls(Path(__file__)))  # the line below


def _example() -> None:  # pragma: no cover - read by the test above, never run
    redis.Redis.from_url("redis://").ping()
