"""Every command against the usual mistakes: one line naming the problem, exit 2, no traceback,
and nothing started or queued."""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis

from producer.collect import collect
from producer.submit import create_job
from tests.helpers import run_cli, user_env
from worker.jobs import JobOptions

REPO = Path(__file__).resolve().parents[2]
SAMPLE = ("sample.csv", "--project-id", "0123456789abcdef0123456789abcdef", "--region", "r1")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A folder holding sample.csv, noimages.csv (no image_id column), header.csv (a header and
    no row), latin1.csv (a row in Latin-1 on line 3) and a sub-folder ``somedir``."""
    shutil.copy(REPO / "examples" / "sample.csv", tmp_path / "sample.csv")
    (tmp_path / "somedir").mkdir()
    (tmp_path / "noimages.csv").write_text("key,value\nenv,test\n")
    (tmp_path / "header.csv").write_text("image_id,key,value\n\n")
    latin1 = "image_id,key,value\n3b6c2f70-0000-4000-8000-000000000001,k,v\n{},café,v\n"
    (tmp_path / "latin1.csv").write_bytes(latin1.format(uuid.uuid4()).encode("latin-1"))
    return tmp_path


@pytest.fixture
def job_id(e2e_redis_url: str, workdir: Path) -> str:
    """A job written into the test Redis (nothing queued: no worker is involved)."""
    client = redis.Redis.from_url(e2e_redis_url, decode_responses=True)
    collection = collect([str(workdir / "sample.csv")], default_project_id="p", default_region="r")
    job, _ = create_job(client, collection, options=JobOptions(), max_tags=20)
    client.close()
    return job


def assert_one_line(result: subprocess.CompletedProcess[str], *names: str) -> None:
    code, err = result.returncode, result.stderr
    assert code == 2, err
    assert "Traceback" not in err
    assert err.startswith("tagsweep"), err
    assert err.count("\n") == 1, err
    for name in names:
        assert name in err, err


FILE_MISTAKES = [
    (("run", "missing.csv"), "missing.csv: cannot open: No such file"),
    (("run", "somedir"), "somedir: cannot open: Is a directory"),
    (("run", "missing.csv", "--simulate"), "missing.csv: cannot open"),
    (("plan", "missing.csv"), "missing.csv: cannot open"),
    # A header and no row: a job of 0 rows, refused before Redis or a worker starts.
    (("run", "header.csv"), "header.csv: no data rows, only a header: nothing to do"),
    (("run", "header.csv", "--simulate"), "header.csv: no data rows"),
    (("plan", "header.csv"), "header.csv: no data rows"),
    (("submit", "header.csv"), "header.csv: no data rows"),
    (("validate", "header.csv", "--project-id", "p", "--region", "r"), "header.csv: no data"),
    (("plan", "somedir", "--simulate"), "somedir: cannot open: Is a directory"),
    (("submit", "missing.csv"), "missing.csv: cannot open"),
    (("submit", "somedir"), "somedir: cannot open: Is a directory"),
    (("run", *SAMPLE, "--report", "/nonexistent/dir/x.csv"), "no such directory"),
    (("run", *SAMPLE, "--report", "somedir"), "'somedir' is a directory"),
    (("run", *SAMPLE, "--simulate", "--report", "/nonexistent/d/x.csv"), "/nonexistent/d/x.csv"),
    (("plan", *SAMPLE, "-o", "/nonexistent/dir/p.csv"), "cannot write the plan"),
    (("run", *SAMPLE, "--rate", "fast"), "'--rate'"),
    (("run", *SAMPLE, "--workers", "0"), "'--workers'"),
    (("run", *SAMPLE, "--api", "v9"), "'--api'"),
    (("run", *SAMPLE, "--bogus"), "--bogus"),
    (("status", "--interval", "-1"), "'--interval'"),
    (("nosuchcommand",), "nosuchcommand"),
    (("simulator", "--seed", "missing.csv"), "'missing.csv' does not exist"),
    (("simulator", "--seed", "somedir"), "'somedir' is a directory"),
    (("simulator", "--port", "99999"), "'--port'"),
    (("simulator", "--fail-rate", "503=2"), "--fail-rate"),
    (("simulator", "--drop-rate", "5"), "'--drop-rate'"),
    (("simulator", "--latency-ms", "-5"), "'--latency-ms'"),
    (("simulator", "--token-ttl", "0"), "'--token-ttl'"),
    (("simulator", "--seed", "noimages.csv"), "noimages.csv: no image_id column"),
    (("simulator", "--seed", "latin1.csv"), "latin1.csv:3: not valid UTF-8"),
    (("worker", "-c", "many"), "'--concurrency'"),
    (("exporter", "--port", "99999"), "'--port'"),
    # Permission bits say yes to root here; only trying to open the file says no.
    (("run", *SAMPLE, "--report", "/proc/version"), "cannot write the report to /proc/version"),
]


@pytest.mark.parametrize(("args", "named"), FILE_MISTAKES)
def test_a_mistake_is_one_line_exit_2_and_nothing_starts(
    workdir: Path, args: tuple[str, ...], named: str
) -> None:
    """Nothing is started: no private Redis folder appears (so nothing can have been queued)."""
    result = run_cli(user_env(), *args, cwd=workdir)
    assert_one_line(result, named)
    assert not (workdir / ".tagsweep").exists()


@pytest.mark.parametrize("command", ["run", "plan"])
def test_run_without_credentials_is_one_line_and_nothing_starts(
    workdir: Path, command: str
) -> None:
    """The local workers would fail every chunk while the terminal showed 0 rows/s forever."""
    result = run_cli(user_env(HOME=str(workdir)), command, *SAMPLE, cwd=workdir)
    assert_one_line(result, "no credentials")
    assert not (workdir / ".tagsweep").exists()


def test_undo_without_credentials_is_run_s_line_and_changes_nothing(
    workdir: Path, e2e_redis_url: str
) -> None:
    """A finished --backup job, then `undo` with no credentials: it followed its undo job at
    0 rows/s until Ctrl-C (the local workers failed every chunk); now run's one line, exit 2,
    and not a key of the Redis written (no undo job, nothing queued)."""
    env = user_env(REDIS_URL=e2e_redis_url, HOME=str(workdir))
    done = run_cli(env, "run", "sample.csv", "--simulate", "--backup", "--rate", "200", cwd=workdir)
    assert done.returncode == 0, done.stderr
    job = re.findall(r"^job +([0-9a-f]+): delete with backup", done.stdout, re.MULTILINE)[0]
    client = redis.Redis.from_url(e2e_redis_url)
    before = {key: client.dump(key) for key in client.scan_iter()}
    undo = run_cli(env, "undo", job, cwd=workdir, timeout_s=60)
    assert_one_line(undo, "no credentials")
    assert undo.stderr == run_cli(env, "run", *SAMPLE, cwd=workdir).stderr  # run's very line
    assert {key: client.dump(key) for key in client.scan_iter()} == before
    client.close()


def test_a_simulated_job_is_not_offered_for_undo_and_undo_and_retry_refuse_it(
    workdir: Path, e2e_redis_url: str
) -> None:
    """`run --simulate --backup` printed `undo tagsweep undo JOB`, and that undo then sent
    (with the user's credentials) to the run's simulator, gone with the run."""
    env = user_env(REDIS_URL=e2e_redis_url, HOME=str(workdir))
    done = run_cli(env, "run", "sample.csv", "--simulate", "--backup", "--rate", "200", cwd=workdir)
    assert done.returncode == 0, done.stderr
    assert "tagsweep undo" not in done.stdout + done.stderr
    job = re.findall(r"^job +([0-9a-f]+): delete with backup", done.stdout, re.MULTILINE)[0]
    with_credentials = {
        **env,
        "HUAWEICLOUD_SDK_AK": "AK",
        "HUAWEICLOUD_SDK_SK": "SK",
        "HUAWEICLOUD_SDK_PROJECT_ID": SAMPLE[2],
        "TAGSWEEP_REGION": "r1",
    }
    undo = run_cli(with_credentials, "undo", job, cwd=workdir, timeout_s=60)
    assert_one_line(undo, f"job {job} ran with --simulate")
    retry = run_cli(with_credentials, "retry", job, "--only", "deleted", cwd=workdir)
    assert_one_line(retry, f"job {job} ran with --simulate")


@pytest.mark.parametrize("command", [("tagsweep", "worker"), ("celery", "-A", "worker", "worker")])
def test_a_worker_without_credentials_refuses_to_start(
    workdir: Path, e2e_redis_url: str, command: tuple[str, ...]
) -> None:
    """It logged Celery's traceback of the signal handler, then started and took chunks it
    could only fail; now one line and exit 2."""
    env = user_env(REDIS_URL=e2e_redis_url, HOME=str(workdir))
    if command[0] == "tagsweep":
        result = run_cli(env, "worker", "-c", "1", cwd=workdir, timeout_s=60)
        assert_one_line(result, "no credentials")
        return
    celery = [sys.executable, "-m", "celery", *command[1:], "-c", "1"]
    done = subprocess.run(
        celery, env=env, cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2, done.stderr
    assert "worker.refused: no credentials" in done.stderr
    assert "Traceback" not in done.stderr
    assert "ready" not in done.stderr


def test_tagsweep_alone_prints_its_help(workdir: Path) -> None:
    result = run_cli(user_env(), cwd=workdir)
    assert result.stderr.startswith("Usage: tagsweep [OPTIONS] COMMAND"), result.stderr
    assert "Traceback" not in result.stderr


def test_validate_names_a_missing_file_and_a_directory(workdir: Path) -> None:
    result = run_cli(user_env(), "validate", "missing.csv", "somedir", cwd=workdir)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "missing.csv: cannot open: No such file or directory",
        "somedir: cannot open: Is a directory",
    ]
    assert result.stdout == ""  # it printed a plan of 0 rows


def test_the_skip_invalid_hint_is_given_only_when_the_flag_would_help(
    workdir: Path, e2e_redis_url: str
) -> None:
    """A file error with --skip-invalid still said "--skip-invalid queues the valid rows"."""
    env = user_env(REDIS_URL=e2e_redis_url)
    (workdir / "bad.csv").write_text(f"image_id,key\n{uuid.uuid4()},k\nnope,k\n")
    given = run_cli(env, "submit", "noimages.csv", "--skip-invalid", *SAMPLE[1:], cwd=workdir)
    assert given.returncode == 2, given.stderr
    assert "nothing queued: 1 problem(s) above" in given.stderr
    assert "--skip-invalid" not in given.stderr
    missing = run_cli(env, "submit", "bad.csv", *SAMPLE[1:], cwd=workdir)
    assert missing.returncode == 2, missing.stderr
    assert "(--skip-invalid queues the valid rows)" in missing.stderr


JOB_MISTAKES = [
    (("status", "nope"), "no job 'nope'"),
    (("status", "nope", "--watch"), "no job 'nope'"),
    (("report", "nope"), "no job 'nope'"),
    (("retry", "nope"), "no job 'nope'"),
    (("cancel", "nope"), "no job 'nope'"),
    (("undo", "nope"), "no job 'nope'"),
    (("report", "JOB", "-o", "/nonexistent/dir/r.csv"), "no such directory '/nonexistent/dir'"),
    (("report", "JOB", "-o", "somedir"), "is a directory"),
    (("report", "JOB", "--format", "xml"), "'--format'"),
    (("report", "JOB", "--only", "gone"), "'--only'"),
    (("retry", "JOB", "--only", "invalid"), "'--only'"),
    (("retry", "JOB"), "retry it once it has finished"),
    (("undo", "JOB"), "JOB"),
    (("undo", "JOB", "--report", "/nonexistent/dir/u.csv"), "no such directory"),
    (("simulator", "--port", "REDISPORT"), "address already in use"),
    # On a port in use: an option accepted by mistake ends on the bind, not in serving for ever.
    (("simulator", "--latency-jitter-ms", "-5", "--port", "REDISPORT"), "'--latency-jitter-ms'"),
]


@pytest.mark.parametrize(("args", "named"), JOB_MISTAKES)
def test_a_mistake_about_a_job_is_one_line_and_exit_2(
    workdir: Path, e2e_redis_url: str, job_id: str, args: tuple[str, ...], named: str
) -> None:
    port = e2e_redis_url.rsplit(":", 1)[1].split("/")[0]
    args = tuple({"JOB": job_id, "REDISPORT": port}.get(a, a) for a in args)
    # Credentials (never used here) so that undo gets as far as the job.
    env = user_env(REDIS_URL=e2e_redis_url, HUAWEICLOUD_SDK_AK="AK", HUAWEICLOUD_SDK_SK="SK")
    result = run_cli(env, *args, cwd=workdir)
    assert_one_line(result, named.replace("JOB", job_id))
    assert not list(workdir.glob("*.csv.*"))


@pytest.mark.parametrize(
    ("name", "content"),
    [("truncated.csv.gz", None), ("latin.csv", b"image_id,key\n\xff\xfe,k\n")],
)
def test_run_simulate_refuses_a_file_it_cannot_seed_from_before_starting_anything(
    workdir: Path, name: str, content: bytes | None
) -> None:
    """The files are checked before the simulator reads them (it used to die on them, and
    run showed a traceback)."""
    path = workdir / name
    if content is None:
        path.write_bytes(gzip.compress((workdir / "sample.csv").read_bytes())[:3000])
    else:
        path.write_bytes(content)
    result = run_cli(user_env(), "run", name, "--simulate", cwd=workdir)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "simulator:" not in result.stderr  # none was started
    assert result.stderr.startswith(f"{name}:"), result.stderr
    assert "nothing queued" in result.stderr
