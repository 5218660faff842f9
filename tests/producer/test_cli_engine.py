"""Command-line failures that must be one clear line and exit 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "producer.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path.cwd()), **env},
    )


def test_unreachable_redis_is_one_line_naming_the_url_without_its_password() -> None:
    result = run("status", env={"REDIS_URL": "redis://:hunter22@127.0.0.1:9/0"})
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "redis://:***@127.0.0.1:9/0" in result.stderr
    assert "hunter22" not in result.stderr


def test_an_unknown_job_is_one_line(redis_url: str) -> None:
    result = run("status", "nope", env={"REDIS_URL": redis_url})
    assert result.returncode == 2
    assert result.stderr.strip() == "tagsweep: no job 'nope' in this Redis"


def test_an_unknown_setting_is_refused(redis_url: str) -> None:
    result = run("status", env={"REDIS_URL": redis_url, "TAGSWEEP_RAET": "5"})
    assert result.returncode == 2
    assert "TAGSWEEP_RAET" in result.stderr
