"""What each mode does with a batch, once the image's tags were read (jobs that read first:
--backup, plan, undo), and the status a call gives every row of a batch.

Each mode is one small function from what the read found to a ``Decision``; the batch code
(``worker.engine.batch``) carries it out. No I/O here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from worker.cloud.outcomes import Outcome, OutcomeKind
from worker.engine.calls import Action
from worker.jobs import JobOptions, Mode
from worker.model import ImageBatch, RowStatus, TagRows

# What the read kept per row (the first ref of each tag): the value found, None if absent.
Kept = Mapping[int, str | None]


@dataclass(frozen=True)
class Decision:
    """What a read decided for a batch's tags.

    ``planned``: every tag's status, the read being the batch's one request (a plan).
    Otherwise ``settled`` tags are recorded with the read's answer and no request of their
    own, and ``send`` tags go on to one ``action`` call.
    """

    planned: tuple[RowStatus, ...] | None = None
    settled: tuple[tuple[RowStatus, tuple[TagRows, ...]], ...] = ()
    action: Action = "delete"
    send: tuple[TagRows, ...] = ()


def planned(tag: TagRows, current: str | None) -> RowStatus:
    """What a delete would do to a tag, given the value the image holds for its key now."""
    if current is None:
        return RowStatus.ABSENT
    return RowStatus.WOULD_DELETE if current == tag.value else RowStatus.VALUE_DIFFERS


def decide_plan(batch: ImageBatch, current: Mapping[str, str], kept: Kept, _: bool) -> Decision:
    """A plan says what a delete would do, from the value kept for each tag."""
    return Decision(planned=tuple(planned(tag, kept[tag.refs[0]]) for tag in batch.tags))


def decide_delete(
    batch: ImageBatch, current: Mapping[str, str], kept: Kept, match_values: bool
) -> Decision:
    """Delete what the backup read allows: with --match-values, keys holding another value
    than the CSV's are left alone (value_differs) and not sent."""
    if not match_values:
        return Decision(send=batch.tags)
    send = tuple(t for t in batch.tags if kept[t.refs[0]] in (None, t.value))
    differs = tuple(t for t in batch.tags if kept[t.refs[0]] not in (None, t.value))
    return Decision(settled=((RowStatus.VALUE_DIFFERS, differs),), send=send)


def decide_undo(batch: ImageBatch, current: Mapping[str, str], kept: Kept, _: bool) -> Decision:
    """Undo: create the keys that are absent now; a key present again is never overwritten
    (kept_newer), and one already holding the backed-up value is restored."""
    missing = tuple(t for t in batch.tags if t.key not in current)
    same = tuple(t for t in batch.tags if current.get(t.key) == t.value)
    newer = tuple(t for t in batch.tags if t.key in current and current[t.key] != t.value)
    settled = ((RowStatus.RESTORED, same), (RowStatus.KEPT_NEWER, newer))
    return Decision(settled=settled, action="create", send=missing)


Decide = Callable[[ImageBatch, Mapping[str, str], Kept, bool], Decision]
AFTER_READ: dict[Mode, Decide] = {
    Mode.PLAN: decide_plan,
    Mode.UNDO: decide_undo,
    Mode.DELETE: decide_delete,
}


def decide(
    options: JobOptions, batch: ImageBatch, current: Mapping[str, str], kept: Kept
) -> Decision:
    """What the job's mode makes of a read (``current``: the image's tags now)."""
    return AFTER_READ[options.mode](batch, current, kept, options.match_values)


def status_for(action: Action, outcome: Outcome, mode: Mode) -> RowStatus:
    """Every row's status after a call that decides the batch as a whole."""
    if outcome.kind is OutcomeKind.OK:
        return RowStatus.RESTORED if action == "create" else RowStatus.DELETED
    if outcome.kind is OutcomeKind.NOT_FOUND and mode is Mode.PLAN:
        return RowStatus.IMAGE_NOT_FOUND
    return outcome.row_status
