"""Every metric the shipped alert rules and Grafana board query (deploy/) is one a live
``tagsweep exporter`` serves, scraped after a real ``--backup`` job ran through real workers and
the simulator (so that the per-job and the backup families have samples)."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import HEADER, MakeScene, images, metric_names, monitoring_expressions, write


def served_names(url: str) -> set[str]:
    """The sample names of /metrics, as PromQL sees them (a counter's with ``_total``)."""
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
        text = response.read().decode()
    return {
        sample.name for family in text_string_to_metric_families(text) for sample in family.samples
    }


def test_every_metric_of_the_rules_and_the_board_is_served_by_the_exporter(
    tmp_path: Path, scene: MakeScene, start_exporter: Callable[[dict[str, str]], str]
) -> None:
    rows = [[image, "env", "prod"] for image in images(3)]
    seed = write(tmp_path / "seed.csv", HEADER, rows)
    job_csv = write(tmp_path / "job.csv", HEADER, rows)
    jobs = scene(seed)
    job_id, final = jobs.run(job_csv, "--backup", timeout_s=60)
    assert final.counts["deleted"] == 3

    served = served_names(start_exporter(jobs.env))

    assert "tagsweep_backup_expiry_timestamp_seconds" in served, job_id
    missing = {
        where: sorted(metric_names(expr) - served)
        for where, expr in monitoring_expressions().items()
        if metric_names(expr) - served
    }
    assert missing == {}, f"not served by the exporter: {missing}"
