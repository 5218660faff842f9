"""What delete, plan and undo decide from a read (``worker.engine.modes``), without I/O."""

from __future__ import annotations

from worker.cloud.outcomes import Outcome, OutcomeKind
from worker.engine.modes import Decision, decide, status_for
from worker.jobs import JobOptions, Mode
from worker.model import ImageBatch, RowStatus, TagRows

SAME, OTHER, GONE = TagRows("a", "1", (0,)), TagRows("b", "2", (1,)), TagRows("c", "3", (2,))
BATCH = ImageBatch("r", "p", "img", (SAME, OTHER, GONE))
# The image holds a=1 (as the CSV says), b=changed (another value), and no c.
CURRENT = {"a": "1", "b": "changed"}
KEPT = {0: "1", 1: "changed", 2: None}


def test_a_plan_gives_every_tag_what_a_delete_would_do() -> None:
    decision = decide(JobOptions(mode=Mode.PLAN), BATCH, CURRENT, KEPT)
    assert decision == Decision(
        planned=(RowStatus.WOULD_DELETE, RowStatus.VALUE_DIFFERS, RowStatus.ABSENT)
    )


def test_a_delete_with_match_values_leaves_other_values_alone() -> None:
    options = JobOptions(backup=True, match_values=True)
    decision = decide(options, BATCH, CURRENT, KEPT)
    assert decision.settled == ((RowStatus.VALUE_DIFFERS, (OTHER,)),)
    assert (decision.action, decision.send) == ("delete", (SAME, GONE))


def test_a_delete_with_backup_alone_sends_every_tag() -> None:
    decision = decide(JobOptions(backup=True), BATCH, CURRENT, KEPT)
    assert decision == Decision(send=BATCH.tags)


def test_an_undo_creates_only_absent_keys_and_never_overwrites_a_newer_value() -> None:
    decision = decide(JobOptions(mode=Mode.UNDO), BATCH, CURRENT, KEPT)
    assert decision.settled == (
        (RowStatus.RESTORED, (SAME,)),
        (RowStatus.KEPT_NEWER, (OTHER,)),
    )
    assert (decision.action, decision.send) == ("create", (GONE,))


def test_a_call_decides_every_row_by_its_outcome_and_the_mode() -> None:
    ok, missing = Outcome(OutcomeKind.OK, 204), Outcome(OutcomeKind.NOT_FOUND, 404)
    assert status_for("delete", ok, Mode.DELETE) is RowStatus.DELETED
    assert status_for("create", ok, Mode.UNDO) is RowStatus.RESTORED
    assert status_for("list", missing, Mode.PLAN) is RowStatus.IMAGE_NOT_FOUND
    assert status_for("delete", missing, Mode.DELETE) is RowStatus.NOT_FOUND
