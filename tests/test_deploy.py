"""docker-compose.yml is valid by the compose specification, and runs only what exists here.

No Docker engine runs on this machine, so the file is checked, not started.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import click
import pytest
from ruamel.yaml import YAML

from producer.cli import command as cli_command

REPO = Path(__file__).resolve().parents[1]


def services() -> dict[str, Any]:
    document = YAML(typ="safe").load((REPO / "docker-compose.yml").read_text())
    return dict(document["services"])


def test_the_compose_file_follows_the_compose_specification() -> None:
    result = subprocess.run(
        [
            Path(sys.executable).with_name("check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(REPO / "docker-compose.yml"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_it_has_redis_with_aof_a_scalable_worker_the_simulator_and_flower() -> None:
    found = services()
    assert "--appendonly" in found["redis"]["command"]
    policy = found["redis"]["command"].index("--maxmemory-policy")
    assert found["redis"]["command"][policy + 1] == "noeviction"
    assert found["worker"]["deploy"]["replicas"] >= 1
    assert found["worker"]["environment"]["REDIS_URL"].startswith("redis://redis:")
    assert {"simulator", "flower", "exporter"} <= set(found)


@pytest.mark.parametrize("name", ["worker", "simulator", "exporter"])
def test_each_tagsweep_command_parses_with_the_project_s_cli(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)  # the image's working directory holds the same files
    command = services()[name]["command"]
    assert command[0] == "tagsweep"
    sub = cli_command(command[1])
    with sub.make_context(command[1], list(command[2:])) as ctx:
        assert isinstance(ctx, click.Context)


def test_celery_commands_use_the_project_app_and_installed_extras() -> None:
    command = services()["flower"]["command"]
    assert command[:3] == ["celery", "-A", "worker"]
    from worker.celery import app

    assert app.main == "tagsweep"
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert any(dep.startswith("flower") for dep in extras[command[3]])
    assert f".[{command[3]}]" in (REPO / "Dockerfile").read_text()


def test_the_dockerfile_copies_what_exists() -> None:
    for source in re.findall(r"^COPY (\S+)", (REPO / "Dockerfile").read_text(), re.M):
        assert (REPO / source).exists(), source
