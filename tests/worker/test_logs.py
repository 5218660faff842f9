"""Logs are JSON lines with the contract's fields, and never carry a secret."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from worker.logs import MASK, REDACTOR, Redactor, configure_logging


@pytest.fixture(autouse=True)
def reset_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    logging.getLogger().handlers = []
    logging.captureWarnings(False)


def test_secret_values_and_secret_fields_are_masked() -> None:
    redactor = Redactor()
    redactor.register(["s3cr3t-sk-value", None, "abc"])
    event = redactor(
        None,
        "info",
        {
            "event": "oops s3cr3t-sk-value leaked",
            "password": "pw",
            "x_auth_token": "tok",
            "error": ValueError("token s3cr3t-sk-value"),
            "header": "Authorization: SDK-HMAC-SHA256 Access=AK, SignedHeaders=host, Signature="
            + "ab" * 32,
            "url": "redis://:hunter22@host:6379/0",
            "headers": "{'X-AUTH-TOKEN': 'MIIabc123'}",
            "attempt": 2,
            "short": "abc is not masked",
        },
    )
    assert event["event"] == f"oops {MASK} leaked"
    assert event["password"] == MASK
    assert event["x_auth_token"] == MASK
    assert event["error"] == f"token {MASK}"
    assert event["header"].endswith(f"Signature={MASK}")
    assert event["url"] == f"redis://:{MASK}@host:6379/0"
    assert event["headers"] == f"{{'X-AUTH-TOKEN': '{MASK}'}}"
    assert event["attempt"] == 2
    assert event["short"] == "abc is not masked"


def test_structlog_and_stdlib_records_are_json_lines_without_secrets(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(json_output=True)
    REDACTOR.register(["registered-secret-123"])
    structlog.get_logger("t").info("batch.done", job_id="j1", status="deleted", attempt=1)
    logging.getLogger("celery.worker").warning("connected with registered-secret-123")
    lines = capsys.readouterr().out.splitlines()
    records = [json.loads(line) for line in lines]
    assert records[0]["event"] == "batch.done"
    assert {"timestamp", "level", "job_id", "status", "attempt"} <= set(records[0])
    assert records[1]["event"] == f"connected with {MASK}"
    assert records[1]["level"] == "warning"
    assert "registered-secret-123" not in "".join(lines)


def test_counts_stay_json_numbers_and_sets_of_counts_json_objects(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``jq '.rows.deleted'`` works: a dict is an object (a Counter too), a list an array,
    numbers numbers, and redaction still reaches the strings inside them."""
    from collections import Counter

    configure_logging(json_output=True)
    REDACTOR.register(["nested-secret-456"])
    structlog.get_logger("t").info(
        "job.progress",
        rows=Counter({"deleted": 449, "failed": 2}),
        keys=["env", "nested-secret-456"],
        nested={"count": 3, "token": "abc123456", "error": "x nested-secret-456"},
        requests=451,
    )
    line = json.loads(capsys.readouterr().out)
    assert line["rows"] == {"deleted": 449, "failed": 2}
    assert line["keys"] == ["env", MASK]
    assert line["nested"] == {"count": 3, "token": MASK, "error": f"x {MASK}"}
    assert line["requests"] == 451
