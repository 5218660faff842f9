"""The docs' command blocks are exercised: every fenced ``sh`` block of README.md and docs/*.md
is run by a test named in ``RUN_BY`` or says above it why it cannot run here
(``<!-- not run: REASON -->``); every ``tagsweep`` command in any block names a command and
options that exist; every relative link points to a file and heading that exist."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from producer.cli import COMMANDS, command
from tests.docs import DOCS, Block, all_blocks, block_containing
from tests.helpers import REPO

# Each runnable block, by its doc and first line, and the tests that run it.
RUN_BY = {
    ("README.md", "python3 -m venv .venv"): (
        # the install is CI's own; the job is run as written, from a clean folder
        "tests/e2e/test_run.py::test_run_simulate_does_the_whole_job_on_a_private_redis",
    ),
    ("docs/commands.md", "tagsweep simulator --port 8470"): (
        "tests/e2e/test_docs.py::test_the_simulator_example_starts_as_written",
    ),
    ("docs/commands.md", "tagsweep simulator --port 8471"): (
        "tests/e2e/test_select.py::test_the_docs_select_example_passes_as_written",
    ),
    ("docs/operations.md", "tagsweep jobs"): (
        "tests/e2e/test_docs.py::test_the_jobs_example_runs_as_written",
    ),
    ("docs/operations.md", "jq -c --arg job"): (
        "tests/e2e/test_logs.py::test_the_docs_jq_sums_of_job_progress_are_the_job_s_counts",
    ),
    ("docs/operations.md", "jq -n --arg job"): (
        "tests/e2e/test_logs.py::test_the_docs_jq_sums_of_job_progress_are_the_job_s_counts",
        "tests/e2e/test_logs.py::"
        "test_after_a_sigkilled_worker_the_sum_falls_short_by_its_last_interval_at_most",
    ),
    ("docs/operations.md", "promtool test rules"): (
        "tests/test_monitoring.py::test_every_alert_rule_passes_its_promtool_cases",
        "tests/test_monitoring.py::test_the_prometheus_configuration_passes_promtool_check_config",
    ),
}

BLOCKS = all_blocks()


def block_id(block: Block) -> str:
    return f"{block.doc}:{block.line}"


def runners(block: Block) -> tuple[str, ...]:
    for (doc, first), tests in RUN_BY.items():
        if doc == block.doc and block.first_line.startswith(first):
            return tests
    return ()


@pytest.mark.parametrize("block", BLOCKS, ids=block_id)
def test_each_block_is_run_by_a_test_or_says_why_not(block: Block) -> None:
    tests = runners(block)
    assert bool(tests) != bool(block.not_run), (
        f"{block_id(block)} ({block.first_line}): name the tests that run it in RUN_BY, or put "
        "'<!-- not run: REASON -->' above it (not both)"
    )
    for test in tests:
        path, name = test.split("::")
        assert f"def {name}(" in (REPO / path).read_text(encoding="utf-8"), test


def test_every_entry_of_the_registry_names_one_block() -> None:
    for (doc, first), _ in RUN_BY.items():
        matching = [b for b in BLOCKS if b.doc == doc and b.first_line.startswith(first)]
        assert len(matching) == 1, (doc, first, matching)


def tagsweep_calls(text: str) -> list[list[str]]:
    """The arguments of each ``tagsweep`` call in a block (continued lines joined; comments,
    pipes, redirections and command substitutions cut off, as the shell would)."""
    calls: list[list[str]] = []
    for line in text.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words: list[str] = []
        for token in [*lexer, ";"]:
            if token and set(token) <= set("();<>|&"):
                at = [i for i, word in enumerate(words) if word.split("/")[-1] == "tagsweep"]
                calls.extend(words[i + 1 :] for i in at[:1])
                words = []
            else:
                words.append(token)
    return calls


@pytest.mark.parametrize("block", BLOCKS, ids=block_id)
def test_every_tagsweep_call_names_a_command_and_options_that_exist(block: Block) -> None:
    for args in tagsweep_calls(block.text):
        assert args, block_id(block)
        assert args[0] in COMMANDS, (block_id(block), args)
        known = {o for p in command(args[0]).params for o in (*p.opts, *p.secondary_opts)}
        options = {a.split("=")[0] for a in args[1:] if a.startswith("-") and a != "-"}
        assert options <= known | {"-h", "--help"}, (block_id(block), options - known)


def test_the_calls_are_found() -> None:
    """The parser above sees the calls it checks (a sample of each shape)."""
    found = tagsweep_calls(block_containing("docs/operations.md", "tagsweep submit"))
    assert [args[0] for args in found] == ["submit", "status", "report", "report", "retry",
                                           "cancel"]  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def user_shell_env(**extra: str) -> dict[str, str]:
    """A user's environment with this venv's ``tagsweep`` first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAGSWEEP_", "HUAWEICLOUD_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def test_the_simulator_example_starts_as_written() -> None:
    """The simulator with every option the example gives (on a free port) says it listens."""
    block = block_containing("docs/commands.md", "tagsweep simulator --port 8470")
    with subprocess.Popen(
        ["bash", "-c", "exec " + block.replace("8470", str(free_port())).strip()],
        cwd=REPO, env=user_shell_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    ) as process:  # fmt: skip
        try:
            assert process.stdout is not None
            first = process.stdout.readline()
            assert "simulator listening on http://127.0.0.1:" in first, first
        finally:
            process.terminate()


def test_the_jobs_example_runs_as_written(e2e_redis_url: str, tmp_path: Path) -> None:
    block = block_containing("docs/operations.md", "tagsweep jobs")
    result = subprocess.run(
        ["bash", "-euc", block], cwd=tmp_path, env=user_shell_env(REDIS_URL=e2e_redis_url),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "no jobs" in result.stdout + result.stderr


# GitHub's heading anchors: lower case, punctuation but '-' and '_' dropped, spaces to '-'.
def anchor(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    return {anchor(m[1]) for m in re.finditer(r"^#+ (.+)$", text, re.MULTILINE)}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_points_to_a_file_and_heading_that_exist(doc: Path) -> None:
    text = re.sub(r"```.*?```", "", doc.read_text(encoding="utf-8"), flags=re.DOTALL)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not checked here
        path, _, fragment = target.partition("#")
        linked = (doc.parent / path).resolve() if path else doc
        assert linked.exists(), f"{doc.name}: {target}"
        if fragment and linked.suffix == ".md":
            assert fragment in anchors(linked), f"{doc.name}: {target}"


def test_the_readme_s_command_table_lists_every_command() -> None:
    """One row per command of ``tagsweep --help``, no more."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    table = text.split("## Commands", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `([a-z]+)[ `]", table, re.MULTILINE)
    assert sorted(listed) == sorted(COMMANDS)
