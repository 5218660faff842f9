"""From per-image groups to API requests: at most ``max_tags`` tags a request."""

from __future__ import annotations

from collections.abc import Iterator

from producer.collect import Collection
from worker.model import ImageBatch

# No IMS page gives a per-request maximum; 20 is the current per-image tag limit, so a request
# of 20 is one that the API must accept (docs/ims-api.md).
DEFAULT_MAX_TAGS_PER_REQUEST = 20


def split_batch(image: ImageBatch, *, max_tags: int) -> list[ImageBatch]:
    """One image's tags as requests of at most ``max_tags`` tags each."""
    if len(image.tags) <= max_tags:
        return [image]
    return [
        ImageBatch(image.region, image.project_id, image.image_id, image.tags[i : i + max_tags])
        for i in range(0, len(image.tags), max_tags)
    ]


def iter_requests(collection: Collection, *, max_tags: int) -> Iterator[ImageBatch]:
    """Every request the collection needs, image by image."""
    for image in collection.iter_images():
        yield from split_batch(image, max_tags=max_tags)


def count_requests(collection: Collection, *, max_tags: int) -> int:
    """How many requests ``iter_requests`` would give, without building them."""
    return sum(
        -(-len(tags) // max_tags)
        for images in collection.scopes.values()
        for tags in images.values()
    )
