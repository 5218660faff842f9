"""The command line's help: ``-h`` anywhere, a listing that is not cut, every option explained."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from producer.cli import COMMANDS as WHERE
from producer.cli import cli, command

COMMANDS = sorted(WHERE)


def test_dash_h_is_help_for_tagsweep_and_every_command() -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["-h"]).output == runner.invoke(cli, ["--help"]).output
    for name in COMMANDS:
        short = runner.invoke(cli, [name, "-h"])
        assert short.exit_code == 0, (name, short.output)
        assert short.output == runner.invoke(cli, [name, "--help"]).output


def test_the_command_list_shows_each_command_s_line_whole() -> None:
    listing = CliRunner().invoke(cli, ["--help"]).output
    commands = listing.split("Commands:")[1].strip().splitlines()
    assert len(commands) == len(COMMANDS)
    for line in commands:
        assert not line.rstrip().endswith("..."), line


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_says_what_it_does(name: str) -> None:
    for param in command(name).params:
        if isinstance(param, click.Option):
            assert param.help, f"tagsweep {name} {param.opts[0]} has no help text"


def test_validate_loads_neither_the_redis_client_nor_celery() -> None:
    """Loading them was 100 ms and 9 MB of a million-row validate (bench/validate.py)."""
    code = (
        "import sys\n"
        "from producer.cli import cli\n"
        "cli.main(['validate', '-h'], standalone_mode=False)\n"
        "print(sorted(m for m in ('redis', 'celery', 'structlog', 'aiohttp') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "[]"


@pytest.mark.parametrize("name", ["run", "plan", "undo"])
def test_the_per_row_file_is_report_or_o_or_output_on_every_command(name: str) -> None:
    (option,) = [p for p in command(name).params if p.name == "report_path"]
    assert set(option.opts) == {"--report", "-o", "--output"}


def test_report_only_pending_and_validate_rate_say_what_they_mean() -> None:
    def help_of(name: str) -> str:
        return " ".join(CliRunner().invoke(cli, [name, "-h"]).output.split())

    assert "(pending: no result yet)" in help_of("report")
    assert "estimate the job's time with (validate sends nothing)" in help_of("validate")


@pytest.mark.parametrize("name", sorted(set(COMMANDS) - {"validate", "simulator"}))
def test_every_command_that_uses_redis_says_which_in_its_help(name: str) -> None:
    """REDIS_URL, and what a command uses without it (docs/decisions.md: one Redis per
    folder)."""
    shown = " ".join(CliRunner().invoke(cli, [name, "-h"]).output.split())
    assert "Redis" in shown
    assert "REDIS_URL" in shown
    assert "./.tagsweep/" in shown


def test_plan_says_where_its_totals_go_as_it_does() -> None:
    """It said "Totals go to stderr", while with -o FILE they go to stdout."""
    text = " ".join(CliRunner().invoke(cli, ["plan", "-h"]).output.split())
    assert "Totals go to stderr." not in text
    assert "totals go to stderr while the per-row answers are on stdout (the default)" in text
    assert "else to stdout" in text


def test_retry_s_line_says_what_it_does_and_loglevel_is_one_case() -> None:
    """retry's line said only that it queued (in a run folder it works the rows too);
    worker's --loglevel showed the default INFO among lower-case choices."""
    listing = CliRunner().invoke(cli, ["--help"]).output
    (line,) = [line for line in listing.splitlines() if line.strip().startswith("retry ")]
    assert line.split(None, 1)[1] == "Send again the rows of a job that ended failed."
    worker = " ".join(CliRunner().invoke(cli, ["worker", "-h"]).output.split())
    assert "[debug|info|warning|error]" in worker
    assert "[default: info]" in worker
