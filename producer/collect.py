"""Reading rows into per-image groups, checking every rule on the way.

This is the hot path of ``validate``, ``submit`` and ``run``: for a million-row file it is
most of the time. What keeps it fast and small (figures in bench/validate.py):
- one tight loop over ``csv.reader``, with no per-row function call on valid rows;
- per image, a dict of tag key -> one compact string ``"REF[,REF...]\\x1fVALUE"`` (tag keys
  interned), not an object per row: about 150 bytes a row instead of about 400 (a tuple
  ``(REF, VALUE)`` skips formatting the integer, yet measured slower: 4.6-5.0x the plain pass
  instead of 3.5-3.9x, at 264 MB peak instead of 173);
- image-id checks once per distinct image, at the end, instead of once per row;
- the cyclic garbage collector paused while reading: the loop only creates strings and dicts
  that live as long as the collection, and re-scanning them costs a third of the pass.

A row's REF is one integer, its physical line plus the line base of its file, so that a
result can be traced back to FILE:LINE (``Collection.locate``).
"""

from __future__ import annotations

import bisect
import csv
import gc
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from producer.errors import InputError, RowError
from producer.reader import GZIP_ERRORS, Layout, open_text, read_layout
from producer.validation import image_problem, is_image_id, normalise_image_id, tag_problem
from worker.model import ImageBatch, TagRows

if TYPE_CHECKING:
    from _csv import Reader as CsvReader

SEP = "\x1f"
MAX_LINE = 1 << 20
Scope = tuple[str, str]  # (region, project_id)
TagEntries = dict[str, str]  # tag key -> "REF[,REF...]\x1fVALUE"


@dataclass(frozen=True, slots=True)
class FileSpan:
    """An input file and the base added to its line numbers to make row refs."""

    name: str
    base: int


def split_entry(entry: str) -> tuple[tuple[int, ...], str]:
    """``"12,40\\x1fprod"`` -> ((12, 40), "prod")."""
    refs, _, value = entry.partition(SEP)
    return tuple(int(ref) for ref in refs.split(",")), value


@dataclass
class Collection:
    """What a set of files holds once read: valid tags per image, invalid rows, warnings."""

    scopes: dict[Scope, dict[str, TagEntries]]
    files: list[FileSpan]
    errors: list[RowError]
    file_errors: list[InputError]
    warnings: list[str]
    duplicates: int
    _bases: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._bases = [span.base for span in self.files]

    @property
    def valid(self) -> int:
        """Distinct valid tags (exact duplicates merged)."""
        return sum(len(tags) for images in self.scopes.values() for tags in images.values())

    @property
    def images(self) -> int:
        return sum(len(images) for images in self.scopes.values())

    @property
    def rows_read(self) -> int:
        return self.valid + self.duplicates + len(self.errors)

    def locate(self, ref: int) -> tuple[str, int]:
        """The (file, physical line) of a row ref."""
        index = bisect.bisect_right(self._bases, ref) - 1
        span = self.files[index]
        return span.name, ref - span.base

    def iter_images(self) -> Iterator[ImageBatch]:
        """Every image with its valid tags, in the order images were first seen."""
        for (region, project_id), images in self.scopes.items():
            for image_id, entries in images.items():
                tags = []
                for key, entry in entries.items():
                    refs, value = split_entry(entry)
                    tags.append(TagRows(key, value, refs))
                yield ImageBatch(region, project_id, image_id, tuple(tags))


class RowCollector:
    """Reads files one by one into per-image groups; ``finish()`` gives the ``Collection``."""

    def __init__(self, *, default_project_id: str | None, default_region: str | None) -> None:
        self._default_project = default_project_id or ""
        self._default_region = default_region or ""
        self._scopes: dict[Scope, defaultdict[str, TagEntries]] = {}
        self._keys: dict[str, str] = {}
        self._files: list[FileSpan] = []
        self._errors: list[RowError] = []
        self._file_errors: list[InputError] = []
        self._warnings: list[str] = []
        self._next_base = 0
        self._duplicates = 0

    def read(self, name: str) -> None:
        """Read one file; a file that cannot be read is kept as a file error."""
        span = FileSpan(name, self._next_base)
        self._files.append(span)
        last_line = 0
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            with open_text(name) as text:
                # Lines are read at most MAX_LINE characters at a time, so that one huge line
                # cannot fill the memory; its pieces come out as malformed rows (each counted as a
                # line). readline through iter() stays in C: a generator here costs 10%.
                reader = csv.reader(iter(partial(text.readline, MAX_LINE), ""), strict=True)
                layout = read_layout(reader, name)
                if layout.ignored:
                    shown = ", ".join(layout.ignored[:10])
                    more = len(layout.ignored) - 10
                    shown += f" and {more} more" if more > 0 else ""
                    self._warnings.append(f"{name}:1: column(s) {shown} not used; ignored")
                last_line = self._read_rows(reader, layout, span)
        except InputError as exc:
            self._file_errors.append(exc)
        finally:
            if gc_was_enabled:
                gc.enable()
            self._next_base = span.base + max(last_line, 1) + 1

    def _read_rows(  # noqa: C901 - the hot loop is inlined on purpose (module docstring)
        self, reader: CsvReader, layout: Layout, span: FileSpan
    ) -> int:
        """The hot loop; returns the last physical line read."""
        width, i_image, i_key, i_value = layout.width, layout.image_id, layout.key, layout.value
        # Rows name their scope, or lack a default for it: look it up (and check it) per row.
        scoped = (
            layout.project_id >= 0
            or layout.region >= 0
            or not (self._default_project and self._default_region)
        )
        images = self._scope(self._default_region, self._default_project)
        keys, base, end = self._keys, span.base, 1
        while True:
            try:
                for row in reader:
                    start, end = end + 1, reader.line_num
                    if len(row) != width:
                        if row:
                            self._reject(
                                span,
                                start,
                                f"{len(row)} fields where the header has {width}",
                                row,
                                layout,
                            )
                        continue
                    key = row[i_key]
                    value = row[i_value] if i_value >= 0 else ""
                    if (
                        not key
                        or len(key) > 127
                        or len(value) > 255
                        or not (key.isascii() and value.isascii())
                    ):
                        problem = tag_problem(key, value)
                        if problem:
                            self._reject(span, start, problem, row, layout)
                            continue
                    if scoped:
                        found = self._scope_of(row, layout)
                        if isinstance(found, str):
                            self._reject(span, start, found, row, layout)
                            continue
                        images = found
                    entry = f"{base + start}\x1f{value}"  # SEP, spelled out: no global lookup
                    tags = images[row[i_image]]
                    earlier = tags.setdefault(keys.setdefault(key, key), entry)
                    if earlier is not entry:
                        self._repeat(tags, key, earlier, value, base + start, span, row, layout)
                return int(reader.line_num)
            except csv.Error as exc:
                # The record that failed started right after the last good one ended.
                self._errors.append(RowError(span.name, end + 1, f"malformed CSV: {exc}"))
                end = reader.line_num
            except GZIP_ERRORS as exc:
                raise InputError(
                    span.name, f"truncated or corrupt gzip ({exc})", line=end
                ) from None

    def _scope(self, region: str, project_id: str) -> defaultdict[str, TagEntries]:
        images = self._scopes.get((region, project_id))
        if images is None:
            images = self._scopes[(region, project_id)] = defaultdict(dict)
        return images

    def _scope_of(self, row: list[str], layout: Layout) -> defaultdict[str, TagEntries] | str:
        region = row[layout.region].strip() if layout.region >= 0 else ""
        project = row[layout.project_id].strip() if layout.project_id >= 0 else ""
        region, project = region or self._default_region, project or self._default_project
        if not project:
            return (
                "no project_id in the row and no default "
                "(--project-id or HUAWEICLOUD_SDK_PROJECT_ID)"
            )
        if not region:
            return "no region in the row and no default (--region or TAGSWEEP_REGION)"
        return self._scope(region, project)

    def _repeat(
        self,
        tags: TagEntries,
        key: str,
        earlier: str,
        value: str,
        ref: int,
        span: FileSpan,
        row: list[str],
        layout: Layout,
    ) -> None:
        """A key seen before for this image: merge an exact duplicate, reject a conflict."""
        refs, _, first_value = earlier.partition(SEP)
        if first_value == value:
            tags[key] = f"{refs},{ref}{SEP}{value}"
            self._duplicates += 1
            return
        first_file, first_line = self._locate(int(refs.split(",")[0]))
        self._reject(
            span, ref - span.base, _conflict(key, first_value, first_file, first_line), row, layout
        )

    def _locate(self, ref: int) -> tuple[str, int]:
        span = next(s for s in reversed(self._files) if s.base <= ref)
        return span.name, ref - span.base

    def _reject(
        self, span: FileSpan, line: int, reason: str, row: list[str], layout: Layout
    ) -> None:
        self._errors.append(RowError(span.name, line, reason, self._columns(row, layout)))

    def _columns(self, row: list[str], layout: Layout) -> tuple[str, str, str, str, str]:
        """The row's image_id, key, value, project_id and region, defaults filled in."""

        def pick(index: int) -> str:
            return row[index] if 0 <= index < len(row) else ""

        return (
            pick(layout.image_id),
            pick(layout.key),
            pick(layout.value),
            pick(layout.project_id).strip() or self._default_project,
            pick(layout.region).strip() or self._default_region,
        )

    def finish(self) -> Collection:
        """Check each distinct image id, and merge the spellings of one image (case, spaces)."""
        scopes: dict[Scope, dict[str, TagEntries]] = {}
        for scope, images in self._scopes.items():
            images.default_factory = None  # from now on a missing image is an error, not a new one
            # Fast path: canonical, valid ids; only the others are looked at one by one.
            odd = [raw_id for raw_id in images if not is_image_id(raw_id)]
            spellings: dict[str, list[TagEntries]] = {}
            for raw_id in odd:
                entries = images.pop(raw_id)
                image_id = normalise_image_id(raw_id)
                problem = image_problem(raw_id, image_id)
                if problem:
                    self._reject_group(raw_id, scope, entries, problem)
                else:
                    spellings.setdefault(image_id, []).append(entries)
            for image_id, parts in spellings.items():
                if image_id in images:
                    parts.append(images[image_id])
                images[image_id] = self._merge(parts, image_id, scope)
            if images:
                scopes[scope] = images
        order = {span.name: index for index, span in enumerate(self._files)}
        self._errors.sort(key=lambda error: (order[error.file], error.line))
        return Collection(
            scopes, self._files, self._errors, self._file_errors, self._warnings, self._duplicates
        )

    def _reject_group(self, raw_id: str, scope: Scope, entries: TagEntries, problem: str) -> None:
        region, project_id = scope
        for key, entry in entries.items():
            refs, value = split_entry(entry)
            self._duplicates -= len(refs) - 1
            for ref in refs:
                name, line = self._locate(ref)
                columns = (raw_id, key, value, project_id, region)
                self._errors.append(RowError(name, line, problem, columns))

    def _merge(self, parts: list[TagEntries], image_id: str, scope: Scope) -> TagEntries:
        """Fold the spellings of one image id (case, spaces) into one, in row order (rare)."""
        region, project_id = scope
        self._duplicates -= sum(_duplicates_in(entries) for entries in parts)
        rows = sorted(
            (ref, key, value)
            for entries in parts
            for key, entry in entries.items()
            for ref, value in [(r, split_entry(entry)[1]) for r in split_entry(entry)[0]]
        )
        merged: TagEntries = {}
        for ref, key, value in rows:
            earlier = merged.get(key)
            if earlier is None:
                merged[key] = f"{ref}{SEP}{value}"
                continue
            refs, _, first_value = earlier.partition(SEP)
            if first_value == value:
                merged[key] = f"{refs},{ref}{SEP}{value}"
                continue
            name, line = self._locate(ref)
            first_file, first_line = self._locate(int(refs.split(",")[0]))
            columns = (image_id, key, value, project_id, region)
            self._errors.append(
                RowError(name, line, _conflict(key, first_value, first_file, first_line), columns)
            )
        self._duplicates += _duplicates_in(merged)
        return merged


def _duplicates_in(entries: TagEntries) -> int:
    """Rows merged into another identical row: one per comma in the refs part."""
    return sum(entry.count(",", 0, entry.index(SEP)) for entry in entries.values())


def _conflict(key: str, first_value: str, first_file: str, first_line: int) -> str:
    return (
        f"key {key!r} was already given for this image with another value "
        f"({first_value[:40]!r} at {first_file}:{first_line}); the first stands"
    )


def collect(
    files: list[str], *, default_project_id: str | None, default_region: str | None
) -> Collection:
    """Read and check every file, in order."""
    collector = RowCollector(default_project_id=default_project_id, default_region=default_region)
    for name in files:
        collector.read(name)
    return collector.finish()
