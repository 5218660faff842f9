"""``tagsweep validate``: read and check the files, print the plan; nothing is sent.

Its imports stay clear of the job store and the Redis client (``producer.file_options``):
a million-row validate is measured against a plain csv pass (bench/validate.py), and loading
the client was 100 ms and 9 MB of it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from itertools import chain

import click

from producer.collect import Collection, collect
from producer.exits import ENDING, ExitCode
from producer.file_options import (
    all_errors_option,
    api_option,
    estimate_rate_option,
    files_argument,
    max_tags_option,
    project_option,
    region_option,
)
from producer.planning import Plan, make_plan, quick_plan, render_plan
from producer.problems import echo_lines, no_rows, problem_lines, problems_of
from producer.tally import quick_tally
from worker.jobs import Api


@click.command()
@files_argument
@project_option
@region_option
@estimate_rate_option
@max_tags_option
@api_option
@all_errors_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead.")
def validate(
    files: tuple[str, ...],
    project_id: str | None,
    region: str | None,
    rate: float,
    max_tags_per_request: int,
    api: str,
    all_errors: bool,
    as_json: bool,
) -> ExitCode:
    """Read and check the files (`-` for stdin) and print the plan; nothing is sent.

    A file that cannot be read is one line and no plan. Exit code 0 when every row is valid,
    2 otherwise (a file without a data row too: run would have nothing to do). Files are
    counted by a quick path (``producer.tally``) where it can judge them; else by the full
    pass that ``submit`` and ``run`` use.
    """
    ENDING.skip_teardown = True
    names, chosen = list(files), Api(api)
    if not chosen.uses_tms:  # a TMS plan groups images by their keys: the full pass
        quick = quick_tally(
            names,
            default_project_id=project_id,
            default_region=region,
            max_tags=max_tags_per_request,
        )
        if quick is not None:
            plan = quick_plan(quick, max_tags=max_tags_per_request, rate_per_s=rate, api=chosen)
            problems = problem_lines(quick.errors, quick.last_lines, all_errors=all_errors)
            show(plan, quick.warnings, problems, as_json=as_json)
            return ExitCode.BAD_INPUT if quick.errors else ExitCode.OK
    collection = collect(names, default_project_id=project_id, default_region=region)
    plan = make_plan(collection, max_tags=max_tags_per_request, rate_per_s=rate, api=chosen)
    return print_checked(collection, plan, all_errors=all_errors, as_json=as_json)


def print_checked(
    collection: Collection, plan: Plan, *, all_errors: bool, as_json: bool
) -> ExitCode:
    """The full pass's plan and problems: exit 2 for any invalid row or unreadable file."""
    empty = no_rows(collection)
    if empty and not as_json:
        raise empty
    problems = problems_of(collection, all_errors=all_errors)
    if empty:
        problems = chain(problems, [str(empty)])
    show(plan, collection.warnings, problems, as_json=as_json, with_plan=not collection.file_errors)
    if collection.errors or collection.file_errors or empty:
        return ExitCode.BAD_INPUT
    return ExitCode.OK


def show(
    plan: Plan,
    warnings: list[str],
    problems: Iterable[str],
    *,
    as_json: bool,
    with_plan: bool = True,
) -> None:
    """The plan on stdout, warnings and problems on stderr; or all in one JSON object."""
    if as_json:
        document = {"plan": plan.as_json(), "errors": list(problems), "warnings": warnings}
        click.echo(json.dumps(document, indent=2))
        return
    echo_lines(chain((f"warning: {warning}" for warning in warnings), problems))
    if with_plan:
        click.echo(render_plan(plan))
