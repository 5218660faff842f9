"""What the peer scripts share: reading the CSV into per-image batches, and the summary line."""

from __future__ import annotations

import csv
import json
from collections import defaultdict


def read_images(path: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """(image_id, [(key, value), ...]) per image, as an ops script would group them."""
    images: dict[str, list[tuple[str, str]]] = defaultdict(list)
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            images[row["image_id"]].append((row["key"], row.get("value") or ""))
    return list(images.items())


def print_summary(*, images: int, failed_rows: int, failed_images: int) -> None:
    """One JSON line on stdout for the runner."""
    print(
        json.dumps({"images": images, "failed_rows": failed_rows, "failed_images": failed_images})
    )
