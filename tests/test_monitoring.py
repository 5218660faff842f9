"""The shipped monitoring (deploy/): the alert rules pass their ``promtool test rules`` cases, the
Prometheus configuration passes ``promtool check config``, and the compose ``monitoring``
profile mounts files that exist where the configurations look for them.

No Docker engine runs here, so the profile is checked, not started; that each expression's
metrics are served by a live exporter is tests/e2e/test_metric_names.py."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.helpers import DEPLOY, REPO, metric_names, monitoring_expressions

PROMETHEUS = DEPLOY / "prometheus"
GRAFANA = DEPLOY / "grafana"


def load_yaml(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text())


@pytest.fixture
def promtool() -> str:
    """Prometheus's checker (Debian: ``apt-get install prometheus``)."""
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not on PATH: `apt-get install -y prometheus` brings it")
    return found


def run_promtool(promtool: str, *args: str) -> str:
    result = subprocess.run(
        [promtool, *args], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_every_alert_rule_passes_its_promtool_cases(promtool: str) -> None:
    output = run_promtool(promtool, "test", "rules", str(PROMETHEUS / "rules_test.yml"))
    assert "SUCCESS" in output


def test_the_prometheus_configuration_passes_promtool_check_config(promtool: str) -> None:
    """The rules file it names is checked with it."""
    output = run_promtool(promtool, "check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert f"{len(alerts())} rules found" in output


def alerts() -> list[str]:
    rules = load_yaml(PROMETHEUS / "rules.yml")
    return [rule["alert"] for group in rules["groups"] for rule in group["rules"]]


def test_each_rule_has_a_case_that_fires_and_one_that_does_not() -> None:
    cases: dict[str, set[bool]] = {name: set() for name in alerts()}
    for test in load_yaml(PROMETHEUS / "rules_test.yml")["tests"]:
        for case in test["alert_rule_test"]:
            cases[case["alertname"]].add(bool(case["exp_alerts"]))
    assert cases == {name: {True, False} for name in cases}


def test_every_expression_of_the_rules_and_the_board_parses_as_promql() -> None:
    """And names a tagsweep metric (the e2e test checks the exporter serves it)."""
    for where, expr in monitoring_expressions().items():
        names = metric_names(expr)
        assert names, where
        assert all(name.startswith("tagsweep_") for name in names), (where, names)


def monitoring_services() -> dict[str, Any]:
    services = load_yaml(REPO / "docker-compose.yml")["services"]
    found = {name: s for name, s in services.items() if "monitoring" in s.get("profiles", [])}
    assert set(found) == {"prometheus", "grafana"}
    return found


def bind_mounts(service: dict[str, Any]) -> dict[PurePosixPath, Path]:
    """Container path -> file or folder of the repository, for each ``./`` volume."""
    mounts = {}
    for volume in service["volumes"]:
        source, target, *_ = volume.split(":")
        if source.startswith("./"):
            mounts[PurePosixPath(target)] = REPO / source
    return mounts


def resolve(mounts: dict[PurePosixPath, Path], inside: PurePosixPath) -> Path:
    """The repository's file seen at ``inside`` in the container."""
    for target, source in mounts.items():
        if inside == target or target in inside.parents:
            return source / inside.relative_to(target)
    raise AssertionError(f"nothing is mounted at {inside}")


def test_the_monitoring_profile_mounts_files_that_exist() -> None:
    for name, service in monitoring_services().items():
        for target, source in bind_mounts(service).items():
            assert source.exists(), f"{name}: {source} (mounted at {target}) does not exist"


def test_prometheus_finds_its_rules_and_scrapes_the_compose_exporter() -> None:
    services = load_yaml(REPO / "docker-compose.yml")["services"]
    mounts = bind_mounts(monitoring_services()["prometheus"])
    config_path = PurePosixPath("/etc/prometheus/prometheus.yml")  # the image's default
    config = load_yaml(resolve(mounts, config_path))
    for rule_file in config["rule_files"]:
        assert resolve(mounts, config_path.parent / rule_file) == PROMETHEUS / rule_file
    (scrape,) = config["scrape_configs"]
    assert scrape["honor_labels"] is True  # the exporter's job="<job id>" label is kept
    port = services["exporter"]["command"][-1]
    assert scrape["static_configs"][0]["targets"] == [f"exporter:{port}"]


def test_grafana_finds_its_data_source_and_the_board() -> None:
    grafana = monitoring_services()["grafana"]
    mounts = bind_mounts(grafana)
    provisioning = PurePosixPath("/etc/grafana/provisioning")  # the image's default
    (source,) = load_yaml(resolve(mounts, provisioning / "datasources/prometheus.yml"))[
        "datasources"
    ]
    assert source["url"] == "http://prometheus:9090"
    (provider,) = load_yaml(resolve(mounts, provisioning / "dashboards/tagsweep.yml"))["providers"]
    boards = resolve(mounts, PurePosixPath(provider["options"]["path"]))
    board = json.loads((boards / "tagsweep.json").read_text())
    home = PurePosixPath(grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert resolve(mounts, home) == GRAFANA / "dashboards" / "tagsweep.json"
    uids = {
        target["datasource"]["uid"]
        for panel in board["panels"]
        for target in [panel, *panel["targets"]]
    }
    assert uids == {source["uid"]}
