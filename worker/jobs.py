"""A job as workers see it: its state, its options, and a row's result."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum

from worker.keys import JobField as F
from worker.model import CloudLimit, RowStatus


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    COMPLETED_WITH_FAILURES = "completed_with_failures"
    ABORTED = "aborted"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self not in (JobState.QUEUED, JobState.RUNNING)


class Mode(StrEnum):
    """What a job does with its rows."""

    DELETE = "delete"  # delete the tags (optionally reading them first: --backup)
    PLAN = "plan"  # read the tags and say what a delete would do; changes nothing
    UNDO = "undo"  # re-create tags a --backup job deleted, unless set again since


# Per mode, the final statuses that mean "this row's intent was carried out". A job whose rows
# all end in one of them is ``completed``, else ``completed_with_failures``; ``run`` exits 0 or 1
# on the same test. value_differs is not among the delete goals: the tag is still there.
GOALS: dict[Mode, frozenset[RowStatus]] = {
    Mode.DELETE: frozenset({RowStatus.DELETED, RowStatus.NOT_FOUND}),
    Mode.PLAN: frozenset(
        {
            RowStatus.WOULD_DELETE,
            RowStatus.VALUE_DIFFERS,
            RowStatus.ABSENT,
            RowStatus.IMAGE_NOT_FOUND,
        }
    ),
    Mode.UNDO: frozenset({RowStatus.RESTORED, RowStatus.KEPT_NEWER, RowStatus.NOT_FOUND}),
}

# Statuses any mode can end a row in when a call fails or the job stops.
_TROUBLE = (
    RowStatus.REJECTED,
    RowStatus.FORBIDDEN,
    RowStatus.UNAUTHORIZED,
    RowStatus.FAILED,
    RowStatus.INVALID,
    RowStatus.CANCELLED,
)
# Per mode, every status its rows can end in (for status output and --only choices).
STATUSES: dict[Mode, tuple[RowStatus, ...]] = {
    Mode.DELETE: (RowStatus.DELETED, RowStatus.NOT_FOUND, RowStatus.VALUE_DIFFERS, *_TROUBLE),
    Mode.PLAN: (
        RowStatus.WOULD_DELETE,
        RowStatus.VALUE_DIFFERS,
        RowStatus.ABSENT,
        RowStatus.IMAGE_NOT_FOUND,
        *_TROUBLE,
    ),
    Mode.UNDO: (RowStatus.RESTORED, RowStatus.KEPT_NEWER, RowStatus.NOT_FOUND, *_TROUBLE),
}


# What --api tms/auto means for a user, said wherever a job is described.
KEY_ONLY = "by key through TMS: a key is removed whatever its value"
# While a job is worked, its active time (``Job.active_ms``) is brought up to date at each
# flush of results and lease renewal (every lease_s / 3, 10 s by default); a read in between
# adds the time since, up to this much (beyond it nothing has been holding the job's chunks).
ACTIVE_GAP_MS = 15_000


class Api(StrEnum):
    V1 = "v1"  # DELETE /v1/{project}/cloudimages/{image}/tags/delete (the seed API)
    V2 = "v2"  # POST /v2/{project}/images/{image}/tags/action, action=delete
    # POST /v1.0/resource-tags/batch-delete on TMS: a key set off up to 20 images a call, by key
    # whatever the value; keys TMS does not take go through IMS (v1) image by image.
    TMS = "tms"
    # TMS for what it takes, IMS (v1) for the rest and for what TMS refuses, both at once.
    AUTO = "auto"

    @property
    def uses_tms(self) -> bool:
        return self in (Api.TMS, Api.AUTO)


class Read(StrEnum):
    """How a job that reads first (plan, --backup) reads the images' tags."""

    AUTO = "auto"  # in pages of the tag query where that costs fewer calls, else per image
    PAGES = "pages"  # in pages whatever it costs (images the listing lacks: per image)
    IMAGE = "image"  # one GET per image, just before its delete


@dataclass(frozen=True)
class JobOptions:
    """What a job tells every worker; no credentials, ever. Its defaults are the command
    line's too (``producer.options``): stated here only."""

    endpoint: str | None = None
    api: Api = Api.V1
    rate_per_s: float = 50.0
    max_attempts: int = 8
    row_deadline_s: float = 600.0
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    breaker_min: int = 100
    breaker_ratio: float = 0.5
    mode: Mode = Mode.DELETE
    # Read each image's tags before deleting and keep the values of the keys deleted.
    backup: bool = False
    # With backup: leave keys whose current value is not the CSV's (value_differs).
    match_values: bool = False
    # For an undo: the job whose deletions it reverses.
    undo_of: str | None = None
    # Sent to ``run --simulate``'s own simulator, which ended with the run: nothing to undo.
    simulated: bool = False
    # TMS (--api tms/auto): its base URL instead of the region's, the account it signs for
    # (else the workers' own HUAWEICLOUD_SDK_DOMAIN_ID or profile), and IMS images' resource
    # type instead of the one TMS names (asked once per account, kept 30 days).
    tms_endpoint: str | None = None
    domain_id: str | None = None
    tms_resource_type: str | None = None
    # How the tags are read first (plan, --backup): see ``reads_in_pages``.
    read: Read = Read.AUTO

    @property
    def reads_first(self) -> bool:
        """Whether each batch starts by reading the image's current tags."""
        return self.backup or self.mode is not Mode.DELETE

    @property
    def sending_api(self) -> Api:
        """The API the job deletes through: a plan and an undo send no delete, and their
        reads and re-creates are IMS's, image by image."""
        return self.api if self.mode is Mode.DELETE else Api.V1

    @property
    def reads_in_pages(self) -> bool:
        """Whether the command line may read the tags in pages before the workers start
        (``producer.pagedread``): a plan, or a backup that keeps what it finds. Not with
        --match-values, whose comparison is made just before each delete, nor for an undo."""
        if self.read is Read.IMAGE:
            return False
        return self.mode is Mode.PLAN or (
            self.mode is Mode.DELETE and self.backup and not self.match_values
        )

    @property
    def goals(self) -> frozenset[RowStatus]:
        return GOALS[self.mode]

    def describe(self) -> str:
        """The kind of job in a few words, for status and summaries."""
        if self.mode is Mode.UNDO:
            return f"undo of job {self.undo_of}"
        if self.mode is Mode.PLAN:
            if self.api.uses_tms:
                # A plan reads values; TMS would not look at them.
                return f"plan (read-only) of a delete {KEY_ONLY}: value_differs rows would go too"
            return "plan (read-only)"
        if self.match_values:
            kind = "delete with backup, only matching values"
        else:
            kind = "delete with backup" if self.backup else "delete (no backup)"
        return f"{kind}, {KEY_ONLY}" if self.api.uses_tms else kind

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> JobOptions:
        data = json.loads(text)
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        known["api"] = Api(known.get("api", Api.V1))
        known["mode"] = Mode(known.get("mode", Mode.DELETE))
        known["read"] = Read(known.get("read", Read.AUTO))
        return cls(**known)


@dataclass(frozen=True)
class Job:
    """The job record as stored in Redis (``keys.job``)."""

    job_id: str
    state: JobState
    total: int
    chunks: int
    options: JobOptions
    created_at_ms: int = 0
    started_at_ms: int | None = None
    finished_at_ms: int | None = None
    reason: str = ""
    # The status an abort's own cause gave rows (``JobField.RESEND``).
    resend: RowStatus | None = None
    effective_rate_per_s: float | None = None
    # The limit the cloud's 429 message named, as the workers learnt it ("COUNT/WINDOW_S").
    cloud_limit: CloudLimit | None = None
    # Requests whose rows were recorded (one per request, whatever its attempts).
    requests: int = 0
    files: tuple[str, ...] = ()
    checksum: str = ""
    # Rows worked before the job was last queued again (retry, resume): the rate counts the rest.
    worked_before: int = 0
    # Time the rows were worked, and where that sum ends (``JobField.ACTIVE_MS``); None
    # before the first lease renewal or release of this pass.
    active_ms: int | None = None
    active_at_ms: int | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def worked_s(self, now_ms: int, *, held: bool) -> float | None:
        """Time the rows were worked up to ``now_ms``: the leases' active time (a pause left
        out), and the time since it was counted when ``held`` (``ACTIVE_GAP_MS`` at most);
        for a job from before active time, from its start. None before work started."""
        if self.active_ms is None:
            if self.started_at_ms is None:
                return None
            return max(0.0, ((self.finished_at_ms or now_ms) - self.started_at_ms) / 1000)
        since_ms = now_ms - (self.active_at_ms or now_ms)
        held_ms = since_ms if held and 0 < since_ms <= ACTIVE_GAP_MS else 0
        return (self.active_ms + held_ms) / 1000

    @classmethod
    def from_record(cls, job_id: str, record: Mapping[str, str]) -> Job:
        def number(name: str) -> int | None:
            value = record.get(name)
            return int(value) if value else None

        return cls(
            job_id=job_id,
            state=JobState(record[F.STATE]),
            total=int(record[F.TOTAL]),
            chunks=int(record[F.CHUNKS]),
            options=JobOptions.from_json(record.get(F.OPTIONS, "{}")),
            created_at_ms=number(F.CREATED_AT) or 0,
            started_at_ms=number(F.STARTED_AT),
            finished_at_ms=number(F.FINISHED_AT),
            reason=record.get(F.REASON, ""),
            resend=RowStatus(record[F.RESEND]) if record.get(F.RESEND) else None,
            effective_rate_per_s=float(record[F.EFFECTIVE_RATE])
            if record.get(F.EFFECTIVE_RATE)
            else None,
            cloud_limit=_cloud_limit(record.get(F.CLOUD_LIMIT, "")),
            requests=number(F.REQUESTS) or 0,
            files=tuple(json.loads(record.get(F.FILES, "[]"))),
            checksum=record.get(F.CHECKSUM, ""),
            worked_before=number(F.WORKED_BEFORE) or 0,
            active_ms=number(F.ACTIVE_MS),
            active_at_ms=number(F.ACTIVE_AT),
        )


def _cloud_limit(text: str) -> CloudLimit | None:
    count, _, window_s = text.partition("/")
    try:
        return CloudLimit(int(count), float(window_s)) if count and window_s else None
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class RowResult:
    """A row's final result as kept in Redis and shown in the report."""

    status: RowStatus
    http_status: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    attempts: int = 0
    request_id: str | None = None
    finished_at_ms: int = 0

    def to_json(self) -> str:
        return json.dumps(
            [
                self.status.value,
                self.http_status,
                self.error_code,
                self.error_message,
                self.attempts,
                self.request_id,
                self.finished_at_ms,
            ],
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> RowResult:
        status, http_status, code, message, attempts, request_id, finished = json.loads(text)
        return cls(RowStatus(status), http_status, code, message, attempts, request_id, finished)
