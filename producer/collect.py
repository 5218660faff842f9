"""The front of the pipeline: read every file (``producer.reading``), check its rows
(``producer.validation``) and group them per image (``producer.grouping``) into a ``Collection``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from producer.errors import InputError, RowError
from producer.grouping import RowGrouper, Scope, TagEntries, split_entry
from producer.reading import (
    FileSpan,
    FileSpans,
    csv_rows,
    ignored_warning,
    open_text,
    paused_gc,
    read_layout,
)
from worker.model import ImageBatch, TagRows


@dataclass
class Collection:
    """What a set of files holds once read: valid tags per image, invalid rows, warnings."""

    scopes: dict[Scope, dict[str, TagEntries]]
    spans: FileSpans
    errors: list[RowError]
    file_errors: list[InputError]
    warnings: list[str]
    duplicates: int

    @property
    def files(self) -> list[FileSpan]:
        return self.spans.spans

    @property
    def valid(self) -> int:
        """Distinct valid tags (exact duplicates merged)."""
        return sum(sum(map(len, images.values())) for images in self.scopes.values())

    @property
    def images(self) -> int:
        return sum(map(len, self.scopes.values()))

    @property
    def rows_read(self) -> int:
        return self.valid + self.duplicates + len(self.errors)

    def locate(self, ref: int) -> tuple[str, int]:
        """The (file, physical line) of a row ref."""
        return self.spans.locate(ref)

    def iter_images(self) -> Iterator[ImageBatch]:
        """Every image with its valid tags, in the order images were first seen."""
        for (region, project_id), images in self.scopes.items():
            for image_id, entries in images.items():
                tags = []
                for key, entry in entries.items():
                    refs, value = split_entry(entry)
                    tags.append(TagRows(key, value, refs))
                yield ImageBatch(region, project_id, image_id, tuple(tags))


def collect(
    files: list[str], *, default_project_id: str | None, default_region: str | None
) -> Collection:
    """Read and check every file, in order; a file that cannot be read is kept as a file error."""
    spans = FileSpans()
    grouper = RowGrouper(
        spans, default_project_id=default_project_id or "", default_region=default_region or ""
    )
    file_errors: list[InputError] = []
    warnings: list[str] = []
    for name in files:
        span, last_line = spans.open(name), 0
        try:
            with paused_gc(), open_text(name) as text:
                reader = csv_rows(text)
                layout = read_layout(reader, name)
                if layout.ignored:
                    warnings.append(ignored_warning(name, layout))
                last_line = grouper.add_rows(reader, layout, span)
        except InputError as exc:
            file_errors.append(exc)
        finally:
            spans.close(span, last_line)
    scopes = grouper.finish()
    return Collection(scopes, spans, grouper.errors, file_errors, warnings, grouper.duplicates)
