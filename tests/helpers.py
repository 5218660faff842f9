"""Small builders the tests share."""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterable
from pathlib import Path


def new_image_id() -> str:
    return str(uuid.uuid4())


def write_csv(path: Path, rows: Iterable[dict[str, str]], columns: list[str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path
