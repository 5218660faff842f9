"""Batching for TMS: images grouped by (region, project, keys), 20 images and 10 keys a call,
keys TMS does not take sent through IMS image by image."""

from __future__ import annotations

import subprocess
import sys

from producer.batching import group_for_tms
from worker.model import ImageBatch, ResourceBatch, TagRows


def _image(n: int, *keys: str, project: str = "p") -> ImageBatch:
    tags = tuple(TagRows(key, f"v{n}", (n * 100 + i,)) for i, key in enumerate(keys))
    return ImageBatch("r", project, f"img-{n}", tags)


def test_a_cleanup_of_the_same_keys_everywhere_goes_twenty_images_a_call() -> None:
    images = [_image(n, "env", "owner") for n in range(45)]
    batches = list(group_for_tms(images, max_tags=20))
    assert [len(b.images) for b in batches if isinstance(b, ResourceBatch)] == [20, 20, 5]
    assert all(isinstance(b, ResourceBatch) and b.keys == ("env", "owner") for b in batches)
    assert [i for b in batches for i in b.images] == images  # type: ignore[union-attr]


def test_images_meet_by_project_and_exact_key_set_whatever_the_order_of_their_keys() -> None:
    images = [
        _image(0, "b", "a"),
        _image(1, "a", "b"),
        _image(2, "a"),
        _image(3, "a", "b", project="q"),
    ]
    batches = list(group_for_tms(images, max_tags=20))
    groups = {(b.project_id, b.keys): [i.image_id for i in b.images] for b in batches}  # type: ignore[union-attr]
    assert groups == {
        ("p", ("a", "b")): ["img-0", "img-1"],
        ("p", ("a",)): ["img-2"],
        ("q", ("a", "b")): ["img-3"],
    }
    # Each image's rows travel with their own key: sorting did not mix values and refs.
    first = next(b for b in batches if isinstance(b, ResourceBatch) and b.keys == ("a", "b"))
    assert first.images[0].tags == (TagRows("a", "v0", (1,)), TagRows("b", "v0", (0,)))


def test_more_than_ten_keys_are_cut_in_tens_and_refused_keys_go_through_ims() -> None:
    keys = [f"k{n:02d}" for n in range(12)]
    refused = ["x" * 37, "has.dot", "space key"]
    batches = list(group_for_tms([_image(0, *keys, *refused)], max_tags=2))
    tms = [b for b in batches if isinstance(b, ResourceBatch)]
    ims = [b for b in batches if isinstance(b, ImageBatch)]
    assert [b.keys for b in tms] == [tuple(keys[:10]), tuple(keys[10:])]
    assert [[t.key for t in b.tags] for b in ims] == [refused[:2], refused[2:]]


def test_the_same_images_always_give_the_same_batches() -> None:
    """A resubmission writes the same chunks over themselves."""
    images = [_image(n, *("ab"[: 1 + n % 2])) for n in range(50)]
    assert list(group_for_tms(images, max_tags=20)) == list(group_for_tms(images, max_tags=20))


def test_the_command_line_starts_without_importing_aiohttp() -> None:
    """Batching for TMS needs TMS's rules, not its client: importing aiohttp cost the command
    line about half a second at every start (status --watch printed too late)."""
    code = "import sys, producer.cli; print('aiohttp' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
