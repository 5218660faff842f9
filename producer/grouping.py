"""Checked rows into per-image groups, and the compact encoding of a group's tags.

This is the hot path of ``submit`` and ``run``, and of ``validate`` when its quick path
(``producer.tally``) does not take the files: for a million-row file it is most of the time.
What keeps it fast and small (figures in bench/validate.py):
- one tight loop over ``csv.reader``, with no per-row function call on valid rows (the rules
  of ``producer.validation`` are tested inline and called only for rows that may break one;
  moving the entry's f-string into a function cost 8%, ``"{}\\x1f{}".format`` 4-7%);
- per image, a dict of tag key -> one compact string ``"REF[,REF...]\\x1fVALUE"`` (tag keys
  interned), not an object per row: about 150 bytes a row instead of about 400 (a tuple
  ``(REF, VALUE)`` skips formatting the integer, yet measured slower: 4.6-5.0x the plain pass
  instead of 3.5-3.9x, at 264 MB peak instead of 173);
- a row's key looked up in the interned keys, which hold only the keys of valid rows: a key
  found there is valid, and only the value is tested (length, ASCII);
- image-id checks once per distinct image, at the end, instead of once per row, 4,096 ids at a
  time (``validation.all_image_ids``: 250,000 ids in about 15 ms instead of 100 ms for a regex
  match each); the other spellings of an id (case, spaces) are aliased to its group once, at
  first sight;
- the cyclic garbage collector paused while reading: the loop only creates strings and dicts
  that live as long as the collection, and re-scanning them costs a third of the pass.

Where the rest goes (1,000,000 rows over 250,000 images, this 2-core VM, its other core busy):
the csv pass 0.6 s, the checks and the entry 0.45 s, the lookup of the image's group 0.7-1.0 s
(random access into every image's id, dict and keys), the insert 0.35 s: about 4.2x the plain
pass (``tagsweep validate - < FILE`` reads stdin, so it takes this path). The bytecode is not
what bounds it: measured and dropped were rows taken in chunks and checked and grouped through
``map``/``zip`` in C (no faster), a string per image instead of a dict (7% faster, another
encoding for every reader of a group), and rows partitioned by image so that each part's dict
stays in cache (45% slower).

A row's REF is one integer, its physical line plus the line base of its file, so that a
result can be traced back to FILE:LINE (``producer.reading.FileSpans.locate``).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from itertools import filterfalse
from typing import TYPE_CHECKING

from producer.errors import RowError, sort_in_file_order
from producer.reading import GZIP_ERRORS, FileSpan, FileSpans, Layout, corrupt_gzip
from producer.validation import (
    IMAGE_ID,
    MAX_VALUE_LEN,
    all_image_ids,
    conflict_problem,
    image_problem,
    is_image_id,
    normalise_image_id,
    scope_problem,
    tag_problem,
    width_problem,
)

if TYPE_CHECKING:
    from _csv import Reader as CsvReader

# Every encode and decode of an entry is in this module; the hot loop spells SEP out.
SEP = "\x1f"
Scope = tuple[str, str]  # (region, project_id)
TagEntries = dict[str, str]  # tag key -> "REF[,REF...]\x1fVALUE"


def split_entry(entry: str) -> tuple[tuple[int, ...], str]:
    """``"12,40\\x1fprod"`` -> ((12, 40), "prod")."""
    refs, _, value = entry.partition(SEP)
    return tuple(int(ref) for ref in refs.split(",")), value


def add_ref(entry: str, ref: int) -> str:
    """``"12\\x1fprod"``, 40 -> ``"12,40\\x1fprod"``: one more row asked for the same tag."""
    refs, _, value = entry.partition(SEP)
    return f"{refs},{ref}{SEP}{value}"


class ImageGroups(defaultdict[str, TagEntries]):
    """Image id as read -> its tags, in one scope; the spellings of a valid id share a group.

    A spelling seen for the first time gets an empty group from the C factory; the hot loop
    then calls ``alias`` only when that spelling is not its own canonical form (trimmed,
    lower-case), so that its rows meet the others in row order and a repeat or a conflict is
    judged against the true first row. A ``__missing__`` written in Python did this with a
    call per new image (250,000 in bench/validate's file), and made every lookup that of a
    dict subclass with a Python hook; the test in the loop is two C calls per new image.
    """

    def __init__(self) -> None:
        super().__init__(dict)

    def alias(self, raw_id: str) -> TagEntries:
        """The group of a spelling seen for the first time: its canonical id's when it
        trims and lower-cases to a valid id, else its own."""
        image_id = normalise_image_id(raw_id)
        if image_id == raw_id or not is_image_id(image_id):
            return self[raw_id]
        self.pop(raw_id, None)  # the factory's empty group, made a moment ago
        entries = self[raw_id] = self[image_id]
        return entries


class RowGrouper:
    """Checks rows, file after file, into per-image groups; ``finish`` checks the image ids."""

    def __init__(self, spans: FileSpans, *, default_project_id: str, default_region: str) -> None:
        self._spans = spans
        self._default_project = default_project_id
        self._default_region = default_region
        self._scopes: dict[Scope, ImageGroups] = {}
        # The key of every valid row, interned: a key found here is valid (the hot loop then
        # checks only the value).
        self._keys: dict[str, str] = {}
        self.errors: list[RowError] = []
        self.duplicates = 0

    def add_rows(self, reader: CsvReader, layout: Layout, span: FileSpan) -> int:  # noqa: C901
        """The hot loop, inlined on purpose (module docstring); returns the last line read."""
        width, i_image, i_key, i_value = layout.width, layout.image_id, layout.key, layout.value
        keys, base, top, after = self._keys, span.base, MAX_VALUE_LEN, span.base + 1
        scoped = self._scoped_rows(layout)
        images = self._scope(self._default_region, self._default_project)
        next_ref = after + 1  # the line after the last one read, plus base
        while True:
            try:
                for row in reader:
                    row_ref, next_ref = next_ref, reader.line_num + after
                    if len(row) != width:
                        self._reject_width(span, row_ref - base, row, layout)
                        continue
                    key, value = row[i_key], (row[i_value] if i_value >= 0 else "")
                    if (tag := keys.get(key)) is None or len(value) > top or not value.isascii():
                        problem = tag_problem(key, value)
                        if problem:
                            self._reject(span, row_ref - base, problem, row, layout)
                            continue
                        tag = keys.setdefault(key, key)
                    if scoped:
                        found = self._scope_of(row, layout)
                        if isinstance(found, str):
                            self._reject(span, row_ref - base, found, row, layout)
                            continue
                        images = found
                    entry = f"{row_ref}\x1f{value}"  # SEP, spelled out: no global lookup
                    tags = images[image_id := row[i_image]]
                    if not tags and image_id.strip().lower() != image_id:  # a new spelling
                        tags = images.alias(image_id)
                    if tags.setdefault(tag, entry) is not entry:
                        self._repeat(tags, tag, value, row_ref, span, row, layout)
                return int(reader.line_num)
            except (csv.Error, *GZIP_ERRORS) as exc:
                next_ref = self._malformed(exc, span, next_ref - after, reader.line_num) + after

    def _malformed(self, exc: Exception, span: FileSpan, end: int, line_num: int) -> int:
        """A record csv cannot parse is one invalid row; reading goes on after it. A broken
        gzip stream ends the file (``InputError``)."""
        if not isinstance(exc, csv.Error):
            raise corrupt_gzip(span.name, exc, line=end) from None
        # The record that failed started right after the last good one ended.
        self.errors.append(RowError(span.name, end + 1, f"malformed CSV: {exc}"))
        return line_num

    def _scoped_rows(self, layout: Layout) -> bool:
        """Whether rows name their scope, or lack a default: then looked up (checked) per row."""
        return (
            layout.project_id >= 0
            or layout.region >= 0
            or not (self._default_project and self._default_region)
        )

    def _scope(self, region: str, project_id: str) -> ImageGroups:
        images = self._scopes.get((region, project_id))
        if images is None:
            images = self._scopes[(region, project_id)] = ImageGroups()
        return images

    def _scope_of(self, row: list[str], layout: Layout) -> ImageGroups | str:
        region = row[layout.region].strip() if layout.region >= 0 else ""
        project = row[layout.project_id].strip() if layout.project_id >= 0 else ""
        region, project = region or self._default_region, project or self._default_project
        return scope_problem(project, region) or self._scope(region, project)

    def _repeat(
        self,
        tags: TagEntries,
        key: str,
        value: str,
        ref: int,
        span: FileSpan,
        row: list[str],
        layout: Layout,
    ) -> None:
        """A key seen before for this image: merge an exact duplicate, reject a conflict."""
        earlier = tags[key]
        first_refs, first_value = split_entry(earlier)
        if first_value == value:
            tags[key] = add_ref(earlier, ref)
            self.duplicates += 1
            return
        problem = conflict_problem(key, first_value, self._spans.locate(first_refs[0]))
        self._reject(span, ref - span.base, problem, row, layout)

    def _reject_width(self, span: FileSpan, line: int, row: list[str], layout: Layout) -> None:
        if row:  # else a blank line: not a record
            self._reject(span, line, width_problem(len(row), layout.width), row, layout)

    def _reject(
        self, span: FileSpan, line: int, reason: str, row: list[str], layout: Layout
    ) -> None:
        image_id, key, value, project_id, region = layout.fields(row)
        project_id, region = project_id or self._default_project, region or self._default_region
        fields = (image_id, key, value, project_id, region)
        self.errors.append(RowError(span.name, line, reason, fields))

    def finish(self) -> dict[Scope, dict[str, TagEntries]]:
        """Check each distinct image id and drop the other spellings' aliases; sort the errors."""
        scopes: dict[Scope, dict[str, TagEntries]] = {}
        for scope, images in self._scopes.items():
            # Fast path: canonical, valid ids, all checked at once; else the ones that are not
            # are looked at one by one.
            others = [] if all_image_ids(images) else list(filterfalse(IMAGE_ID.match, images))
            for raw_id in others:
                entries = images.pop(raw_id)
                problem = image_problem(raw_id, normalise_image_id(raw_id))
                if problem:  # else an alias of a valid id's group, which holds its rows
                    self._reject_group(raw_id, scope, entries, problem)
            if images:
                images.default_factory = None  # from now on a missing image is an error
                scopes[scope] = images
        sort_in_file_order(self.errors, [span.name for span in self._spans.spans])
        return scopes

    def _reject_group(self, raw_id: str, scope: Scope, entries: TagEntries, problem: str) -> None:
        region, project_id = scope
        for key, entry in entries.items():
            refs, value = split_entry(entry)
            self.duplicates -= len(refs) - 1
            for ref in refs:
                name, line = self._spans.locate(ref)
                self.errors.append(
                    RowError(name, line, problem, (raw_id, key, value, project_id, region))
                )
