"""The command line's job request and exit codes: options become one ``JobRequest`` whose
defaults are ``JobOptions``'s, and each error a user can cause has one exit code."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from producer.errors import (
    Declined,
    InputRejected,
    JobNotFound,
    ListingFailed,
    SelectionRefused,
    TagsweepError,
)
from producer.exits import ExitCode, error_line
from producer.options import job_request
from producer.request import JobRequest
from worker.jobs import Api, JobOptions, Mode

# The variables job options read: unset, so that a developer's environment cannot change them.
JOB_ENV = (
    "TAGSWEEP_ENDPOINT",
    "TAGSWEEP_REGION",
    "TAGSWEEP_RATE",
    "TAGSWEEP_KEEP",
    "HUAWEICLOUD_SDK_PROJECT_ID",
)


def _requested(args: list[str], *, mode: Mode = Mode.DELETE) -> JobRequest:
    """The request a command declared with ``job_request`` receives for ``args``."""
    seen: list[JobRequest] = []

    @click.command()
    @job_request(mode=mode, safety=mode is Mode.DELETE)
    def command(request: JobRequest) -> None:
        seen.append(request)

    result = CliRunner().invoke(command, args, env=dict.fromkeys(JOB_ENV))
    assert result.exit_code == 0, result.output
    return seen[0]


def test_a_request_without_options_has_the_defaults_of_job_options_and_job_request() -> None:
    assert _requested(["a.csv"]) == JobRequest(files=("a.csv",))
    assert _requested(["a.csv"]).options == JobOptions()


def test_every_job_option_reaches_the_request() -> None:
    args = """a.csv b.csv --endpoint http://ims --api v2 --rate 7 --max-attempts 3
        --row-deadline 9 --breaker-min 5 --breaker-ratio 0.25 --chunk-requests 4 --skip-invalid
        --project-id p1 --region r1 --max-tags-per-request 6 --keep 2s
        --backup --match-values --confirm-above 8 --yes"""
    request = _requested(args.split())
    assert request == JobRequest(
        files=("a.csv", "b.csv"),
        options=JobOptions(
            endpoint="http://ims",
            api=Api.V2,
            rate_per_s=7.0,
            max_attempts=3,
            row_deadline_s=9.0,
            breaker_min=5,
            breaker_ratio=0.25,
            backup=True,
            match_values=True,
        ),
        project_id="p1",
        region="r1",
        max_tags_per_request=6,
        chunk_requests=4,
        skip_invalid=True,
        keep_ms=2000,
        confirm_above=8,
        yes=True,
    )


def test_a_plan_request_is_of_the_plan_mode() -> None:
    assert _requested(["a.csv"], mode=Mode.PLAN).options.mode is Mode.PLAN


def test_match_values_without_backup_is_a_usage_error() -> None:
    @click.command()
    @job_request()
    def command(request: JobRequest) -> None:
        raise AssertionError("not reached")

    result = CliRunner().invoke(command, ["a.csv", "--match-values"])
    assert result.exit_code == 2
    assert "--match-values needs --backup" in result.output


def test_the_submission_key_is_the_one_jobs_were_submitted_under_before() -> None:
    """A job is found again by this key: changing it would start resumable jobs over."""
    plan = JobRequest(
        files=("a.csv", "b.csv"),
        options=JobOptions(endpoint="http://x", api=Api.V2, mode=Mode.PLAN),
        region="r1",
        project_id="p1",
        max_tags_per_request=7,
        chunk_requests=50,
        skip_invalid=True,
    )
    simulated = JobRequest(
        files=("a.csv",), options=JobOptions(backup=True, match_values=True), simulated=True
    )
    assert plan.submission_key("abc") == "a212309de7259f5e100014ee00c0ad6d"
    assert simulated.submission_key("def") == "a4be4c182769a0d1f90149e0eb1f5e4e"
    assert JobRequest(files=("a.csv", "-")).submission_key("abc") is None


@pytest.mark.parametrize(
    ("error", "line", "code"),
    [
        (Declined("nothing queued"), "tagsweep: nothing queued", ExitCode.ABORTED),
        (ListingFailed("gave up"), "tagsweep: gave up", ExitCode.SOME_FAILED),
        (InputRejected(2), "tagsweep: nothing queued: 2 problem(s) above", ExitCode.BAD_INPUT),
        (SelectionRefused("no region"), "tagsweep: no region", ExitCode.BAD_INPUT),
        (JobNotFound("no job 'x'"), "tagsweep: no job 'x'", ExitCode.BAD_INPUT),
        (KeyboardInterrupt(), "tagsweep: interrupted", ExitCode.INTERRUPTED),
        (click.Abort(), "tagsweep: interrupted", ExitCode.INTERRUPTED),
    ],
)
def test_each_error_a_user_can_cause_is_one_line_and_its_exit_code(
    error: BaseException, line: str, code: ExitCode
) -> None:
    mapped = error_line(error)
    assert mapped is not None
    assert mapped[0].startswith(line)
    assert mapped[1] == code
    assert isinstance(error, TagsweepError | KeyboardInterrupt | click.Abort)


def test_a_bug_is_not_turned_into_a_line() -> None:
    assert error_line(ZeroDivisionError()) is None


def test_a_tms_job_is_found_again_only_for_the_same_tms_endpoint_account_and_type() -> None:
    """Running again with --tms-resource-type (after TMS listed no IMS type) or another
    account makes a new job, not the aborted one with its old options."""

    def key(**tms: str) -> str | None:
        options = JobOptions(api=Api.TMS, **tms)
        return JobRequest(files=("a.csv",), options=options).submission_key("abc")

    keys = {key(), key(tms_resource_type="images"), key(domain_id="d2"), key(tms_endpoint="h")}
    assert len(keys) == 4
    assert JobRequest(files=("a.csv",)).submission_key("abc") != key()
