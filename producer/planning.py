"""The plan of a job: what the files hold and how long deleting it should take."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from producer.batching import count_requests, iter_requests
from producer.collect import Collection
from producer.tally import Tally
from worker.jobs import KEY_ONLY, Api
from worker.model import ResourceBatch


@dataclass(frozen=True)
class Plan:
    """Counts for a set of files; every data row is exactly one of valid, invalid, duplicate."""

    files: tuple[str, ...]
    rows_read: int
    valid: int
    invalid: int
    duplicate: int
    images: int
    requests: int
    max_tags_per_request: int
    rate_per_s: float
    estimated_s: float
    # Calls each request costs: 2 when the image's tags are read first (--backup).
    calls_per_request: int = 1
    api: str = Api.V1.value
    # Of ``requests``, those through TMS (--api tms/auto): a key set off up to 20 images each.
    tms_requests: int = 0

    def as_json(self) -> dict[str, object]:
        return asdict(self)


def make_plan(
    collection: Collection,
    *,
    max_tags: int,
    rate_per_s: float,
    calls_per_request: int = 1,
    api: Api = Api.V1,
) -> Plan:
    requests, tms_requests = count_requests(collection, max_tags=max_tags), 0
    if api.uses_tms:  # grouping builds the batches: only when asked for
        requests = 0
        for batch in iter_requests(collection, max_tags=max_tags, api=api):
            requests += 1
            tms_requests += isinstance(batch, ResourceBatch)
    calls = requests * calls_per_request
    return Plan(
        files=tuple(span.name for span in collection.files),
        rows_read=collection.rows_read,
        valid=collection.valid,
        invalid=len(collection.errors),
        duplicate=collection.duplicates,
        images=collection.images,
        requests=requests,
        max_tags_per_request=max_tags,
        rate_per_s=rate_per_s,
        estimated_s=calls / rate_per_s if rate_per_s > 0 else 0.0,
        calls_per_request=calls_per_request,
        api=api.value,
        tms_requests=tms_requests,
    )


def quick_plan(tally: Tally, *, max_tags: int, rate_per_s: float, api: Api = Api.V1) -> Plan:
    """The plan of files ``producer.tally`` counted: IMS requests of ``max_tags`` tags per
    image (TMS plans group images by their keys: ``make_plan``)."""
    return Plan(
        files=tally.files,
        rows_read=tally.rows_read,
        valid=tally.valid,
        invalid=len(tally.errors),
        duplicate=tally.duplicates,
        images=tally.images,
        requests=tally.requests,
        max_tags_per_request=max_tags,
        rate_per_s=rate_per_s,
        estimated_s=tally.requests / rate_per_s if rate_per_s > 0 else 0.0,
        api=api.value,
    )


def format_duration(seconds: float) -> str:
    """``3725`` -> ``1h 02m 05s``; short durations stay short."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{seconds:.1f}s" if seconds < 10 else f"{secs}s"


def render_plan(plan: Plan) -> str:
    """The plan as a few aligned lines for a person."""
    lines = [
        f"files       {', '.join(plan.files)}",
        f"rows read   {plan.rows_read:,}",
        f"  valid     {plan.valid:,}",
        f"  duplicate {plan.duplicate:,} (merged with an identical row)",
        f"  invalid   {plan.invalid:,}",
        f"images      {plan.images:,}",
        f"requests    {plan.requests:,} (at most {plan.max_tags_per_request} tags each)",
        f"estimated   {format_duration(plan.estimated_s)} at {plan.rate_per_s:g} requests/s"
        + (" (each image read first, then changed)" if plan.calls_per_request > 1 else ""),
    ]
    if Api(plan.api).uses_tms:
        ims = plan.requests - plan.tms_requests
        lines[6] = (
            f"requests    {plan.requests:,}: {plan.tms_requests:,} TMS (up to 20 images each), "
            f"{ims:,} IMS (keys TMS does not take; at most {plan.max_tags_per_request} tags each)"
        )
        lines.append(f"api         {plan.api}: {KEY_ONLY}")
    return "\n".join(lines)
