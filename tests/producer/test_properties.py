"""Property tests: generated files and raw bytes never crash the reader, and every data row is
counted exactly once (valid, duplicate or invalid) at its true physical line."""

from __future__ import annotations

import csv
import io
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from producer.batching import iter_requests
from producer.collect import collect

POOL = [str(uuid.UUID(int=i * 7919 + 1, version=4)) for i in range(6)]
# Mostly valid ids, some other spellings of them, a few invalid ones.
IMAGE_IDS = st.sampled_from(
    POOL * 4
    + [POOL[0].upper(), f" {POOL[1]} ", POOL[2].upper()]
    + ["not-a-uuid", "", "{" + POOL[0] + "}"]
)
KEYS = st.sampled_from(["env", "owner", "k,1", 'q"k', "ünï", "", "k" * 128, "k" * 127])
VALUES = st.sampled_from(
    ["", "prod", "dev", "a,b", 'say "x"', "two\nlines", "日本", " pad ", "v" * 256, "v" * 255]
)
SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@dataclass
class Generated:
    text: str
    lines: list[int]  # physical start line of each data record
    records: list[list[str]]


@st.composite
def csv_files(draw: st.DrawFn) -> Generated:
    with_project = draw(st.booleans())
    header = ["image_id", "key", "value"] + (["project_id"] if with_project else [])
    terminator = draw(st.sampled_from(["\n", "\r\n"]))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=terminator)
    if draw(st.booleans()):
        out.write("\ufeff")
    writer.writerow(header)
    line, lines, records = 2, [], []
    for _ in range(draw(st.integers(0, 40))):
        if draw(st.integers(0, 9)) == 0:
            out.write(terminator)  # a blank line: not a record
            line += 1
            continue
        record = [draw(IMAGE_IDS), draw(KEYS), draw(VALUES)]
        if with_project:
            record.append(draw(st.sampled_from(["", "p1", "p2"])))
        if draw(st.integers(0, 14)) == 0:
            record.append("surplus")
        before = out.tell()
        writer.writerow(record)
        lines.append(line)
        records.append(record)
        line += out.getvalue()[before:].count("\n")
    return Generated(out.getvalue(), lines, records)


def expected(generated: Generated, width: int) -> tuple[set[int], set[int], set[int]]:
    """The rules, restated independently: (valid, duplicate, invalid) start lines."""
    valid, duplicate, invalid = set(), set(), set()
    first: dict[tuple[str, str, str], str] = {}
    for line, record in zip(generated.lines, generated.records, strict=True):
        if len(record) != width:
            invalid.add(line)
            continue
        image, key, value = record[0].strip().lower(), record[1], record[2]
        project = (record[3] if width == 4 else "") or "default-project"
        try:
            ok_image = str(uuid.UUID(image)) == image
        except ValueError:
            ok_image = False
        if not ok_image or not key or len(key) > 127 or len(value) > 255:
            invalid.add(line)
        elif (project, image, key) not in first:
            first[(project, image, key)] = value
            valid.add(line)
        elif first[(project, image, key)] == value:
            duplicate.add(line)
        else:
            invalid.add(line)
    return valid, duplicate, invalid


@SETTINGS
@given(csv_files(), st.sampled_from([1, 2, 20]))
def test_every_row_is_counted_once_at_its_line_and_lands_in_one_request(
    generated: Generated, max_tags: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gen.csv"
        path.write_text(generated.text, encoding="utf-8", newline="")
        collection = collect([str(path)], default_project_id="default-project", default_region="r")
    width = 4 if "project_id" in generated.text.splitlines()[0] else 3
    valid, duplicate, invalid = expected(generated, width)
    assert collection.file_errors == []
    assert collection.rows_read == len(generated.records)
    assert {error.line for error in collection.errors} == invalid
    assert len(collection.errors) == len(invalid)
    seen: list[int] = []
    for request in iter_requests(collection, max_tags=max_tags):
        assert 1 <= len(request.tags) <= max_tags
        for tag in request.tags:
            seen.extend(tag.refs)
            first_line = collection.locate(tag.refs[0])[1]
            record = generated.records[generated.lines.index(first_line)]
            assert (tag.key, tag.value) == (record[1], record[2])
    lines = [collection.locate(ref)[1] for ref in seen]
    assert sorted(lines) == sorted(valid | duplicate)
    assert (collection.valid, collection.duplicates) == (len(valid), len(duplicate))


@SETTINGS
@given(
    st.sampled_from([b"", b"image_id,key,value\n", b"\xef\xbb\xbfImage_Id,KEY\r\n"]),
    st.binary(max_size=400),
)
def test_raw_bytes_never_raise_and_errors_point_inside_the_file(head: bytes, body: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "raw.csv"
        path.write_bytes(head + body)
        collection = collect([str(path)], default_project_id="p", default_region="r")
    physical_lines = len((head + body).splitlines()) + 1
    assert all(2 <= error.line <= physical_lines for error in collection.errors)
    assert collection.rows_read == collection.valid + collection.duplicates + len(collection.errors)
    assert len(collection.file_errors) <= 1
    if collection.file_errors:
        assert collection.rows_read == 0 or "gzip" in str(collection.file_errors[0])
