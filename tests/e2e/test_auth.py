"""IAM tokens with real workers: a token expiring mid-job is renewed for all, no row fails."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.e2e.conftest import SimProcess, WorkerProcess, submit, wait_for_job, worker_env
from tests.e2e.test_limits import seeded


def test_tokens_expiring_mid_job_are_renewed_without_failing_a_row(
    tmp_path: Path,
    e2e_redis_url: str,
    start_sim_process: Callable[..., SimProcess],
    start_worker: Callable[..., WorkerProcess],
) -> None:
    seed, job_csv = seeded(tmp_path, 300)
    sim = start_sim_process(
        seed,
        "--user",
        "ops",
        "--password",
        "pw-for-the-test-1",
        "--domain",
        "acme",
        "--token-ttl",
        "3",
    )
    env = worker_env(
        e2e_redis_url,
        sim,
        TAGSWEEP_IAM_USER="ops",
        TAGSWEEP_IAM_PASSWORD="pw-for-the-test-1",
        TAGSWEEP_IAM_DOMAIN="acme",
        TAGSWEEP_IAM_ENDPOINT=sim.url,
        TAGSWEEP_LOG_LEVEL="debug",  # every line a worker can write is searched for the password
    )
    del env["HUAWEICLOUD_SDK_AK"], env["HUAWEICLOUD_SDK_SK"]
    workers = [start_worker(env, processes=2)]
    job_id = submit(env, str(job_csv), "--rate", "40")
    status = wait_for_job(e2e_redis_url, job_id, timeout_s=60)
    assert status.counts == {"deleted": 300}
    # 7.5 s of work, tokens renewed at 90% of 3 s: a handful for both processes together.
    assert sim.stats()["tokens_issued"] <= 7.5 / 2.7 + 3
    logs = workers[0].log_path.read_text()
    assert "pw-for-the-test-1" not in logs
