"""A job through a Redis on TLS only, with a password and a certificate from a CA the test
made: real workers, the simulator and the command line, with the URL written in Celery's
spelling and in redis-py's; and what a wrong URL says."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.helpers import MakeScene, make_tls_files, run_cli, seeded

PASSWORD = "tls-pw-not-logged-8812"


def test_a_job_runs_through_a_tls_redis_with_a_password(
    tmp_path: Path, scene: MakeScene, start_redis_server: Callable[..., str]
) -> None:
    """Workers and ``submit`` use Celery's spelling (``ssl_cert_reqs=CERT_REQUIRED``),
    ``status`` redis-py's (``required``); both name the CA with ``ssl_ca_certs``."""
    tls = make_tls_files(tmp_path)
    url = start_redis_server(tls=tls, password=PASSWORD)
    seed, job_csv = seeded(tmp_path, 200)
    through_tls = scene(seed, redis_url=f"{url}?ssl_cert_reqs=CERT_REQUIRED&ssl_ca_certs={tls.ca}")
    job_id, status = through_tls.run(job_csv, "--rate", "200", timeout_s=60)
    assert status.counts == {"deleted": 200}
    assert through_tls.sim.stats()["max_deletions_per_image"] == 1

    env = {**through_tls.env, "REDIS_URL": f"{url}?ssl_cert_reqs=required&ssl_ca_certs={tls.ca}"}
    shown = run_cli(env, "status", job_id)
    assert shown.returncode == 0, shown.stderr
    assert "completed" in shown.stdout
    logs = "".join(worker.log_path.read_text() for worker in through_tls.workers)
    assert '"event": "job.finished"' in logs
    assert PASSWORD not in logs


def test_an_untrusted_certificate_or_a_missing_password_is_one_line_naming_the_fix(
    tmp_path: Path, start_redis_server: Callable[..., str]
) -> None:
    tls = make_tls_files(tmp_path)
    url = start_redis_server(tls=tls, password=PASSWORD)
    untrusted = run_cli({"PATH": "/usr/bin:/bin", "REDIS_URL": url}, "jobs")
    assert untrusted.returncode == 2
    [line] = untrusted.stderr.strip().splitlines()
    assert "not trusted" in line
    assert "REDIS_URL" in line
    assert "ssl_ca_certs=" in line
    assert PASSWORD not in line

    anonymous = url.replace(f":{PASSWORD}@", "") + f"?ssl_ca_certs={tls.ca}"
    refused = run_cli({"PATH": "/usr/bin:/bin", "REDIS_URL": anonymous}, "jobs")
    assert refused.returncode == 2
    [line] = refused.stderr.strip().splitlines()
    assert "wants a password" in line
    assert "REDIS_URL" in line
    assert "HELLO" not in line
    assert "NOAUTH" not in line
