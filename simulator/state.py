"""The images the simulator holds and their tags, keyed by (project, image)."""

from __future__ import annotations

import csv
import gzip
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

ImageKey = tuple[str, str]


class SeedError(ValueError):
    """A seed CSV the simulator cannot take its images from."""


@dataclass
class ImageStore:
    """Tags per image, image names, and how often each image's tags were deleted (for tests)."""

    images: dict[ImageKey, dict[str, str]] = field(default_factory=dict)
    deletions: Counter[ImageKey] = field(default_factory=Counter)
    names: dict[ImageKey, str] = field(default_factory=dict)
    # Every project that holds an image, kept as images are added (a scan would cost a pass
    # over all images on every call that checks a project).
    projects: set[str] = field(default_factory=set)

    def add_image(
        self,
        project_id: str,
        image_id: str,
        tags: dict[str, str] | None = None,
        *,
        name: str | None = None,
    ) -> None:
        self.images.setdefault((project_id, image_id.lower()), {}).update(tags or {})
        self.projects.add(project_id)
        if name:
            self.names[(project_id, image_id.lower())] = name

    def name_of(self, project_id: str, image_id: str) -> str:
        """The image's name: the seed's ``name`` column, else ``image-`` and its id's first
        eight characters (IMS requires a name; seeds made for the delete APIs have none)."""
        key = (project_id, image_id.lower())
        return self.names.get(key) or f"image-{key[1][:8]}"

    def tags_of(self, project_id: str, image_id: str) -> dict[str, str] | None:
        return self.images.get((project_id, image_id.lower()))

    def delete(self, project_id: str, image_id: str, keys: Iterable[str]) -> None:
        """Remove keys whatever their value.

        Whether the real v1 batch delete checks the value is undocumented; the simulator removes
        by key, the reading that fits "a tag that is not there counts as deleted".
        """
        tags = self.images[(project_id, image_id.lower())]
        for key in keys:
            tags.pop(key, None)
        self.deletions[(project_id, image_id.lower())] += 1

    def load_seed(self, path: Path, *, default_project_id: str) -> int:
        """Add the images and tags of a CSV (image_id,key,value[,project_id][,name]); return
        rows read. A row with an empty key adds an image without that tag (an untagged image).
        Raises SeedError when the header has no image_id column or the file cannot be read
        (not UTF-8, malformed CSV, broken gzip), naming the line."""
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as raw:
            # Decoded line by line, so that a line that is not UTF-8 is named.
            reader = csv.DictReader(line.decode("utf-8-sig") for line in raw)
            try:
                return self._seed_rows(reader, path, default_project_id)
            except (UnicodeDecodeError, csv.Error, gzip.BadGzipFile, EOFError) as exc:
                reason = "not valid UTF-8" if isinstance(exc, UnicodeDecodeError) else str(exc)
                raise SeedError(f"{path}:{reader.line_num + 1}: {reason}") from None

    def _seed_rows(self, reader: csv.DictReader[str], path: Path, default_project_id: str) -> int:
        reader.fieldnames = [name.strip().lower() for name in reader.fieldnames or []]
        if "image_id" not in reader.fieldnames:
            raise SeedError(f"{path}: no image_id column")
        count = 0
        for row in reader:
            project = (row.get("project_id") or "").strip() or default_project_id
            image = (row.get("image_id") or "").strip()
            if not image:
                continue
            key = row.get("key") or ""
            tags = {key: row.get("value") or ""} if key else {}
            self.add_image(project, image, tags, name=(row.get("name") or "").strip())
            count += 1
        return count
