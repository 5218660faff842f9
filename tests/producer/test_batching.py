"""Batching for TMS: images grouped by (region, project, keys), 20 images and 10 keys a call,
keys TMS does not take sent through IMS image by image."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from producer.batching import group_for_tms
from producer.collect import collect
from producer.jobspec import check_tms_regions
from worker.errors import ConfigError
from worker.jobs import KEY_ONLY, Api, JobOptions, Mode
from worker.model import ImageBatch, ResourceBatch, TagRows

IMAGE = "67e17426-359e-49fb-aa12-0bd1756ec240"


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


def test_a_tms_job_and_its_plan_say_a_key_goes_whatever_its_value() -> None:
    delete = JobOptions(api=Api.TMS)
    assert delete.describe() == f"delete (no backup), {KEY_ONLY}"
    assert "value_differs rows would go too" in JobOptions(api=Api.AUTO, mode=Mode.PLAN).describe()
    assert JobOptions(api=Api.V1, mode=Mode.PLAN).describe() == "plan (read-only)"
    # A plan reads and an undo re-creates through IMS, image by image, whatever --api.
    assert JobOptions(api=Api.TMS, mode=Mode.UNDO).sending_api is Api.V1


def test_a_tms_job_in_a_region_without_a_known_tms_endpoint_is_refused_in_one_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.csv"
    path.write_text(
        "image_id,key,value,region\n" + f"{IMAGE},env,a,la-north-2\n{IMAGE},o,a,cn-north-4\n"
    )
    collection = collect([str(path)], default_project_id="p", default_region=None)
    with pytest.raises(
        ConfigError,
        match=r"^--api tms: no TMS endpoint is known for region la-north-2; set --tms-endpoint",
    ):
        check_tms_regions(collection, JobOptions(api=Api.TMS))
    check_tms_regions(collection, JobOptions(api=Api.TMS, tms_endpoint="http://h"))
    check_tms_regions(collection, JobOptions(api=Api.V1))
