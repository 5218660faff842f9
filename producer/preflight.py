"""The reads ``tagsweep doctor`` makes, and nothing else: one IMS tag-query ``count``, one TMS
providers list, the gateway's clock from the ``Date`` of whatever answer came back, and what
the shared limiter learnt (from Redis, when one answers). Nothing is written, to the cloud or
to Redis, and nothing is retried: a preflight reports what it sees (``producer.doctor`` judges).

The calls go out without the shared limiter: two reads (three with an IAM password) do not need
one, and a limiter needs Redis, which doctor must not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING

from producer import advice
from worker.cloud.credentials import AkSkCredentials, CredentialSources
from worker.cloud.outcomes import Outcome, OutcomeKind
from worker.cloud.query import ImageQuery
from worker.errors import AuthError, CredentialsError
from worker.jobs import Api
from worker.store.accounts import LearntRate

if TYPE_CHECKING:
    import aiohttp

    from worker.cloud.auth import Auth
    from worker.limits.scopes import Schedules
    from worker.store.accounts import AccountFacts

# Each read gives up after this long: a preflight should answer in seconds.
READ_TIMEOUT_S = 15.0
REDIS_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Target:
    """What doctor checks: the IMS and TMS endpoints, the project and account, the API."""

    ims_url: str | None
    region: str | None
    project_id: str | None
    tms_url: str | None
    domain_id: str | None
    api: Api = Api.AUTO
    tms_resource_type: str | None = None


@dataclass(frozen=True)
class Read:
    """One read: its outcome, or (``outcome`` None) why it was not sent and what to do."""

    outcome: Outcome | None = None
    why: str = ""
    fix: str = ""
    # "IAM" when the outcome is IAM's (no token for the read), "" when it is the service's.
    service: str = ""


@dataclass(frozen=True)
class Learnt:
    """What the workers' Redis holds about this target: the limits learnt per API (None:
    nothing yet), the TMS type kept for the account; or why it is not shown (``note``)."""

    rates: dict[str, LearntRate | None] = field(default_factory=dict)
    kept_tms_type: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Evidence:
    """Everything the reads found."""

    ims: Read
    tms: Read
    learnt: Learnt
    image_count: int | None = None
    tms_type: str | None = None
    # The gateway's clock minus this machine's, from the first answer's Date header.
    skew_s: float | None = None


async def gather(
    target: Target,
    sources: CredentialSources,
    *,
    iam_endpoint: str,
    redis_url: str | None,
) -> Evidence:
    """Make the reads, IMS first (TMS is spared a signature IMS refused)."""
    import aiohttp

    from worker.cloud.auth import make_auth

    clock = GatewayClock()
    async with aiohttp.ClientSession(trace_configs=[clock.trace()]) as session:
        auth = make_auth(sources.credentials, session=session, iam_endpoint=iam_endpoint)
        ims, count = await read_ims(session, auth, target)
        tms, found = await read_tms(session, sources, target, ims)
    learnt = await read_learnt(redis_url, target, auth.identity)
    return Evidence(ims, tms, learnt, count, found, clock.skew_s)


class GatewayClock:
    """Reads the ``Date`` of every answer the session gets, signed or not, refused or not, so
    that the skew is known even when a signature was refused because of it."""

    def __init__(self, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.now = now
        self.skew_s: float | None = None

    def trace(self) -> aiohttp.TraceConfig:
        import aiohttp

        config = aiohttp.TraceConfig()
        config.on_request_end.append(self._answered)
        return config

    async def _answered(
        self, _session: object, _context: SimpleNamespace, params: aiohttp.TraceRequestEndParams
    ) -> None:
        self.seen(params.response.headers.get("Date"))

    def seen(self, date: str | None) -> None:
        """Note the skew of an answer's Date (the first one that has a valid Date)."""
        if self.skew_s is not None or not date:
            return
        try:
            stamped = parsedate_to_datetime(date)
        except (TypeError, ValueError):
            return
        if stamped.tzinfo is not None:
            self.skew_s = (stamped - self.now()).total_seconds()


async def read_ims(
    session: aiohttp.ClientSession, auth: Auth, target: Target
) -> tuple[Read, int | None]:
    """IMS's tag query ``count`` over the whole project: a read that proves the endpoint, the
    credentials and the project at once. For an IAM user, IAM's answer when it gives no token
    (a refused password, or no answer at all)."""
    from worker.cloud.client import ImsClient

    if not target.project_id or not target.ims_url:
        return Read(why="no project or no region (see project)"), None
    client = ImsClient(session, endpoint=target.ims_url, auth=auth, timeout_s=READ_TIMEOUT_S)
    try:
        outcome, page = await client.query_images(target.project_id, ImageQuery().body("count"))
    except AuthError as exc:
        kind = OutcomeKind.NETWORK_ERROR if exc.http_status is None else OutcomeKind.UNAUTHORIZED
        outcome = Outcome(kind, http_status=exc.http_status, error_message=str(exc))
        return Read(outcome, service="IAM"), None
    return Read(outcome), None if page is None else page.total_count


async def read_tms(
    session: aiohttp.ClientSession, sources: CredentialSources, target: Target, ims: Read
) -> tuple[Read, str | None]:
    """TMS's providers list for IMS: the resource type it names for images (None: none)."""
    from worker.cloud.auth import domain_auth
    from worker.cloud.tms import TmsClient

    unsent = _why_not_tms(sources, target, ims)
    if unsent is not None:
        return unsent, None
    assert target.tms_url is not None
    assert target.domain_id is not None
    try:
        auth = domain_auth(sources.credentials, target.domain_id)
    except CredentialsError as exc:
        return Read(why=str(exc), fix=advice.TMS_NEEDS_AKSK), None
    client = TmsClient(
        session,
        endpoint=target.tms_url,
        auth=auth,
        domain_id=target.domain_id,
        timeout_s=READ_TIMEOUT_S,
    )
    outcome, found = await client.ims_resource_type()
    return Read(outcome), found


def _why_not_tms(sources: CredentialSources, target: Target, ims: Read) -> Read | None:
    """Why TMS is not asked (None: it is)."""
    if not target.api.uses_tms:
        return Read(why=f"not used with --api {target.api.value}")
    if not target.tms_url:
        return Read(
            why=f"no TMS endpoint known for region {target.region or '(none)'}",
            fix=advice.NO_TMS_ENDPOINT,
        )
    if not target.domain_id:
        return Read(
            why="no account (domain) id to sign TMS calls with",
            fix=advice.NO_DOMAIN,
        )
    refused = ims.outcome is not None and ims.outcome.kind is OutcomeKind.SIGNATURE_FAILED
    if refused and isinstance(sources.credentials, AkSkCredentials):
        # Five bad signatures lock the AK for five minutes: do not add one more.
        return Read(why="not asked: IMS refused the signature, and each bad one counts to a lock")
    return None


def egress_id() -> str:
    """This host's egress group, as its workers would name it (``TAGSWEEP_EGRESS_ID``)."""
    from worker.settings import Settings

    return Settings.from_env().egress_id


async def learnt_for(facts: AccountFacts, schedules: Schedules) -> LearntRate | None:
    """What the limiter learnt for one API's schedules, as the workers name them
    (worker.runtime, worker.engine.tmsline): the scope a 429 named (everyone's, then the
    egress group's) before the user scope every schedule starts on."""
    from worker.model import Scope

    for scope in (Scope.API, Scope.IP, Scope.USER):
        if found := await facts.learnt_rate(schedules.key(scope)):
            return found
    return None


async def read_learnt(redis_url: str | None, target: Target, identity: str) -> Learnt:
    """What the shared limiter learnt for IMS and TMS with this identity, and the TMS type
    kept for the account; a note instead when no Redis answers (doctor needs none)."""
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError

    from worker.limits.scopes import Schedules
    from worker.settings import redact_url
    from worker.store.accounts import AccountFacts

    if not redis_url:
        return Learnt(note="no REDIS_URL and no private Redis running here: nothing to show")
    client = aioredis.Redis.from_url(
        redis_url,
        decode_responses=True,
        socket_connect_timeout=REDIS_TIMEOUT_S,
        socket_timeout=REDIS_TIMEOUT_S,
    )
    facts = AccountFacts(client)
    apis = {"IMS": ("ims", target.ims_url), "TMS": ("tms", target.tms_url)}
    try:
        learnt = {
            label: await learnt_for(facts, Schedules(endpoint, identity, egress_id(), api))
            for label, (api, endpoint) in apis.items()
            if endpoint
        }
        kept = await facts.tms_resource_type(target.domain_id) if target.domain_id else None
    except (RedisError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return Learnt(note=f"no Redis answered at {redact_url(redis_url)} ({reason})")
    finally:
        await client.aclose()
    return Learnt(learnt, kept)
