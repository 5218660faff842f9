"""``tagsweep run``: the whole job on this machine, from CSV to report, resumable.

Without ``REDIS_URL`` it starts a private Redis (``./.tagsweep/``, AOF on); it starts local
Celery workers against whichever Redis it uses; ``--simulate`` adds a simulator seeded from the
same files. Running the same command again after an interruption continues the same job:
a job is found again by a key over the files' bytes and the target (``JobRequest.submission_key``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import signal
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from producer.connection import connect_redis
from producer.crew import LocalCrew
from producer.embedded import STATE_DIR
from producer.errors import InputError
from producer.exits import ENDING, ExitCode, exit_code
from producer.jobspec import checked_collection, prepare_job
from producer.lane import started_lane
from producer.local import local_redis, local_workers, start_simulator
from producer.progress import follow_job
from producer.redis_check import check_redis
from producer.report import write_job_report
from producer.request import JobRequest
from producer.resume import clear_stale_leases, point_at, take_up
from producer.status import JobStatus, read_job, render_status
from producer.store import JobStore
from producer.submit import files_checksum, find_submitted
from simulator.config import DEMO_DOMAIN_ID, SimulatorConfig
from worker.cloud.credentials import load_credentials
from worker.jobs import JobState, Mode

if TYPE_CHECKING:
    import redis

    from producer.collect import Collection

SIM_PROJECT = SimulatorConfig().project_id
SIM_REGION = "sim-local-1"
SIM_AK = "TAGSWEEPDEMOAK"


# Writes a job into Redis, or finds the one to resume: (job id, whether it existed).
MakeJob = Callable[["redis.Redis"], tuple[str, bool]]


# Credentials of the user's that a simulated run must not send to the simulator.
_USER_CREDENTIALS = ("HUAWEICLOUD_SDK_SECURITY_TOKEN", "TAGSWEEP_AUTH_TOKEN", "TAGSWEEP_IAM_USER")


@dataclass(frozen=True, kw_only=True)
class LocalRun:
    """How ``run_job`` works on this machine."""

    processes: int  # local worker processes
    # Where the per-row report goes: None ./tagsweep-report-JOB.csv, ``-`` stdout.
    report: str | None
    simulate: bool = False  # against a simulator seeded from the files (``--simulate``)
    new: bool = False  # a new job even if one for these files can be resumed
    allow_eviction: bool = False


def demo_environment(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with demo credentials instead of the user's, for a simulated run: the simulator
    (``simulated``) accepts them, the user's are not sent to it. ``env`` is not changed."""
    demo = {name: value for name, value in env.items() if name not in _USER_CREDENTIALS}
    demo.update(HUAWEICLOUD_SDK_AK=SIM_AK, HUAWEICLOUD_SDK_SK="demo-" + secrets.token_hex(12))
    return demo


def has_ended(client: redis.Redis, request: JobRequest) -> bool:
    """Whether the job these files and this target make has ended with every row final."""
    key = request.submission_key(files_checksum(list(request.files)))
    job_id = find_submitted(client, key) if key else None
    done = (JobState.COMPLETED, JobState.COMPLETED_WITH_FAILURES)
    return job_id is not None and read_job(client, job_id).state in done


@contextlib.contextmanager
def simulated(
    request: JobRequest, demo: Mapping[str, str], client: redis.Redis, *, new: bool
) -> Iterator[tuple[JobRequest, Collection]]:
    """A simulator seeded from the request's files that accepts the credentials of ``demo``
    (``demo_environment``); yields the request aimed at it and the files' checked collection
    (for ``prepare_job``: read once, problems printed once). A job that has already ended
    (and not ``new``) is only reported: no simulator is started."""
    files = request.files
    seeds = [arg for name in files for arg in ("--seed", name)]
    project = request.project_id or SIM_PROJECT
    aimed = dataclasses.replace(
        request, project_id=project, region=request.region or SIM_REGION, simulated=True
    )
    # Checked before the simulator reads them: a file it cannot seed from is the user's
    # mistake, told as such, with no simulator started.
    collection = checked_collection(aimed)
    if not new and has_ended(client, aimed):
        yield aimed, collection
        return
    sk = demo["HUAWEICLOUD_SDK_SK"]
    try:
        sim = start_simulator(None, *seeds, "--ak", SIM_AK, "--sk", sk, "--project-id", project)
    except RuntimeError:
        raise InputError(", ".join(files), "the simulator could not be seeded from it") from None
    try:
        # The simulator serves TMS's global paths on its own port too.
        options = dataclasses.replace(
            aimed.options,
            endpoint=sim.url,
            tms_endpoint=sim.url,
            domain_id=DEMO_DOMAIN_ID,
            simulated=True,
        )
        click.echo(f"simulator: {sim.url} (seeded from {', '.join(files)})", err=True)
        yield dataclasses.replace(aimed, options=options), collection
    finally:
        sim.stop()


def finish(client: redis.Redis, status: JobStatus, report: str) -> ExitCode:
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
    deleted = status.counts.get("deleted", 0)
    if job.options.backup and not job.options.simulated and not err and deleted:
        click.echo(f"undo        tagsweep undo {job.job_id}  (re-creates the deleted tags)")
    if job.state in (JobState.ABORTED, JobState.CANCELLED) and job.options.mode is not Mode.PLAN:
        click.echo(
            "resume      fix the cause, then run the same command again: the rows never sent "
            "are sent (--new starts over)",
            err=err,
        )
    return exit_code(status)


def interrupted(job_id: str) -> ExitCode:
    click.echo(
        f"\ninterrupted: job {job_id} stopped cleanly; run the same command again to resume it "
        "(rows already final are not sent again).",
        err=True,
    )
    return ExitCode.INTERRUPTED


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


def run_job(job: JobRequest | MakeJob, local: LocalRun) -> ExitCode:
    """Validate, submit (or resume), work, follow, report; return DESIGN's exit code.

    ``job`` is the request whose files make the job, or a function that writes the job
    (``undo``); a ``local.report`` of ``-`` puts the report on stdout and everything else on
    stderr (``plan``).
    """
    queued: list[str] = []  # the job's id once it has one
    # Nothing to free at the end: what it started is stopped by then (up to 1 s of a small
    # run on a busy machine went to freeing its modules; exits.ENDING).
    ENDING.skip_teardown = True
    try:
        with contextlib.ExitStack() as stack:
            return _run(stack, job, local, queued)
    except KeyboardInterrupt:
        if not queued:
            click.echo("\ninterrupted before anything was queued", err=True)
            return ExitCode.INTERRUPTED
        return interrupted(queued[0])


def run_environment(job: JobRequest | MakeJob, local: LocalRun) -> tuple[dict[str, str], bool]:
    """The run's environment, and whether it is a simulated request's (demo credentials)."""
    env = dict(os.environ)
    if local.simulate and isinstance(job, JobRequest):
        return demo_environment(env), True
    if not local.simulate:
        # A run, a plan or an undo: without credentials every chunk would fail in the local
        # workers while 0 rows/s showed. Checked before Redis starts or a job is written.
        load_credentials(env)
    return env, False


def _run(
    stack: contextlib.ExitStack[bool | None],
    job: JobRequest | MakeJob,
    local: LocalRun,
    queued: list[str],
) -> ExitCode:
    env, simulate = run_environment(job, local)
    stack.enter_context(stopped_like_ctrl_c())
    redis_url, start_redis = stack.enter_context(local_redis(env))
    worker_env = worker_environment(redis_url, env)
    lane = stack.enter_context(started_lane(worker_env, STATE_DIR / "worker.log"))
    start_redis()
    check_redis(redis_url, allow_eviction=local.allow_eviction, distributed=False)
    client = connect_redis(redis_url)
    collection = None
    if simulate and isinstance(job, JobRequest):
        job, collection = stack.enter_context(simulated(job, env, client, new=local.new))
    job_id, resumed = make_job(client, job, local, collection, read=(redis_url, env))
    queued.append(job_id)
    private = not env.get("REDIS_URL")  # this run's own Redis: its workers work this job only
    workers_env = {**worker_env, "TAGSWEEP_RUN_JOB": job_id} if private else worker_env
    crew = stack.enter_context(
        LocalCrew(
            lane,
            client,
            job_id,
            start_workers=lambda: stack.enter_context(local_workers(workers_env, local.processes)),
            redis_url=redis_url,
        )
    )
    crew.begin(chunks_to_send(client, job_id, job, resumed=resumed, private=private))
    status = follow_job(client, job_id, tty=is_tty(), check=crew.check, pause=crew.pause)
    crew.finish()  # every row is final: the workers stop while the report is written
    return finish(client, status, local.report or f"tagsweep-report-{job_id}.csv")


def make_job(
    client: redis.Redis,
    job: JobRequest | MakeJob,
    local: LocalRun,
    collection: Collection | None,
    *,
    read: tuple[str, Mapping[str, str]],
) -> tuple[str, bool]:
    """(job id, whether it existed): the request's job found or written, its tags read in
    pages where that pays (``read``: the Redis URL and the environment with credentials), or
    the job ``job`` writes (undo)."""
    if not isinstance(job, JobRequest):
        return job(client)
    job_id, resumed = prepare_job(
        client, job, new=local.new, err=local.report == "-", collection=collection
    )
    if not resumed and job.options.reads_in_pages:
        from producer.pagedread import read_before_queueing

        read_before_queueing(client, read[0], job_id, job.options, read[1])
    return job_id, resumed


def chunks_to_send(
    client: redis.Redis, job_id: str, job: JobRequest | MakeJob, *, resumed: bool, private: bool
) -> list[int]:
    """The chunks to queue: all of a new job's; a resumed job's not final yet (their stale
    leases cleared when the Redis is this run's own, ``private``)."""
    if not resumed:
        return list(range(JobStore(client).next_chunk(job_id)))
    if isinstance(job, JobRequest) and job.simulated and job.options.endpoint:
        # This run's simulator, seeded afresh: rows final are not re-sent.
        point_at(client, job_id, job.options.endpoint)
    chunks = take_up(client, job_id, can_renew=isinstance(job, JobRequest))
    if private:
        clear_stale_leases(client, job_id, chunks)
    return chunks
