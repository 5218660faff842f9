"""The package's shape, checked like a lint: sizes, and who may talk to Redis (issue #14).

Every exception is named in one of the two dicts below, with its reason. An entry marked
``# refactor in progress`` is there only because the code it names is being split today (#14):
remove it when that work lands (the tests fail on an entry that no longer matches the code, so
the lists cannot go stale), never add to it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio
import redis.asyncio.client
import redis.client

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("producer", "worker", "simulator")
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 40
MAX_CLASS_LINES = 150

# What may be larger than the limits: "path" for a module's lines, "path:Qual.name" for a class
# or a function (methods and nested functions by their dotted path).
SIZE_EXCEPTIONS: dict[str, str] = {}

# The Redis commands of redis-py (clients and pipelines, sync and async), less what only manages
# the connection object and sends no command of its own.
NOT_COMMANDS = frozenset(
    {
        "UNWATCH_COMMANDS",
        "aclose",
        "annotate_exception",
        "close",
        "from_pool",
        "from_url",
        "get_cache",
        "get_connection_kwargs",
        "get_encoder",
        "get_retry",
        "initialize",
        "load_scripts",
        "parse_response",
        "raise_first_error",
        "set_response_callback",
        "set_retry",
    }
)
REDIS_KINDS = (
    redis.Redis,
    redis.client.Pipeline,
    redis.asyncio.Redis,
    redis.asyncio.client.Pipeline,
)
REDIS_COMMANDS = frozenset(
    name for kind in REDIS_KINDS for name in dir(kind) if not name.startswith("_")
).difference(NOT_COMMANDS)

# Where Redis commands may be sent from: the job stores (their whole point), and what manages a
# Redis server rather than a job's data. Everything else asks a store. A key ending in "/" names
# every module under that folder.
REDIS_EXCEPTIONS: dict[str, str] = {
    # The job stores.
    "producer/store/": "the command line's job store: every job read and write of the commands",
    "worker/store/": "the workers' stores: jobs, rows and results, leases, tokens, server checks",
    # Not a job's data: the shared schedule of the rate limit, kept by its own scripts (one call
    # reserves a send slot for every worker at once; worker/limits/limiter.py says why).
    "worker/limits/limiter.py": "the rate limiter's schedule, reserved and cut by its own scripts",
    # The rival a user would write with Celery alone, measured beside tagsweep: its own
    # counters, not a tagsweep job's data, kept as its users would keep them.
    "bench/peers/celery_peer.py": "the Celery-only peer's own done/failed counters, not tagsweep's",
}

# A receiver is taken for a Redis client or pipeline when its name says so (these names, or any
# name containing "redis" or "pipe"), when it is annotated with a type whose name contains
# "Redis" or "Pipeline", or when it was assigned from a call that makes one (``from_url``,
# ``pipeline``, ``Redis(...)``, ``connect_redis``...). ``counts.get`` or ``headers.get`` therefore
# pass, ``client.get`` does not: the convention is part of the rule, so a dict is not named
# ``client``. Not seen: calling a registered script handed over from another module (its
# ``register_script`` is seen where it is made) and a client hidden in a container.
REDIS_NAMES = frozenset({"redis", "r", "client", "conn", "connection", "pipe", "pipeline", "tx"})


def _clean(name: str) -> str:
    return name.lstrip("_").lower()


def _says_redis(name: str) -> bool:
    clean = _clean(name)
    return clean in REDIS_NAMES or "redis" in clean or "pipe" in clean


def _makes_redis(value: ast.expr | None) -> bool:
    """Whether ``value`` builds or names a Redis client: a call of ``from_url``, ``pipeline``,
    ``Redis``, or anything whose name says redis (awaited or not)."""
    if isinstance(value, ast.Await):
        value = value.value
    if not isinstance(value, ast.Call):
        return False
    func = value.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name in {"from_url", "pipeline", "Redis", "StrictRedis"} or "redis" in name.lower()


def _typed_redis(annotation: ast.expr | None) -> bool:
    if annotation is None:
        return False
    text = ast.unparse(annotation)
    return "Redis" in text or "Pipeline" in text


def _target_name(target: ast.expr) -> str | None:
    """``x`` for ``x``, ``self.x`` for an attribute of self."""
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
        return f"{target.value.id}.{target.attr}"
    return None


def _redis_names(tree: ast.Module) -> set[str]:
    """Names and ``self.x`` attributes of the module annotated or assigned as Redis clients.

    One set per module, not per scope: a module that used one name for a Redis client in one
    function and for something else in another would be flagged, which is a naming smell too."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and _typed_redis(node.annotation):
            found.add(node.arg)
        elif isinstance(node, ast.AnnAssign) and (
            _typed_redis(node.annotation) or _makes_redis(node.value)
        ):
            name = _target_name(node.target)
            found |= {name, f"self.{name}"} if name and "." not in name else {name or ""}
        elif isinstance(node, ast.Assign) and _makes_redis(node.value):
            found |= {n for t in node.targets if (n := _target_name(t))}
        elif (
            isinstance(node, ast.withitem)
            and _makes_redis(node.context_expr)
            and node.optional_vars is not None
            and (n := _target_name(node.optional_vars))
        ):
            found.add(n)
    return found


def _is_redis(receiver: ast.expr, typed: set[str]) -> bool:
    if isinstance(receiver, ast.Call):
        return _makes_redis(receiver)
    name = _target_name(receiver)
    if name is None:
        return False
    return name in typed or _says_redis(name.rsplit(".", 1)[-1])


def redis_calls(source: str) -> list[str]:
    """``line: receiver.command`` for each Redis command called directly in ``source``."""
    tree = ast.parse(source)
    typed = _redis_names(tree)
    return [
        f"{node.lineno}: {ast.unparse(node.func)}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in REDIS_COMMANDS
        and _is_redis(node.func.value, typed)
    ]


def oversized(source: str) -> list[str]:
    """``""`` for a module over the limit, ``"Qual.name"`` for a class or function over it."""
    found = [""] if len(source.splitlines()) > MAX_MODULE_LINES else []

    def visit(node: ast.AST, prefix: str) -> Iterator[str]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = prefix + child.name
                limit = MAX_CLASS_LINES if isinstance(child, ast.ClassDef) else MAX_FUNCTION_LINES
                if (child.end_lineno or child.lineno) - child.lineno + 1 > limit:
                    yield name
                yield from visit(child, name + ".")
            else:
                yield from visit(child, prefix)

    return found + list(visit(ast.parse(source), ""))


def package_modules(packages: tuple[str, ...] = PACKAGES) -> Iterator[tuple[str, str]]:
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), path.read_text(encoding="utf-8")


def test_no_module_function_or_class_is_over_its_size_but_the_named_exceptions() -> None:
    """Modules <= 300 lines, functions <= 40, classes <= 150; SIZE_EXCEPTIONS lists what is
    over today, each with its reason, and no more (a fixed one must leave the list)."""
    found = {
        f"{module}:{name}" if name else module
        for module, source in package_modules()
        for name in oversized(source)
    }
    assert sorted(found - SIZE_EXCEPTIONS.keys()) == [], "over the size limits"
    assert sorted(SIZE_EXCEPTIONS.keys() - found) == [], "within the limits now: unlist them"


def _covers(name: str, module: str) -> bool:
    return module.startswith(name) if name.endswith("/") else module == name


def _excepted(module: str) -> bool:
    return any(_covers(name, module) for name in REDIS_EXCEPTIONS)


def test_only_the_job_stores_send_redis_commands() -> None:
    """No module of producer/, worker/ or bench/ calls a Redis command on a client or
    pipeline, but those REDIS_EXCEPTIONS names (the stores, and what manages the server); a
    listed module that no longer does must leave the list."""
    calling = {
        module: calls
        for module, source in package_modules((*PACKAGES, "bench"))
        if module.startswith(("producer/", "worker/", "bench/")) and (calls := redis_calls(source))
    }
    new = {module: calls for module, calls in calling.items() if not _excepted(module)}
    assert new == {}, "Redis commands outside the job stores: add a store method instead"
    stale = [name for name in REDIS_EXCEPTIONS if not any(_covers(name, m) for m in calling)]
    assert stale == [], "no Redis call: unlist them"


def test_every_exception_says_why() -> None:
    for name, reason in {**SIZE_EXCEPTIONS, **REDIS_EXCEPTIONS}.items():
        assert len(reason) > 10, name


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def f(client):\n    return client.hget('job', 'state')\n", ["2: client.hget"]),
        ("def f(self):\n    self._redis.set('k', 1)\n", ["2: self._redis.set"]),
        (
            "def f(db: redis.Redis):\n    with db.pipeline() as tx:\n        tx.hset('k', 1)\n",
            ["2: db.pipeline", "3: tx.hset"],
        ),
        (
            "async def f(store):\n    s = aioredis.from_url(u)\n    await s.eval(S, 0)\n",
            ["3: s.eval"],
        ),
        ("def f():\n    redis.Redis.from_url(u).ping()\n", ["2: redis.Redis.from_url(u).ping"]),
        ("def f(counts: dict[str, int]):\n    return counts.get('deleted')\n", []),
        ("def f(headers):\n    return headers.get('X-Request-Id'), os.environ.get('A')\n", []),
        ("def f(store):\n    return store.pending_chunks('job')\n", []),
    ],
)
def test_the_redis_check_tells_a_command_from_a_dict(source: str, expected: list[str]) -> None:
    assert redis_calls(source) == expected


def test_the_size_check_finds_a_long_function_inside_a_class() -> None:
    body = "".join(f"        x{n} = {n}\n" for n in range(MAX_FUNCTION_LINES))
    source = f"class Run:\n    def short(self):\n        pass\n\n    def long(self):\n{body}"
    assert oversized(source) == ["Run.long"]
    assert oversized("x = 1\n" * (MAX_MODULE_LINES + 1)) == [""]
