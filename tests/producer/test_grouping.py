"""The compact entry of a grouped tag, and one group per image whatever its spelling."""

from __future__ import annotations

import uuid

from producer.grouping import SEP, ImageGroups, add_ref, split_entry
from producer.validation import IMAGE_ID_BATCH, all_image_ids, is_image_id

IMG = "67e17426-359e-49fb-aa12-0bd1756ec240"


def test_an_entry_keeps_its_refs_in_order_and_a_value_holding_the_separator() -> None:
    """Refs never hold the separator, so a value may: only the first one splits."""
    entry = add_ref(add_ref(f"12{SEP}a{SEP}b", 40), 41)
    assert split_entry(entry) == ((12, 40, 41), f"a{SEP}b")


def test_spellings_of_a_valid_id_share_the_group_of_its_canonical_form() -> None:
    """Trimmed and lower-cased, the spelling is the id: its rows meet the others in order."""
    groups = ImageGroups()
    groups.alias(f" {IMG.upper()} ")["k"] = "first"
    assert groups[IMG] == {"k": "first"}
    assert groups.alias(IMG.upper()) is groups[IMG]
    assert list(groups) == [IMG, f" {IMG.upper()} ", IMG.upper()]


def test_spellings_of_an_invalid_id_keep_their_own_groups() -> None:
    """Each is reported as written, so none is folded into another."""
    groups = ImageGroups()
    groups.alias(" Not-A-UUID ")["k"] = "v"
    assert groups["not-a-uuid"] == {}
    assert groups[" Not-A-UUID "] == {"k": "v"}


def test_image_ids_checked_at_once_agree_with_the_check_of_each() -> None:
    """``all_image_ids`` (the fast path of ``RowGrouper.finish``) says what ``is_image_id`` on
    each says: a spelling off by a character, its case, a space, a newline joining two ids or
    a batch boundary (``IMAGE_ID_BATCH``) gives no false yes."""
    ids = [str(uuid.UUID(int=n, version=4)) for n in range(IMAGE_ID_BATCH + 3)]
    cases = [
        [],
        [""],
        ids,
        ids[:IMAGE_ID_BATCH],
        [*ids, IMG.upper()],
        [*ids[:IMAGE_ID_BATCH], f" {IMG}"],
        [IMG, "x" * 8 + IMG[8:]],
        [IMG, IMG.replace("-", "0")],
        [f"{IMG}\n{IMG}", ""],
        [IMG[:35], IMG + "0"],
        [IMG, "é" + IMG[1:]],
    ]
    for case in cases:
        assert all_image_ids(case) is all(map(is_image_id, case)), case
