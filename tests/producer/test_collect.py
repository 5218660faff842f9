"""Reading and checking CSVs: every rule of DESIGN.md's "CSV input", with exact line numbers."""

from __future__ import annotations

import gzip
import io
import sys
from pathlib import Path

import pytest

from producer.batching import count_requests, iter_requests
from producer.collect import Collection, collect
from tests.helpers import new_image_id

IMG_A = "67e17426-359e-49fb-aa12-0bd1756ec240"
IMG_B = "0b6c8a3e-5f3e-4d43-9a52-3e2f6a9d1c01"


def collect_text(
    tmp_path: Path,
    text: str | bytes,
    name: str = "in.csv",
    *,
    default_project_id: str = "proj",
    default_region: str = "reg",
) -> Collection:
    path = tmp_path / name
    if isinstance(text, str):
        text = text.encode()
    path.write_bytes(gzip.compress(text) if name.endswith(".gz") else text)
    return collect(
        [str(path)], default_project_id=default_project_id, default_region=default_region
    )


def messages(collection: Collection) -> list[str]:
    return [str(error) for error in collection.file_errors + collection.errors]


def tags_of(collection: Collection, image_id: str) -> dict[str, tuple[str, tuple[int, ...]]]:
    for image in collection.iter_images():
        if image.image_id == image_id:
            return {tag.key: (tag.value, tag.refs) for tag in image.tags}
    return {}


def test_a_plain_file_groups_rows_per_image_whatever_their_order(tmp_path: Path) -> None:
    text = f"image_id,key,value\n{IMG_A},env,prod\n{IMG_B},env,dev\n{IMG_A},owner,ops\n"
    collection = collect_text(tmp_path, text)
    assert messages(collection) == []
    assert (collection.rows_read, collection.valid, collection.images) == (3, 3, 2)
    assert {k: v for k, (v, _) in tags_of(collection, IMG_A).items()} == {
        "env": "prod",
        "owner": "ops",
    }


def test_bom_crlf_quoted_fields_and_case_insensitive_columns(tmp_path: Path) -> None:
    text = f'\ufeffVALUE,Image_ID,KEY\r\n"a,b",{IMG_A},k1\r\n"say ""hi""",{IMG_A},k2\r\n'
    collection = collect_text(tmp_path, text)
    assert messages(collection) == []
    assert {k: v for k, (v, _) in tags_of(collection, IMG_A).items()} == {
        "k1": "a,b",
        "k2": 'say "hi"',
    }


def test_a_value_spanning_lines_is_reported_where_its_record_starts(tmp_path: Path) -> None:
    text = f'image_id,key,value\n{IMG_A},k1,"one\ntwo\nthree"\n{IMG_A},,x\n'
    collection = collect_text(tmp_path, text)
    assert tags_of(collection, IMG_A)["k1"][0] == "one\ntwo\nthree"
    assert messages(collection) == [f"{tmp_path / 'in.csv'}:5: the key is empty"]


def test_missing_value_column_means_empty_values(tmp_path: Path) -> None:
    collection = collect_text(tmp_path, f"image_id,key\n{IMG_A},k1\n")
    assert tags_of(collection, IMG_A) == {"k1": ("", (2,))}


def test_each_invalid_row_is_reported_with_file_line_and_reason(tmp_path: Path) -> None:
    text = "\n".join(
        [
            "image_id,key,value",
            f"{IMG_A},env,prod",  # 2 ok
            "not-a-uuid,env,x",  # 3
            f"{IMG_A},,x",  # 4
            f"{IMG_A},{'k' * 128},x",  # 5
            f"{IMG_A},long,{'v' * 256}",  # 6
            f"{IMG_A},env,other",  # 7 conflicts with line 2
            f"{IMG_A},env,prod",  # 8 exact duplicate of line 2
            f"{IMG_A},a,b,c",  # 9 too many fields
            f"{IMG_A},{'k' * 127},{'v' * 255}",  # 10 ok: the limits themselves
        ]
    )
    collection = collect_text(tmp_path, text + "\n")
    name = tmp_path / "in.csv"
    assert messages(collection) == [
        f"{name}:3: image_id 'not-a-uuid' is not a UUID",
        f"{name}:4: the key is empty",
        f"{name}:5: the key is 128 characters long; at most 127 are allowed",
        f"{name}:6: the value is 256 characters long; at most 255 are allowed",
        f"{name}:7: key 'env' was already given for this image with another value "
        f"('prod' at {name}:2); the first stands",
        f"{name}:9: 4 fields where the header has 3",
    ]
    assert (collection.valid, collection.duplicates, len(collection.errors)) == (2, 1, 6)
    assert tags_of(collection, IMG_A)["env"] == ("prod", (2, 8))


def test_invalid_rows_keep_their_input_columns_for_the_report(tmp_path: Path) -> None:
    collection = collect_text(tmp_path, f"region,image_id,key,value\nr1,{IMG_A},,v1\n")
    assert collection.errors[0].fields == (IMG_A, "", "v1", "proj", "r1")


def test_image_id_case_and_spaces_are_one_image(tmp_path: Path) -> None:
    text = f"image_id,key,value\n{IMG_A.upper()},k1,v\n {IMG_A} ,k2,v\n{IMG_A},k1,v\n"
    collection = collect_text(tmp_path, text)
    assert messages(collection) == []
    assert collection.images == 1
    assert tags_of(collection, IMG_A) == {"k1": ("v", (2, 4)), "k2": ("v", (3,))}


def test_a_conflict_across_spellings_keeps_the_first_row(tmp_path: Path) -> None:
    text = f"image_id,key,value\n{IMG_A.upper()},k1,first\n{IMG_A},k1,second\n"
    collection = collect_text(tmp_path, text)
    assert tags_of(collection, IMG_A) == {"k1": ("first", (2,))}
    assert [error.line for error in collection.errors] == [3]


def test_an_exact_repeat_of_the_first_row_is_a_duplicate_whatever_the_spelling(
    tmp_path: Path,
) -> None:
    """A conflict in one spelling of an image id must not hide the first row of another."""
    text = f"image_id,key,value\n{IMG_A},k1,first\n {IMG_A} ,k1,second\n {IMG_A} ,k1,first\n"
    collection = collect_text(tmp_path, text)
    assert tags_of(collection, IMG_A) == {"k1": ("first", (2, 4))}
    assert [error.line for error in collection.errors] == [3]
    assert (collection.valid, collection.duplicates) == (1, 1)


def test_rows_are_grouped_per_region_and_project(tmp_path: Path) -> None:
    text = (
        "image_id,key,value,project_id,region\n"
        f"{IMG_A},k,v,p1,r1\n{IMG_A},k,v,p2,r1\n{IMG_A},k,v,,\n{IMG_A},k,other,p1,r2\n"
    )
    collection = collect_text(tmp_path, text)
    assert messages(collection) == []
    assert sorted(collection.scopes) == [("r1", "p1"), ("r1", "p2"), ("r2", "p1"), ("reg", "proj")]


def test_a_missing_project_without_default_makes_rows_invalid(tmp_path: Path) -> None:
    text = f"image_id,key,value,project_id\n{IMG_A},k,v,p1\n{IMG_A},k2,v,\n"
    collection = collect_text(tmp_path, text, default_project_id="")
    assert [error.line for error in collection.errors] == [3]
    assert "no project_id" in collection.errors[0].reason
    assert collection.valid == 1


def test_unknown_columns_are_warned_about_and_ignored(tmp_path: Path) -> None:
    collection = collect_text(tmp_path, f"image_id,key,note\n{IMG_A},k,hello\n")
    assert collection.warnings == [f"{tmp_path / 'in.csv'}:1: column(s) note not used; ignored"]
    assert tags_of(collection, IMG_A) == {"k": ("", (2,))}


def test_a_latin1_column_that_is_not_used_is_shown_readably_and_ignored(tmp_path: Path) -> None:
    """Only the columns used must be UTF-8, in the header as in the rows: an Excel export's
    ``café`` column in Latin-1 is warned about (as ``caf\\xe9``) and its rows are worked."""
    content = f"image_id,key,café\n{IMG_A},k,crème\n".encode("latin-1")
    collection = collect_text(tmp_path, content)
    assert collection.warnings == [f"{tmp_path / 'in.csv'}:1: column(s) caf\\xe9 not used; ignored"]
    assert tags_of(collection, IMG_A) == {"k": ("", (2,))}
    assert collection.errors == []


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "empty file: a header row is required"),
        (b"image_id,value\n", ":1: missing required column(s) key; the header is: image_id, value"),
        (b"image_id,key,key\n", ":1: column 'key' appears twice in the header"),
        (
            b"image_id,k\xffey,value\n",
            ":1: the header is not valid UTF-8 (column 2: k\\xffey); save the file as UTF-8",
        ),
        (
            "image_id,clé,value\n".encode("latin-1"),
            ":1: the header is not valid UTF-8 (column 2: cl\\xe9); save the file as UTF-8",
        ),
    ],
)
def test_a_file_without_a_usable_header_is_one_clear_error(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    collection = collect_text(tmp_path, content)
    assert len(collection.file_errors) == 1
    assert str(collection.file_errors[0]).endswith(expected)
    assert collection.rows_read == 0


def test_bytes_that_are_not_utf8_make_their_row_invalid(tmp_path: Path) -> None:
    content = f"image_id,key,value\n{IMG_A},k1,ok\n{IMG_A},k2,caf\xe9\n".encode("latin-1")
    collection = collect_text(tmp_path, content)
    assert messages(collection) == [f"{tmp_path / 'in.csv'}:3: the row is not valid UTF-8"]
    assert collection.valid == 1


def test_gzip_files_are_read_and_a_truncated_one_is_one_error(tmp_path: Path) -> None:
    rows = "".join(f"{new_image_id()},k,v\n" for _ in range(2000))
    good = collect_text(tmp_path, "image_id,key,value\n" + rows, name="good.csv.gz")
    assert (good.valid, messages(good)) == (2000, [])
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(gzip.compress(("image_id,key,value\n" + rows).encode())[:-200])
    cut = collect([str(path)], default_project_id="p", default_region="r")
    assert len(cut.file_errors) == 1
    assert "truncated or corrupt gzip" in str(cut.file_errors[0])


def test_a_file_that_is_not_gzip_despite_its_name_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv.gz"
    path.write_text("image_id,key\n")
    collection = collect([str(path)], default_project_id="p", default_region="r")
    assert "gzip" in str(collection.file_errors[0])


def test_a_missing_file_is_one_error_and_other_files_are_still_read(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text(f"image_id,key\n{IMG_A},k\n")
    collection = collect(
        [str(tmp_path / "nope.csv"), str(good)], default_project_id="p", default_region="r"
    )
    assert str(collection.file_errors[0]).startswith(f"{tmp_path / 'nope.csv'}: cannot open")
    assert collection.valid == 1


def test_stdin_is_read_for_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = io.TextIOWrapper(io.BytesIO(f"image_id,key\n{IMG_A},k\n".encode()))
    monkeypatch.setattr(sys, "stdin", fake)
    collection = collect(["-"], default_project_id="p", default_region="r")
    assert collection.valid == 1
    assert collection.locate(tags_of(collection, IMG_A)["k"][1][0]) == ("-", 2)


def test_rows_of_several_files_merge_and_trace_back_to_their_file(tmp_path: Path) -> None:
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    one.write_text(f"image_id,key,value\n{IMG_A},k1,v\n{IMG_A},k2,v\n")
    two.write_text(f"image_id,key,value\n{IMG_A},k1,v\n{IMG_A},k2,other\n")
    collection = collect([str(one), str(two)], default_project_id="p", default_region="r")
    tags = tags_of(collection, IMG_A)
    assert [collection.locate(ref) for ref in tags["k1"][1]] == [(str(one), 2), (str(two), 2)]
    assert messages(collection) == [
        f"{two}:3: key 'k2' was already given for this image with another value "
        f"('v' at {one}:3); the first stands"
    ]


def test_malformed_quoting_is_reported_and_reading_goes_on(tmp_path: Path) -> None:
    text = f'image_id,key,value\n{IMG_A},k1,"ab"c\n{IMG_A},k2,v\n'
    collection = collect_text(tmp_path, text)
    assert messages(collection) == [
        f"{tmp_path / 'in.csv'}:2: malformed CSV: ',' expected after '\"'"
    ]
    assert "k2" in tags_of(collection, IMG_A)


def test_an_image_with_more_tags_than_the_cap_is_split(tmp_path: Path) -> None:
    rows = "".join(f"{IMG_A},k{i},v\n" for i in range(45))
    collection = collect_text(tmp_path, "image_id,key,value\n" + rows)
    requests = list(iter_requests(collection, max_tags=20))
    assert [len(request.tags) for request in requests] == [20, 20, 5]
    assert count_requests(collection, max_tags=20) == 3
    assert {tag.key for request in requests for tag in request.tags} == {f"k{i}" for i in range(45)}
