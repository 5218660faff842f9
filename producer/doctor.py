"""``tagsweep doctor``'s checks: each a small function from what the reads found
(``producer.preflight.Evidence``) to one ``CheckResult``, with what to do when it fails.

A refused call is blamed on one check only, so that the one line that fails names the cause:
the clock first (the gateway refuses every signature over 15 minutes off, whatever the SK),
then the project (the refusal names it), then the account id (TMS), then the credentials.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from producer import advice
from producer.preflight import Evidence, Read, Target
from worker.cloud.credentials import (
    AkSkCredentials,
    Credentials,
    CredentialSources,
    PasswordCredentials,
)
from worker.cloud.outcomes import Outcome, OutcomeKind

# The gateway refuses a signature whose X-Sdk-Date is further than this from its clock.
MAX_SKEW_S = 15 * 60
# A skew this large still signs, but is worth mending before it grows.
WARN_SKEW_S = 5 * 60
REFUSALS = frozenset(
    {
        OutcomeKind.UNAUTHORIZED,
        OutcomeKind.SIGNATURE_FAILED,
        OutcomeKind.TOKEN_EXPIRED,
        OutcomeKind.FORBIDDEN,
    }
)
TRANSPORT = frozenset({OutcomeKind.NETWORK_ERROR, OutcomeKind.TIMEOUT})
# ims.{region}.myhuaweicloud.com and the like: the region an endpoint's host names.
_REGION_IN_HOST = re.compile(r"^[a-z]+\.([a-z]{2}-[a-z]+-\d+)\.")


class CheckState(StrEnum):
    OK = "ok"
    WARN = "warn"  # passes, but worth a look
    SKIP = "skip"  # could not be checked; another line says why
    FAIL = "FAIL"


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict: its name, state, what was seen and what to do (on FAIL or WARN)."""

    name: str
    state: CheckState
    detail: str
    fix: str = ""

    def line(self) -> str:
        """``FAIL  clock        <detail>; <fix>``: one line."""
        shown = self.fix and self.state in (CheckState.FAIL, CheckState.WARN)
        return f"{self.state.value:<5} {self.name:<11} {self.detail}" + (
            f"; {self.fix}" if shown else ""
        )

    def as_json(self) -> dict[str, str]:
        return {
            "name": self.name,
            "state": self.state.value,
            "detail": self.detail,
            "fix": self.fix,
        }


def blame(outcome: Outcome | None, skew_s: float | None) -> str | None:
    """The check a refused call is due to (``clock``, ``project``, ``account`` or
    ``credentials``); None when the call was not refused for who or where it calls."""
    if outcome is None or outcome.kind not in REFUSALS:
        return None
    if skew_s is not None and abs(skew_s) > MAX_SKEW_S:
        return "clock"
    said = (outcome.error_message or "").lower()
    # APIGW.0302: "The IAM user is forbidden in the currently selected region".
    if outcome.error_code == "APIGW.0302" or "project" in said:
        return "project"
    if "domain" in said:
        return "account"
    return None if outcome.kind is OutcomeKind.FORBIDDEN else "credentials"


def answer_text(outcome: Outcome) -> str:
    """``401 APIGW.0301: Incorrect IAM ...``, or the transport failure."""
    status = outcome.http_status if outcome.http_status is not None else outcome.kind.value
    code = f" {outcome.error_code}" if outcome.error_code else ""
    message = f": {outcome.error_message}" if outcome.error_message else ""
    return f"{status}{code}{message}"


def describe_credentials(credentials: Credentials) -> str:
    """Which kind of credentials, and whose, without a secret."""
    if isinstance(credentials, AkSkCredentials):
        temporary = " temporary" if credentials.security_token else ""
        return f"AK/SK{temporary} (AK {credentials.ak})"
    if isinstance(credentials, PasswordCredentials):
        return f"IAM user {credentials.user} of account {credentials.domain}"
    return f"an IAM token ({credentials.identity})"


def check_credentials(sources: CredentialSources, target: Target, ev: Evidence) -> CheckResult:
    kind = describe_credentials(sources.credentials)
    reads = {"IMS": ev.ims, "TMS": ev.tms}
    accepted = [api for api, read in reads.items() if _ok(read)]
    if accepted:
        account = f", account {target.domain_id}" if "TMS" in accepted else ""
        project = f" (project {target.project_id}{account})" if "IMS" in accepted else ""
        return _ok_line("credentials", f"{kind} accepted by {' and '.join(accepted)}{project}")
    iam = ev.ims.outcome if ev.ims.service == "IAM" else None
    if iam is not None and iam.kind in TRANSPORT:
        return _fail("credentials", f"{kind}: {iam.error_message}", advice.IAM)
    for api, read in reads.items():
        if read.outcome is not None and blame(read.outcome, ev.skew_s) == "credentials":
            detail = f"{kind} refused by {read.service or api}: {answer_text(read.outcome)}"
            return CheckResult(
                "credentials", CheckState.FAIL, detail, advice.credentials(sources.credentials)
            )
    return CheckResult("credentials", CheckState.SKIP, f"{kind}: not proved ({_unproved(ev)})")


def check_project(target: Target, ev: Evidence) -> CheckResult:
    """A project and a region (or endpoint) given, agreeing, and accepted by IMS."""
    if not target.project_id:
        return _fail("project", "no project id", advice.NO_PROJECT)
    if not target.ims_url:
        return _fail("project", "no region", advice.NO_REGION)
    named = _REGION_IN_HOST.match(target.ims_url.split("://", 1)[-1])
    if named and target.region and named[1] != target.region:
        detail = f"the endpoint {target.ims_url} is {named[1]}'s, --region is {target.region}"
        return _fail("project", detail, advice.OTHER_REGION)
    where = f"project {target.project_id} in region {target.region or '(from the endpoint)'}"
    if ev.ims.outcome is not None and blame(ev.ims.outcome, ev.skew_s) == "project":
        return _fail(
            "project",
            f"{where} refused by IMS: {answer_text(ev.ims.outcome)}",
            advice.WRONG_PROJECT,
        )
    if _ok(ev.ims):
        return _ok_line("project", f"{where} accepted by IMS")
    return CheckResult("project", CheckState.SKIP, f"{where}: not proved ({_unproved(ev)})")


def check_clock(ev: Evidence) -> CheckResult:
    """This machine's clock against the gateway's, from the Date of any answer."""
    if ev.skew_s is None:
        return CheckResult("clock", CheckState.SKIP, "no answer carried a Date to compare with")
    skew = abs(ev.skew_s)
    way = "ahead of" if ev.skew_s > 0 else "behind"
    if skew > WARN_SKEW_S:
        state = CheckState.FAIL if skew > MAX_SKEW_S else CheckState.WARN
        detail = (
            f"the gateway's clock is {skew / 60:.0f} min {way} this machine's: "
            "signatures over 15 min off are refused"
        )
        return CheckResult("clock", state, detail, advice.NTP)
    return _ok_line("clock", f"within {max(skew, 1):.0f} s of the gateway's (15 min allowed)")


def check_ims(target: Target, ev: Evidence) -> CheckResult:
    """IMS answered the tag query."""
    outcome = ev.ims.outcome
    if outcome is None or ev.ims.service == "IAM":
        why = ev.ims.why or "IAM gave no token (see credentials)"
        return CheckResult("ims", CheckState.SKIP, f"not asked: {why}")
    where = f"IMS at {target.ims_url}"
    if outcome.kind is OutcomeKind.OK:
        return _ok_line("ims", f"{where}: the tag query counts {ev.image_count:,} images")
    return _answered("ims", where, outcome, ev.skew_s, advice.IMS)


def check_tms(target: Target, ev: Evidence) -> CheckResult:
    """TMS answered its providers list, and names a resource type for IMS images."""
    outcome = ev.tms.outcome
    if outcome is None:
        if not target.api.uses_tms or not ev.tms.fix:
            return CheckResult("tms", CheckState.SKIP, ev.tms.why)
        return _fail("tms", ev.tms.why, ev.tms.fix)
    where = f"TMS at {target.tms_url}"
    if outcome.kind is not OutcomeKind.OK:
        return _answered("tms", where, outcome, ev.skew_s, advice.TMS)
    override = target.tms_resource_type
    if not ev.tms_type:
        detail = f"{where} lists no resource type for IMS images: --api tms is refused"
        if override:
            return _warn("tms", detail, f"--tms-resource-type {override} is sent as given")
        return _fail("tms", detail, advice.TMS_WITHOUT_IMS)
    named = f"{where} names IMS images {ev.tms_type!r}"
    if override and override != ev.tms_type:
        return _warn("tms", named, f"--tms-resource-type {override} overrides it")
    return _ok_line("tms", f"{named} (account {target.domain_id})")


def check_limits(target: Target, ev: Evidence) -> CheckResult:
    """What the shared limiter learnt so far, for information (never fails)."""
    learnt = ev.learnt
    if learnt.note:
        return CheckResult("limits", CheckState.SKIP, learnt.note)
    said = [
        f"{api}: {rate}" if rate else f"{api}: nothing learnt yet"
        for api, rate in learnt.rates.items()
    ]
    if learnt.kept_tms_type is not None:
        said.append(f"TMS type kept for the account: {learnt.kept_tms_type or '(none)'}")
    return _ok_line("limits", "; ".join(said) or "nothing learnt yet")


def judge(sources: CredentialSources, target: Target, ev: Evidence) -> list[CheckResult]:
    """Every check, in the order a reader mends them."""
    return [
        check_credentials(sources, target, ev),
        check_project(target, ev),
        check_clock(ev),
        check_ims(target, ev),
        check_tms(target, ev),
        check_limits(target, ev),
    ]


def _answered(
    name: str, where: str, outcome: Outcome, skew_s: float | None, fixes: dict[str, str]
) -> CheckResult:
    """The verdict on a service that answered other than OK (or not at all)."""
    if outcome.kind in TRANSPORT:
        return _fail(name, f"no answer from {where}: {answer_text(outcome)}", fixes["transport"])
    blamed = blame(outcome, skew_s)
    if blamed in fixes:
        return _fail(name, f"{where} refused the account: {answer_text(outcome)}", fixes[blamed])
    if blamed is not None:
        return _ok_line(name, f"{where} answered {outcome.http_status}: see {blamed}")
    if outcome.kind is OutcomeKind.THROTTLED:
        return _warn(name, f"{where} throttled the read", advice.THROTTLED)
    if outcome.kind is OutcomeKind.FORBIDDEN:
        return _fail(name, f"{where} refused: {answer_text(outcome)}", fixes["forbidden"])
    return _fail(name, f"{where} answered {answer_text(outcome)}", fixes["other"])


def _unproved(ev: Evidence) -> str:
    """Why IMS's read proved nothing: the check its refusal is blamed on, else IMS's line."""
    if ev.ims.service == "IAM":
        return "IAM gave no token: see credentials"
    blamed = blame(ev.ims.outcome, ev.skew_s)
    return f"IMS refused the read: see {blamed}" if blamed else "IMS did not answer: see ims"


def _ok(read: Read) -> bool:
    return read.outcome is not None and read.outcome.kind is OutcomeKind.OK


def _ok_line(name: str, detail: str) -> CheckResult:
    return CheckResult(name, CheckState.OK, detail)


def _warn(name: str, detail: str, fix: str) -> CheckResult:
    return CheckResult(name, CheckState.WARN, detail, fix)


def _fail(name: str, detail: str, fix: str) -> CheckResult:
    return CheckResult(name, CheckState.FAIL, detail, fix)
