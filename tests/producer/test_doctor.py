"""``tagsweep doctor``'s checks on what the reads found, without a network: the cases the
simulator does not play (a region's endpoint, a throttled read, no answer at all), the
gateway's clock as read from a Date header, and the learnt limits read from Redis."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from producer.doctor import CheckState, judge
from producer.preflight import Evidence, GatewayClock, Learnt, Read, Target
from worker import keys
from worker.cloud.credentials import AkSkCredentials, CredentialSources
from worker.cloud.outcomes import Outcome, OutcomeKind
from worker.jobs import Api
from worker.model import CloudLimit
from worker.store.accounts import AccountFacts, LearntRate

SOURCES = CredentialSources(AkSkCredentials("AK1", "SK1"))
PROJECT = "0123456789abcdef0123456789abcdef"
TARGET = Target(
    ims_url="https://ims.cn-north-4.myhuaweicloud.com",
    region="cn-north-4",
    project_id=PROJECT,
    tms_url="https://tms.myhuaweicloud.com",
    domain_id="d1",
)
OK = Read(Outcome(OutcomeKind.OK, http_status=200))
FINE = Evidence(OK, OK, Learnt(), image_count=5, tms_type="private_image", skew_s=0.4)


def states(target: Target = TARGET, evidence: Evidence = FINE) -> dict[str, CheckState]:
    return {check.name: check.state for check in judge(SOURCES, target, evidence)}


def line(name: str, target: Target = TARGET, evidence: Evidence = FINE) -> str:
    return next(c.line() for c in judge(SOURCES, target, evidence) if c.name == name)


def test_all_good_is_all_ok() -> None:
    assert set(states().values()) == {CheckState.OK}


def test_an_endpoint_of_another_region_than_the_region_given_fails_the_project_line() -> None:
    target = replace(TARGET, ims_url="https://ims.ap-southeast-1.myhuaweicloud.com")
    assert states(target)["project"] is CheckState.FAIL
    assert "is ap-southeast-1's, --region is cn-north-4" in line("project", target)


def test_tms_not_askable_fails_with_what_to_give() -> None:
    """No TMS endpoint for the region, or no account id: the line says which option."""
    no_endpoint = Read(why="no TMS endpoint known for region x", fix="give --tms-endpoint")
    evidence = replace(FINE, tms=no_endpoint, tms_type=None)
    assert states(evidence=evidence)["tms"] is CheckState.FAIL
    assert line("tms", evidence=evidence).endswith("; give --tms-endpoint")
    # With --api v1 the same is no failure.
    unused = replace(FINE, tms=Read(why="not used with --api v1"), tms_type=None)
    assert states(replace(TARGET, api=Api.V1), unused)["tms"] is CheckState.SKIP


def test_a_resource_type_override_that_differs_is_a_warning() -> None:
    target = replace(TARGET, tms_resource_type="images")
    assert states(target)["tms"] is CheckState.WARN
    assert "--tms-resource-type images overrides it" in line("tms", target)


def test_no_answer_from_ims_fails_its_line_and_leaves_the_rest_unproved() -> None:
    dropped = Read(Outcome(OutcomeKind.NETWORK_ERROR, error_message="connection refused"))
    found = states(evidence=replace(FINE, ims=dropped, skew_s=None))
    assert found["ims"] is CheckState.FAIL
    assert found["clock"] is CheckState.SKIP
    assert found["project"] is CheckState.SKIP
    assert found["credentials"] is CheckState.OK  # TMS accepted them


def test_an_iam_without_an_answer_fails_the_credentials_line_not_ims() -> None:
    gone = Outcome(OutcomeKind.NETWORK_ERROR, error_message="IAM at http://iam unreachable")
    evidence = replace(FINE, ims=Read(gone, service="IAM"), tms=Read(why="not used"))
    found = states(replace(TARGET, api=Api.V1), evidence)
    assert found["credentials"] is CheckState.FAIL
    assert found["ims"] is CheckState.SKIP
    assert "TAGSWEEP_IAM_ENDPOINT" in line("credentials", replace(TARGET, api=Api.V1), evidence)


def test_a_throttled_read_is_a_warning_not_a_failure() -> None:
    throttled = Read(Outcome(OutcomeKind.THROTTLED, http_status=429, error_code="APIGW.0308"))
    assert states(evidence=replace(FINE, tms=throttled))["tms"] is CheckState.WARN


def test_the_clock_reads_any_date_header_once() -> None:
    clock = GatewayClock(now=lambda: datetime(2026, 12, 3, 12, 0, tzinfo=UTC))
    clock.seen("not a date")
    clock.seen("Thu, 03 Dec 2026 12:20:00 GMT")
    clock.seen("Thu, 03 Dec 2026 12:00:00 GMT")
    assert clock.skew_s == 1200


async def test_the_learnt_rate_is_read_from_the_limiters_memory(aredis: Any) -> None:
    facts = AccountFacts(aredis)
    bucket = keys.rate_bucket("https://ims.example", "ak:AK1")
    assert await facts.learnt_rate(bucket) is None
    await aredis.hset(keys.rate_memory(bucket), mapping={"limit": 200, "window_ms": 300_000})
    await aredis.hset(keys.rate_memory(bucket), "known", "3.2")
    learnt = await facts.learnt_rate(bucket)
    assert learnt == LearntRate(CloudLimit(200, 300.0), 3.2)
    assert str(learnt) == "200 calls per 5 min (named by a 429), 3.2 calls/s accepted"
