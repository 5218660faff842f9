"""From per-image groups to API requests: at most ``max_tags`` tags a request through IMS; and
for TMS (``--api tms``/``auto``) images grouped by (region, project, keys to delete), at most
``MAX_RESOURCES`` images and ``MAX_KEYS`` keys a call, so that a cleanup dropping the same keys
everywhere goes 20 images a call. Keys TMS does not take go through IMS, image by image.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace

from producer.collect import Collection
from worker.cloud.tmsrules import MAX_KEYS, MAX_RESOURCES, tms_takes_key
from worker.jobs import Api
from worker.model import Batch, ImageBatch, ResourceBatch

# No IMS page gives a per-request maximum; 20 is the current per-image tag limit, so a request
# of 20 is one that the API must accept (docs/ims-api.md).
DEFAULT_MAX_TAGS_PER_REQUEST = 20
# A TMS group: (region, project, the keys in order).
GroupKey = tuple[str, str, tuple[str, ...]]


def split_batch(image: ImageBatch, *, max_tags: int) -> list[ImageBatch]:
    """One image's tags as requests of at most ``max_tags`` tags each."""
    if len(image.tags) <= max_tags:
        return [image]
    return [
        replace(image, tags=image.tags[i : i + max_tags])
        for i in range(0, len(image.tags), max_tags)
    ]


def group_for_tms(images: Iterable[ImageBatch], *, max_tags: int) -> Iterator[Batch]:
    """TMS batches of the images' keys TMS takes (an image's keys sorted, cut in tens, so
    that images with the same keys meet), and IMS requests for the other keys. A group is
    given when full, the rest at the end: the same files always give the same batches."""
    open_groups: dict[GroupKey, list[ImageBatch]] = {}
    for image in images:
        taken = sorted((t for t in image.tags if tms_takes_key(t.key)), key=lambda t: t.key)
        rest = tuple(t for t in image.tags if not tms_takes_key(t.key))
        if rest:
            yield from split_batch(replace(image, tags=rest), max_tags=max_tags)
        for first in range(0, len(taken), MAX_KEYS):
            part = tuple(taken[first : first + MAX_KEYS])
            group = (image.region, image.project_id, tuple(t.key for t in part))
            members = open_groups.setdefault(group, [])
            members.append(replace(image, tags=part))
            if len(members) == MAX_RESOURCES:
                yield _resource_batch(group, open_groups.pop(group))
    for group, members in open_groups.items():
        yield _resource_batch(group, members)


def _resource_batch(group: GroupKey, members: list[ImageBatch]) -> ResourceBatch:
    region, project_id, keys = group
    return ResourceBatch(region, project_id, keys, tuple(members))


def iter_requests(collection: Collection, *, max_tags: int, api: Api = Api.V1) -> Iterator[Batch]:
    """Every request the collection needs, image by image (IMS) or grouped (TMS)."""
    if api.uses_tms:
        yield from group_for_tms(collection.iter_images(), max_tags=max_tags)
        return
    for image in collection.iter_images():
        yield from split_batch(image, max_tags=max_tags)


def count_requests(collection: Collection, *, max_tags: int) -> int:
    """How many IMS requests ``iter_requests`` would give, without building them."""
    return sum(
        -(-len(tags) // max_tags)
        for images in collection.scopes.values()
        for tags in images.values()
    )
