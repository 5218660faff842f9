"""What the tests share besides fixtures: credentials, builders of CSV files, the helpers that
drive real processes (simulator, workers, the command line) and the in-process engine's job.

Fixtures live in the conftest files; anything a test module imports comes from here."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import random
import re
import select
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis

from producer.batching import group_for_tms
from producer.local import LocalSimulator, LocalWorker, tagsweep_command
from producer.status import JobStatus, read_status
from simulator.server import RunningSimulator
from worker import keys
from worker.cloud.auth import AkSkAuth
from worker.cloud.client import ImsClient
from worker.cloud.credentials import AkSkCredentials
from worker.engine import EngineContext
from worker.formats import decode_results, encode_chunk
from worker.jobs import JobOptions
from worker.limits.limiter import SharedRateLimiter, bucket_key
from worker.model import Batch, ImageBatch, TagRows, image_batches
from worker.redis_url import client_url
from worker.store import ResultStore

TEST_AK = "TESTAKEXAMPLE0000001"
TEST_SK = "test-sk-do-not-log-4f1c9e"
TEST_PROJECT = "0123456789abcdef0123456789abcdef"
REPO = Path(__file__).resolve().parents[1]
REGION = "sim-region-1"
HEADER = ["image_id", "key", "value"]


# Time for the shared rate limiter.


class Clock:
    """Time for the limiter's scripts (ms), moved by its sleeps, which it records.

    ``SharedRateLimiter(..., sleep=clock.sleep, clock_ms=clock)``: nothing really sleeps, and a
    limiter told to wait does not spin until real time catches up (a sleep that returns at once
    without moving its clock made it ask again hundreds of thousands of times)."""

    def __init__(self) -> None:
        self.now_ms = 1_000_000.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now_ms

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now_ms += seconds * 1000

    def advance(self, seconds: float) -> None:
        self.now_ms += seconds * 1000


# CSV files.


def new_image_id() -> str:
    return str(uuid.uuid4())


def images(n: int) -> list[str]:
    return [new_image_id() for _ in range(n)]


def write_csv(path: Path, rows: Iterable[dict[str, str]], columns: list[str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def seeded(tmp_path: Path, n: int) -> tuple[Path, Path]:
    """A seed of ``n`` images with one tag each, and the job that deletes those tags."""
    ids = images(n)
    seed = write(tmp_path / "seed.csv", HEADER, [[i, "env", "a"] for i in ids])
    job = write(tmp_path / "job.csv", HEADER, [[i, "env", "a"] for i in ids])
    return seed, job


def read_report(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# A job's data in Redis.


def recorded_rows(client: redis.Redis, job_id: str) -> list[int]:
    """Every row named in the job's results lists, once per time it was recorded (for a job
    never retried: one entry per row with a result)."""
    chunks = int(client.hget(keys.job(job_id), "next_chunk") or 0)
    refs: list[int] = []
    for number in range(chunks):
        for entry in client.lrange(keys.chunk_results(job_id, number), 0, -1):
            refs += decode_results(entry)[0]
    return refs


def wait_for_job(
    redis_url: str,
    job_id: str,
    *,
    timeout_s: float,
    until: Callable[[JobStatus], bool] | None = None,
) -> JobStatus:
    """Poll the job until ``until`` holds (default: finished with every row counted)."""
    client = redis.Redis.from_url(client_url(redis_url), decode_responses=True)
    done = until or (lambda s: s.over)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            current = read_status(client, job_id)
            if done(current):
                return current
            if time.monotonic() > deadline:
                pytest.fail(f"job {job_id} not there after {timeout_s}s: {current.as_json()}")
            time.sleep(0.2)
    finally:
        client.close()


@dataclass(frozen=True)
class TlsFiles:
    """A CA, and a server certificate it signed for 127.0.0.1 with its key (PEM files)."""

    ca: Path
    cert: Path
    key: Path


def make_tls_files(directory: Path) -> TlsFiles:
    """A throwaway CA and a server certificate for 127.0.0.1, valid for a day."""
    from datetime import UTC, datetime, timedelta
    from ipaddress import ip_address

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    server_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tagsweep test CA")])

    def certificate(
        subject: x509.Name, key: ec.EllipticCurvePrivateKey, extension: x509.ExtensionType
    ) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(extension, critical=isinstance(extension, x509.BasicConstraints))
            .sign(ca_key, hashes.SHA256())
        )

    ca = certificate(ca_name, ca_key, x509.BasicConstraints(ca=True, path_length=None))
    server = certificate(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]),
        server_key,
        x509.SubjectAlternativeName([x509.IPAddress(ip_address("127.0.0.1"))]),
    )
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


# Real processes: the simulator, workers, the command line.


@dataclass
class SimProcess:
    """A simulator process, with helpers to read its state over HTTP."""

    local: LocalSimulator

    @property
    def url(self) -> str:
        return self.local.url

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=5) as response:  # noqa: S310
            return json.load(response)

    def post(self, path: str, body: object) -> Any:
        request = urllib.request.Request(  # noqa: S310
            self.url + path, data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return json.load(response)

    def stats(self) -> dict[str, Any]:
        return dict(self.get("/_sim/stats"))

    def tags(self, project_id: str, image_id: str) -> dict[str, str] | None:
        try:
            return dict(self.get(f"/_sim/images/{project_id}/{image_id}")["tags"])
        except urllib.error.HTTPError:
            return None


class WorkerProcess(LocalWorker):
    """A local worker whose stdout tests read as JSON lines."""

    def log_events(self) -> list[dict[str, Any]]:
        # Every stdout line must be one JSON object: json.loads fails the test otherwise.
        return [json.loads(line) for line in self.log_path.read_text().splitlines()]


def worker_env(redis_url: str, sim: SimProcess, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAGSWEEP_", "HUAWEICLOUD_"))}
    env.update(
        REDIS_URL=redis_url,
        HUAWEICLOUD_SDK_AK=TEST_AK,
        HUAWEICLOUD_SDK_SK=TEST_SK,
        HUAWEICLOUD_SDK_PROJECT_ID=TEST_PROJECT,
        TAGSWEEP_ENDPOINT=sim.url,
        TAGSWEEP_REGION=REGION,
        TAGSWEEP_LOG_FORMAT="json",
    )
    env.update(extra)
    return env


def user_env(**extra: str) -> dict[str, str]:
    """The environment of a user with no tagsweep settings (no REDIS_URL: the private Redis)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TAGSWEEP_", "HUAWEICLOUD_")) and k != "REDIS_URL"
    }
    env.update(extra)
    return env


def sim_user_env(sim: SimProcess, *, sk: str = TEST_SK, **extra: str) -> dict[str, str]:
    """A user's environment (no REDIS_URL: the private Redis) aimed at ``sim`` with its AK and
    ``sk``."""
    return user_env(
        HUAWEICLOUD_SDK_AK=TEST_AK,
        HUAWEICLOUD_SDK_SK=sk,
        TAGSWEEP_ENDPOINT=sim.url,
        HUAWEICLOUD_SDK_PROJECT_ID=TEST_PROJECT,
        TAGSWEEP_REGION="r1",
        **extra,
    )


def run_cli(
    env: dict[str, str], *args: str, cwd: Path | None = None, timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``tagsweep ARGS``, its output captured as text; the caller checks the exit code."""
    return subprocess.run(
        tagsweep_command(*args),
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def submit(env: dict[str, str], *args: str) -> str:
    """Run ``tagsweep submit`` and return the job id (the last line of stdout)."""
    result = subprocess.run(
        tagsweep_command("submit", *args), env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def report_rows(env: dict[str, str], job_id: str, *only: str) -> list[dict[str, str]]:
    args = ["report", job_id] + [f"--only={status}" for status in only]
    result = subprocess.run(
        tagsweep_command(*args), env=env, capture_output=True, text=True, check=True
    )
    return list(csv.DictReader(io.StringIO(result.stdout)))


def converse(
    command: list[str], env: dict[str, str], cwd: Path, answer: str | None
) -> tuple[int, str]:
    """Run a command on a terminal (a pty as stdin and stderr), answer its question if it asks
    one, and return (exit code, what the terminal showed)."""
    controller, terminal = pty.openpty()
    with subprocess.Popen(
        command, stdin=terminal, stderr=terminal, stdout=subprocess.PIPE, env=env, cwd=cwd
    ) as process:
        os.close(terminal)
        shown = b""
        answered = False
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.2)
            if ready:
                try:
                    shown += os.read(controller, 4096)
                except OSError:
                    break
            if answer is not None and not answered and b"[y/N]" in shown:
                os.write(controller, answer.encode() + b"\n")
                answered = True
        out, _ = process.communicate(timeout=30)
    os.close(controller)
    return process.returncode, shown.decode(errors="replace") + out.decode()


# The in-process engine's job: one chunk of two tags on each of 30 images.

JOB = "enginejob"
IMAGES = [new_image_id() for _ in range(30)]


async def no_sleep(_: float) -> None:
    return None


async def setup(
    aredis: Any,
    session: aiohttp.ClientSession,
    server: RunningSimulator,
    *,
    ak: str = TEST_AK,
    sk: str = TEST_SK,
    group: bool = False,
    **options: Any,
) -> EngineContext:
    """The engine's job (``group``: as TMS batches of 20 images) and its context."""
    batches: list[Batch] = [
        ImageBatch(
            "r", TEST_PROJECT, image, (TagRows("a", "v", (n * 2,)), TagRows("b", "v", (n * 2 + 1,)))
        )
        for n, image in enumerate(IMAGES)
    ]
    if group:
        batches = list(group_for_tms(image_batches(batches), max_tags=20))
    options.setdefault("rate_per_s", 1000.0)
    await aredis.hset(
        keys.job(JOB),
        mapping={
            "state": "queued",
            "total": 60,
            "chunks": 1,
            "options": JobOptions(**options).to_json(),
        },
    )
    await aredis.set(keys.chunk(JOB, 0), encode_chunk(batches))
    client = ImsClient(session, endpoint=server.url, auth=AkSkAuth(AkSkCredentials(ak, sk)))
    limiter = SharedRateLimiter(aredis, bucket_key(server.url, client.identity))
    return EngineContext(
        store=ResultStore(aredis),
        client_for=lambda _: client,
        limiter_for=lambda *_: limiter,
        sleep=no_sleep,
        rng=random.Random(5),
    )


async def results(aredis: Any) -> dict[str, list[Any]]:
    found = await ResultStore(aredis).chunk_results(JOB, 0)
    return {str(ref): json.loads(result.to_json()) for ref, result in found.items()}


# An end-to-end scene: what the ``scene`` fixture of tests/e2e/conftest.py builds.


@dataclass
class Scene:
    """A seeded simulator process, the environment of its workers and commands, the workers
    started on it, and the Redis they share."""

    sim: SimProcess
    env: dict[str, str]
    redis_url: str
    workers: list[WorkerProcess]
    start_worker: Callable[..., WorkerProcess]

    def add_worker(self, *, processes: int = 2, **extra_env: str) -> WorkerProcess:
        """Start a worker on the scene's environment, plus ``extra_env`` for this one."""
        worker = self.start_worker({**self.env, **extra_env}, processes=processes)
        self.workers.append(worker)
        return worker

    def submit(self, job_csv: Path, *args: str) -> str:
        return submit(self.env, str(job_csv), *args)

    def wait(
        self, job_id: str, *, timeout_s: float, until: Callable[[JobStatus], bool] | None = None
    ) -> JobStatus:
        return wait_for_job(self.redis_url, job_id, timeout_s=timeout_s, until=until)

    def run(self, job_csv: Path, *args: str, timeout_s: float) -> tuple[str, JobStatus]:
        """Submit the job and wait until it is over: (job id, its final status)."""
        job_id = self.submit(job_csv, *args)
        return job_id, self.wait(job_id, timeout_s=timeout_s)

    def report(self, job_id: str, *only: str) -> list[dict[str, str]]:
        return report_rows(self.env, job_id, *only)


MakeScene = Callable[..., Scene]


# A real browser: headless Chromium, one process per page (what the ``browser`` fixture gives).

# Chromium's flags on a machine with no display, GPU, sandbox or network beyond loopback.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@dataclass
class Browser:
    """Headless Chromium: a page's DOM once its script ran, or a screenshot of it."""

    binary: str
    profile: Path

    def _run(self, url: str, *args: str) -> str:
        command = [self.binary, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", *args, url]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
        return done.stdout

    def dom(self, url: str) -> str:
        """The page's DOM after 2 s of (virtual) time: its script has run."""
        return self._run(url, "--virtual-time-budget=2000", "--dump-dom")

    def screenshot(self, url: str, path: Path, *, size: str = "1280,900") -> Path:
        budget = "--virtual-time-budget=2000"
        self._run(url, budget, f"--screenshot={path}", f"--window-size={size}")
        return path


# The shipped monitoring (deploy/): alert rules and the Grafana board.

DEPLOY = REPO / "deploy"
# Grafana's own variables, given values so that a panel's query parses as PromQL.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}


def monitoring_expressions() -> dict[str, str]:
    """Every PromQL expression of the alert rules and the board (panel targets and the
    variables' ``label_values`` selectors), by where it is."""
    from ruamel.yaml import YAML

    found: dict[str, str] = {}
    rules = YAML(typ="safe").load((DEPLOY / "prometheus" / "rules.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            found[f"rule {rule.get('alert') or rule['record']}"] = rule["expr"]
    board = json.loads((DEPLOY / "grafana" / "dashboards" / "tagsweep.json").read_text())
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(name, value)
            found[f"panel {panel['title']!r} {target['refId']}"] = expr
    for variable in board["templating"]["list"]:
        call = re.fullmatch(r"label_values\((.+),\s*\w+\)", variable["query"]["query"])
        assert call is not None, variable["query"]
        found[f"variable {variable['name']}"] = call[1]
    return found


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects, from its syntax tree (promql-parser: the
    Python binding of GreptimeDB's PromQL parser, so that functions, keywords, label names
    and durations are never taken for metrics as a hand-written tokenizer might)."""
    import promql_parser

    names: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name, f"a selector without a metric name in {expr!r}"
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), pre_visit=visit)
    return names
