"""IAM tokens with real workers: a token expiring mid-job is renewed for all, no row fails."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import MakeScene, seeded


def test_tokens_expiring_mid_job_are_renewed_without_failing_a_row(
    tmp_path: Path, scene: MakeScene
) -> None:
    seed, job_csv = seeded(tmp_path, 300)
    tokens = scene(
        seed,
        "--user",
        "ops",
        "--password",
        "pw-for-the-test-1",
        "--domain",
        "acme",
        "--token-ttl",
        "3",
        TAGSWEEP_IAM_USER="ops",
        TAGSWEEP_IAM_PASSWORD="pw-for-the-test-1",
        TAGSWEEP_IAM_DOMAIN="acme",
        TAGSWEEP_LOG_LEVEL="debug",  # every line a worker can write is searched for the password
        workers=(),
        unset=("HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK"),
    )
    tokens.env["TAGSWEEP_IAM_ENDPOINT"] = tokens.sim.url
    worker = tokens.add_worker(processes=2)
    _, status = tokens.run(job_csv, "--rate", "40", timeout_s=60)
    assert status.counts == {"deleted": 300}
    # 7.5 s of work, tokens renewed at 90% of 3 s: a handful for both processes together.
    assert tokens.sim.stats()["tokens_issued"] <= 7.5 / 2.7 + 3
    logs = worker.log_path.read_text()
    assert "pw-for-the-test-1" not in logs
