"""``validate``'s quick path (``producer.tally``): on files it takes, the same plan and the
same problems as the full pass; only the forms it does not judge left to the full pass."""

from __future__ import annotations

import json
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from unittest.mock import patch

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from producer import blockread
from producer.collect import collect
from producer.planning import make_plan, quick_plan
from producer.tally import quick_tally
from tests.producer.test_cli_validate import tagsweep

POOL = [str(uuid.UUID(int=i * 7919 + 3, version=4)) for i in range(12)]
KEYS = [f"k{i}" for i in range(8)] + ["ünï", "k" * 127]
# A row that breaks a rule or is an unusual form, made from a row and the file's first row (a
# new key where the key is not what is wrong, so that the row alone breaks a rule).
ANOMALIES = {
    "conflict": lambda row, first: [first[0], first[1], first[2] + "x"],
    "empty key": lambda row, first: [row[0], "", row[2]],
    "long key": lambda row, first: [row[0], "k" * 128, row[2]],
    "long value": lambda row, first: [row[0], "new", "v" * 256],
    "non-ASCII value": lambda row, first: [row[0], "new", "日本"],
    "upper-case id": lambda row, first: [row[0].upper(), "new", row[2]],
    "padded id": lambda row, first: [f" {row[0]}", "new", row[2]],
    "not a uuid": lambda row, first: ["nope", "new", row[2]],
    "quoted comma": lambda row, first: [row[0], "new", '"a,b"'],
    "short row": lambda row, first: [row[0], "new"],
    "long row": lambda row, first: [row[0], "new", row[2], "n", "surplus"],
    "blank line": lambda row, first: [],
}
# What the quick path leaves to the full pass.
NOT_JUDGED = {"upper-case id", "padded id", "not a uuid", "quoted comma"}
SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@dataclass
class Files:
    texts: list[str]
    anomalies: list[str]
    block_bytes: int


@st.composite
def files(draw: st.DrawFn) -> Files:
    """One or two files of valid rows, each with its own column order, extra column, line
    ends, BOM and last line end; a few exact repeats; up to two anomalies."""
    pairs = draw(
        st.lists(st.tuples(st.sampled_from(POOL), st.sampled_from(KEYS)), unique=True, max_size=40)
    )
    rows = [
        [image, key, draw(st.sampled_from(["", "v", "prod", "v" * 255]))] for image, key in pairs
    ]
    anomalies = draw(st.lists(st.sampled_from(sorted(ANOMALIES)), max_size=2)) if rows else []
    changes: list[str | None] = [None] * draw(st.integers(0, 3 if rows else 0))
    valid = list(rows)
    for change in [*changes, *anomalies]:
        source = draw(st.sampled_from(valid))
        row = source if change is None else ANOMALIES[change](source, valid[0])
        rows.insert(draw(st.integers(rows.index(source) + 1, len(rows))), list(row))
    cut = draw(st.integers(0, len(rows)))
    texts = [draw(file_text(part)) for part in (rows[:cut], rows[cut:]) if part or not cut]
    return Files(texts, anomalies, draw(st.sampled_from([512, 700, blockread.BLOCK_BYTES])))


@st.composite
def file_text(draw: st.DrawFn, rows: list[list[str]]) -> str:
    columns = draw(st.permutations(["image_id", "key", "value", "note"]))
    end = draw(st.sampled_from(["\n", "\r\n"]))
    order = [["image_id", "key", "value", "note"].index(column) for column in columns]
    lines = [",".join(columns)]
    for row in rows:
        full = [*row, "n"] if len(row) == 3 else row
        fields = [full[i] for i in order if i < len(full)] + full[4:]
        lines.append(",".join(fields))
    bom = "\ufeff" if draw(st.booleans()) else ""
    last = end if draw(st.booleans()) or not rows else ""
    return bom + end.join(lines) + last


@SETTINGS
@given(files(), st.sampled_from([1, 2, 20]))
def test_the_quick_path_tells_what_the_full_pass_tells_or_leaves_the_files_to_it(
    generated: Files, max_tags: int
) -> None:
    """Taken: the plan, the invalid rows (file, line, reason, fields), the warnings and each
    file's last line are the full pass's. Only the forms it does not judge are left."""
    with tempfile.TemporaryDirectory() as tmp:
        names = []
        for number, text in enumerate(generated.texts):
            path = Path(tmp) / f"part{number}.csv"
            path.write_text(text, encoding="utf-8", newline="")
            names.append(str(path))
        with patch.object(blockread, "BLOCK_BYTES", generated.block_bytes):
            quick = quick_tally(
                names, default_project_id="p", default_region="r", max_tags=max_tags
            )
        full = collect(names, default_project_id="p", default_region="r")
    if quick is None:
        assert NOT_JUDGED.intersection(generated.anomalies) or not full.rows_read
        return
    assert full.file_errors == []
    assert quick.errors == full.errors
    assert quick.warnings == full.warnings
    assert quick.last_lines == full.spans.last_lines
    assert quick_plan(quick, max_tags=max_tags, rate_per_s=7) == make_plan(
        full, max_tags=max_tags, rate_per_s=7
    )


def test_rows_beyond_max_tags_on_one_image_make_more_requests(tmp_path: Path) -> None:
    path = tmp_path / "many.csv"
    rows = "".join(f"{POOL[0]},k{i},v\n" for i in range(45)) + f"{POOL[1]},k0,v\n"
    path.write_text(f"image_id,key,value\n{rows}")
    quick = quick_tally([str(path)], default_project_id="p", default_region="r", max_tags=20)
    assert quick is not None
    assert (quick.rows_read, quick.images, quick.requests) == (46, 2, 4)


def test_stdin_gzip_scope_columns_and_no_default_scope_go_to_the_full_pass(
    tmp_path: Path,
) -> None:
    plain = tmp_path / "plain.csv"
    plain.write_text(f"image_id,key\n{POOL[0]},k\n")
    scoped = tmp_path / "scoped.csv"
    scoped.write_text(f"image_id,key,region\n{POOL[0]},k,r\n")
    gz = tmp_path / "rows.csv.gz"
    gz.write_bytes(b"")

    def quick(names: list[str], region: str | None = "r") -> object:
        return quick_tally(names, default_project_id="p", default_region=region, max_tags=20)

    assert quick([str(plain)]) is not None
    assert quick(["-"]) is None
    assert quick([str(gz)]) is None
    assert quick([str(scoped)]) is None
    assert quick([str(plain)], region=None) is None
    assert quick([str(tmp_path / "missing.csv")]) is None


def validate(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return tagsweep("validate", *args, stdin=stdin)


def test_validate_says_of_a_file_what_the_full_pass_says_of_it_on_stdin(tmp_path: Path) -> None:
    """stdin always takes the full pass: the plans, problems, warnings and exit codes agree,
    for a valid file and for one with a repeat, a conflict and bad rows."""
    valid = "".join(f"{image},k{i},v{i},x\r\n" for image in POOL for i in range(25))
    bad = f"{POOL[0]},k0,v0,x\r\n{POOL[1]},k0,other,x\r\n{POOL[2]},,v,x\r\n\r\nshort\r\n"
    for name, rows, code in (("valid.csv", valid, 0), ("bad.csv", valid + bad, 2)):
        path = tmp_path / name
        path.write_text(f"image_id,key,value,owner\r\n{rows}")
        scope = ("--project-id", "p", "--region", "r", "--json")
        quick, full = validate(str(path), *scope), validate("-", *scope, stdin=path.read_text())
        assert (quick.returncode, full.returncode) == (code, code), quick.stderr + full.stderr
        quick_doc, full_doc = json.loads(quick.stdout), json.loads(full.stdout)
        assert quick_doc["plan"] == {**full_doc["plan"], "files": [str(path)]}
        for kind in ("errors", "warnings"):
            assert [line.replace(str(path), "-") for line in quick_doc[kind]] == full_doc[kind]
    assert quick_doc["plan"]["duplicate"] == 1
    assert quick_doc["errors"] == [
        f"{path}:303: key 'k0' was already given for this image with another value ('v0' at "
        f"{path}:27); the first stands",
        f"{path}:304: the key is empty",
        f"{path}:306: 1 fields where the header has 4",
    ]
    text = validate(str(tmp_path / "valid.csv"), *scope[:-1])
    assert (
        text.stderr == f"warning: {tmp_path / 'valid.csv'}:1: column(s) owner not used; ignored\n"
    )
    assert "requests    24 (at most 20 tags each)" in text.stdout
