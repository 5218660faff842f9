"""``tagsweep run``: the whole job on this machine, from CSV to report, resumable.

Without ``REDIS_URL`` it starts a private Redis (``./.tagsweep/``, AOF on); it starts local
Celery workers against whichever Redis it uses; ``--simulate`` adds a simulator seeded from the
same files. Running the same command again after an interruption continues the same job:
a job is found again by a key over the files' bytes and the target (``jobspec.submission_key``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from producer.connection import connect_redis
from producer.embedded import STATE_DIR, start_embedded_redis
from producer.errors import InputError
from producer.exits import EXIT_INTERRUPTED, exit_code
from producer.local import LocalWorker, start_simulator, start_worker
from producer.progress import follow_job
from producer.redis_check import check_redis
from producer.report import write_job_report
from producer.resume import clear_stale_leases, point_at, take_up
from producer.status import JobStatus, read_job, render_status
from producer.store import JobStore
from worker.errors import TagsweepError
from worker.jobs import JobState, Mode

if TYPE_CHECKING:
    import redis

SIM_PROJECT = "0123456789abcdef0123456789abcdef"
SIM_REGION = "sim-local-1"
SIM_AK = "TAGSWEEPDEMOAK"


# Writes a job into Redis, or finds the one to resume: (job id, whether it existed).
MakeJob = Callable[["redis.Redis"], tuple[str, bool]]


class WorkersGone(TagsweepError):
    """Raised when every local worker process has exited while the job still runs."""


@contextlib.contextmanager
def local_redis(env: dict[str, str]) -> Iterator[str]:
    """``REDIS_URL`` when set, else a private Redis for as long as the run lasts."""
    if env.get("REDIS_URL"):
        yield env["REDIS_URL"]
        return
    embedded = start_embedded_redis(STATE_DIR)
    try:
        yield embedded.url
    finally:
        embedded.stop()


@contextlib.contextmanager
def local_workers(env: dict[str, str], processes: int) -> Iterator[list[LocalWorker]]:
    """Local workers for the run; stopped warm when it ends, within 5 s when interrupted (a
    chunk cut short keeps its recorded rows; the rest is resumed)."""
    workers = [start_worker(env, processes=processes, log_path=STATE_DIR / "worker.log")]
    timeout_s = 10.0
    try:
        yield workers
    except BaseException:
        timeout_s = 5.0
        raise
    finally:
        for worker in workers:
            worker.stop(timeout_s=timeout_s)


@contextlib.contextmanager
def simulated(files: list[str], env: dict[str, str], kw: dict[str, Any]) -> Iterator[None]:
    """A simulator seeded from ``files``, demo credentials in ``env``, the job pointed at it."""
    sk = "demo-" + secrets.token_hex(12)
    seeds = [arg for name in files for arg in ("--seed", name)]
    project = kw["project_id"] or SIM_PROJECT
    from producer.jobspec import checked_collection

    # Checked before the simulator reads them: a file it cannot seed from is the user's
    # mistake, told as such, with nothing started.
    checked_collection({**kw, "project_id": project, "region": kw["region"] or SIM_REGION})
    try:
        sim = start_simulator(None, *seeds, "--ak", SIM_AK, "--sk", sk, "--project-id", project)
    except RuntimeError:
        raise InputError(", ".join(files), "the simulator could not be seeded from it") from None
    try:
        env.update(HUAWEICLOUD_SDK_AK=SIM_AK, HUAWEICLOUD_SDK_SK=sk)
        for name in ("HUAWEICLOUD_SDK_SECURITY_TOKEN", "TAGSWEEP_AUTH_TOKEN", "TAGSWEEP_IAM_USER"):
            env.pop(name, None)
        kw.update(endpoint=sim.url, region=kw["region"] or SIM_REGION, project_id=project)
        # The simulator's address changes each run: the job is found again by the files alone.
        kw["simulated"] = True
        click.echo(f"simulator: {sim.url} (seeded from {', '.join(files)})", err=True)
        yield
    finally:
        sim.stop()


def check_alive(workers: list[LocalWorker]) -> None:
    if all(w.process.poll() is not None for w in workers):
        raise WorkersGone(f"the local workers exited; see {STATE_DIR / 'worker.log'}")


def finish(client: redis.Redis, status: JobStatus, report: str) -> int:
    """Write the report (``-``: on stdout, the summary then on stderr) and print the summary;
    return the exit code."""
    job = read_job(client, status.job.job_id)
    err = report == "-"
    if err:
        rows = write_job_report(client, job, sys.stdout)
    else:
        with Path(report).open("w", encoding="utf-8", newline="") as out:
            rows = write_job_report(client, job, out)
    click.echo(render_status(status), err=err)
    click.echo(f"report      {'stdout' if err else report} ({rows:,} rows)", err=err)
    click.echo(f"worker log  {STATE_DIR / 'worker.log'}", err=err)
    if job.options.backup and not err:
        click.echo(f"undo        tagsweep undo {job.job_id}  (re-creates the deleted tags)")
    if job.state in (JobState.ABORTED, JobState.CANCELLED) and job.options.mode is not Mode.PLAN:
        click.echo(
            "resume      fix the cause, then run the same command again: the rows never sent "
            "are sent (--new starts over)",
            err=err,
        )
    return exit_code(status)


def interrupted(job_id: str) -> int:
    click.echo(
        f"\ninterrupted: job {job_id} stopped cleanly; run the same command again to resume it "
        "(rows already final are not sent again).",
        err=True,
    )
    return EXIT_INTERRUPTED


def worker_environment(redis_url: str, base: dict[str, str]) -> dict[str, str]:
    env = dict(base)
    env["REDIS_URL"] = redis_url
    env.setdefault("TAGSWEEP_LOG_FORMAT", "json")
    return env


@contextlib.contextmanager
def stopped_like_ctrl_c() -> Iterator[None]:
    """SIGTERM and SIGHUP (``kill``, ``timeout``, a closed terminal) stop a run as Ctrl-C does.

    Python's default for them ends the process at once, which left the local workers and the
    private Redis (each in a session of its own) running: the next run then found the folder
    taken.
    """

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def is_tty() -> bool:
    return sys.stderr.isatty()


def run_job(
    kw: dict[str, Any],
    *,
    processes: int,
    simulate: bool,
    report: str | None,
    new: bool,
    make_job: MakeJob | None = None,
) -> int:
    """Validate, submit (or resume), work, follow, report; return DESIGN's exit code.

    ``make_job`` writes the job instead of the files of ``kw`` (``undo``); ``report`` ``-``
    puts the report on stdout and everything else on stderr (``plan``).
    """
    from producer.jobspec import prepare_job

    files = list(kw.get("files", ()))
    env = dict(os.environ)
    job_id: str | None = None
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(stopped_like_ctrl_c())
            redis_url = stack.enter_context(local_redis(env))
            allow = bool(kw.get("allow_eviction"))
            check_redis(redis_url, allow_eviction=allow, distributed=False)
            if simulate:
                stack.enter_context(simulated(files, env, kw))
            client = connect_redis(redis_url)
            workers = stack.enter_context(
                local_workers(worker_environment(redis_url, env), processes)
            )
            if make_job is None:
                job_id, resumed = prepare_job(client, kw, new=new, err=report == "-")
            else:
                job_id, resumed = make_job(client)
            if resumed:
                if simulate:  # this run's simulator, seeded afresh: rows final are not re-sent
                    point_at(client, job_id, kw["endpoint"])
                chunks = take_up(client, job_id, can_renew=make_job is None)
                if not env.get("REDIS_URL"):
                    clear_stale_leases(client, job_id, chunks)
            else:
                chunks = list(range(JobStore(client).next_chunk(job_id)))
            dispatch(redis_url, job_id, chunks)
            status = follow_job(client, job_id, tty=is_tty(), check=lambda: check_alive(workers))
            return finish(client, status, report or f"tagsweep-report-{job_id}.csv")
    except KeyboardInterrupt:
        if job_id is None:
            click.echo("\ninterrupted before anything was queued", err=True)
            return EXIT_INTERRUPTED
        return interrupted(job_id)


def dispatch(redis_url: str, job_id: str, chunks: list[int]) -> None:
    from worker.app import use_broker
    from worker.tasks import dispatch_chunk

    use_broker(redis_url)
    for number in chunks:
        dispatch_chunk(job_id, number)
