"""Working one TMS batch (``--api tms``/``auto``): a key set off up to 20 images in one call.

The images' rows already final are dropped; with ``--backup`` each image is read first
through IMS (``batch.read_first``: kept, and ``--match-values`` leaves the keys holding
another value), and what is left to delete is sent in one call per remaining key set. Each
image's rows get the call's outcome, or their own when TMS lists the image among
``failed_resources``. An image TMS refused for its type or key (``unsupported``), or a whole
call refused (400, 403), goes through IMS under ``--api auto``; a throttled image is sent again.
When TMS cannot be used at all (no endpoint, token credentials, IMS not listed), ``auto``
sends the batch through IMS image by image, and ``tms`` aborts the job with the reason (its
rows not sent end cancelled), as a refused signature does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import structlog

from worker.cloud.outcomes import Outcome, OutcomeKind
from worker.cloud.tms import TmsAnswer
from worker.engine.batch import WatchedCall, act, read_first, record_settled, work_batch
from worker.engine.calls import line_for
from worker.engine.modes import status_for
from worker.engine.tmsline import TmsLine, tms_line_for
from worker.jobs import Api
from worker.limits.backoff import compute_backoff
from worker.limits.retrying import Sent, call_under_rate
from worker.model import ImageBatch, ResourceBatch

if TYPE_CHECKING:
    from worker.engine.chunk import ChunkRun

log = structlog.get_logger("tagsweep.worker")


# What TMS refused that IMS may still do (--api auto): an image's type or key, a whole call
# (400), or a permission the user holds for IMS and not for TMS (403, TMS.0006 aside).
_IMS_CAN_DO = (OutcomeKind.UNSUPPORTED, OutcomeKind.REJECTED, OutcomeKind.FORBIDDEN)


async def work_group(run: ChunkRun, group: ResourceBatch) -> None:
    """Work the group's rows that have no result yet."""
    images = [_unfinished(run, image) for image in group.images]
    images = [image for image in images if image.tags]
    if not images:
        return
    if await run.stop.stopped():
        for image in images:
            await run.record(image, await run.stop.cancelled(attempts=0))
        return
    line = await tms_line_for(run, group)
    if isinstance(line, str):
        await _without_tms(run, images, line)
        return
    if run.job.options.reads_first:
        images = await _read_all(run, images)
    by_keys: dict[tuple[str, ...], list[ImageBatch]] = {}
    for image in images:
        by_keys.setdefault(tuple(tag.key for tag in image.tags), []).append(image)
    for members in by_keys.values():
        await delete_through_tms(run, members, line)


def _unfinished(run: ChunkRun, image: ImageBatch) -> ImageBatch:
    tags = tuple(t for t in image.tags if not all(ref in run.rows.final for ref in t.refs))
    return replace(image, tags=tags)


async def _without_tms(run: ChunkRun, images: Sequence[ImageBatch], reason: str) -> None:
    """TMS cannot be used: IMS image by image under ``auto``; rows rejected under ``tms``."""
    auto = run.job.options.api is Api.AUTO
    if (run.job.job_id, reason) not in run.ctx.tms_refusals:
        run.ctx.tms_refusals.add((run.job.job_id, reason))
        log.warning("tms.unusable", reason=reason, instead="ims" if auto else "none")
    if auto:
        await asyncio.gather(*(work_batch(run, image) for image in images))
        return
    # Like a refused signature: nothing would go better for the rest of the job.
    await run.stop.abort(f"--api tms: {reason}")
    for image in images:
        await run.record(image, await run.stop.cancelled(attempts=0))


async def _read_all(run: ChunkRun, images: Sequence[ImageBatch]) -> list[ImageBatch]:
    """Read each image through IMS (the backup), record what the reads settle, and return
    each image cut down to the keys still to delete."""

    async def one(image: ImageBatch) -> ImageBatch | None:
        found = await read_first(run, image, line_for(run.ctx, image, run.job.options.endpoint))
        if found is None:
            return None
        read, decision = found
        await record_settled(run, image, read, decision)
        return replace(image, tags=decision.send) if decision.send else None

    cut = await asyncio.gather(*(one(image) for image in images))
    return [image for image in cut if image is not None]


async def delete_through_tms(run: ChunkRun, images: list[ImageBatch], line: TmsLine) -> None:
    """One TMS call for images losing the same keys (again for images throttled inside it,
    up to the attempt cap), each image's rows recorded with their own outcome."""
    options, round_ = run.job.options, 0
    while images:
        round_ += 1
        call = GroupCall(run, images, line)
        answer = await call_under_rate(
            line.limiter,
            call,
            policy=options,
            clock=run.ctx.clock,
            sleep=run.ctx.sleep,
            rng=run.ctx.rng,
        )
        if not isinstance(answer, Sent):
            for image in images:
                await run.record(image, await run.stop.cancelled(attempts=answer.attempts))
            return
        again = await _record_answer(
            run, images, answer, call.answer, last=round_ >= options.max_attempts
        )
        if again:
            delay_s = compute_backoff(
                round_, base_s=options.backoff_base_s, cap_s=options.backoff_cap_s, rng=run.ctx.rng
            )
            await run.ctx.sleep(delay_s)
        images = again


async def _record_answer(
    run: ChunkRun, images: list[ImageBatch], sent: Sent, answer: TmsAnswer | None, *, last: bool
) -> list[ImageBatch]:
    """Record each image's rows from the call's answer; return the images to send again
    (throttled inside a 200). Under ``auto``, images TMS refused go through IMS."""
    mode, auto = run.job.options.mode, run.job.options.api is Api.AUTO
    again, to_ims, first = [], [], True
    for image in images:
        outcome = answer.outcome_of(image.image_id) if answer else sent.outcome
        if (
            outcome.kind is OutcomeKind.THROTTLED
            and sent.outcome.kind is OutcomeKind.OK
            and not last
        ):
            again.append(image)
            continue
        if auto and outcome.kind in _IMS_CAN_DO:
            to_ims.append(image)
            continue
        status = status_for("delete", outcome, mode)
        await run.finish(
            image,
            replace(sent, outcome=outcome),
            "delete",
            [status] * len(image.tags),
            request=first,
        )
        first = False
    if to_ims:
        log.info("tms.refused", images=len(to_ims), instead="ims")
        await asyncio.gather(
            *(
                act(run, image, line_for(run.ctx, image, run.job.options.endpoint), "delete")
                for image in to_ims
            )
        )
    return again


class GroupCall(WatchedCall):
    """One TMS batch delete; its last answer kept (each image's outcome in it)."""

    def __init__(self, run: ChunkRun, images: list[ImageBatch], line: TmsLine) -> None:
        super().__init__(run, images[0], line.limiter, "delete")
        self.images = images
        self.line = line
        self.answer: TmsAnswer | None = None

    async def attempt(self) -> Outcome:
        image = self.images[0]
        self.answer = await self.line.client.batch_delete(
            image.project_id,
            self.line.resource_type,
            [image.image_id for image in self.images],
            [tag.key for tag in image.tags],
        )
        return self.answer.outcome
