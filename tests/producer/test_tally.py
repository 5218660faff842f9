"""``validate``'s quick path (``producer.tally``): on files it takes, the same plan as the full
pass; files with exact repeats taken; every file with a problem, or a form it does not judge,
left to the full pass."""

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

from producer import tally
from producer.collect import collect
from producer.planning import make_plan, quick_plan
from producer.tally import quick_tally
from tests.producer.test_cli_validate import tagsweep

POOL = [str(uuid.UUID(int=i * 7919 + 3, version=4)) for i in range(12)]
KEYS = [f"k{i}" for i in range(8)] + ["ünï", "k" * 127]
# A row the quick path leaves to the full pass, made from a row and the file's first row
# (a new key where the key is not what is wrong, so that the row is alone in breaking a rule).
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
SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@dataclass
class Files:
    texts: list[str]
    anomaly: str | None
    block_bytes: int


@st.composite
def files(draw: st.DrawFn) -> Files:
    """One or two files of valid rows, each with its own column order, extra column, line
    ends, BOM and last line end; a few exact repeats; maybe one row changed by one anomaly."""
    pairs = draw(
        st.lists(st.tuples(st.sampled_from(POOL), st.sampled_from(KEYS)), unique=True, max_size=40)
    )
    rows = [
        [image, key, draw(st.sampled_from(["", "v", "prod", "v" * 255]))] for image, key in pairs
    ]
    anomaly = draw(st.none() | st.sampled_from(sorted(ANOMALIES))) if rows else None
    changes = [None] * draw(st.integers(0, 3 if rows else 0)) + [anomaly] * (anomaly is not None)
    for change in changes:
        at = draw(st.integers(0, len(rows) - 1))
        row = rows[at] if change is None else ANOMALIES[change](rows[at], rows[0])
        rows.insert(draw(st.integers(at + 1, len(rows))), list(row))
    cut = draw(st.integers(0, len(rows)))
    texts = [draw(file_text(part)) for part in (rows[:cut], rows[cut:]) if part or not cut]
    return Files(texts, anomaly, draw(st.sampled_from([512, 700, tally.BLOCK_BYTES])))


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
def test_the_quick_path_gives_the_full_pass_plan_or_leaves_the_files_to_it(
    generated: Files, max_tags: int
) -> None:
    """Taken: the plan is the full pass's, which found nothing wrong. Files with no anomaly but
    repeats are taken."""
    with tempfile.TemporaryDirectory() as tmp:
        names = []
        for number, text in enumerate(generated.texts):
            path = Path(tmp) / f"part{number}.csv"
            path.write_text(text, encoding="utf-8", newline="")
            names.append(str(path))
        with patch.object(tally, "BLOCK_BYTES", generated.block_bytes):
            quick = quick_tally(
                names, default_project_id="p", default_region="r", max_tags=max_tags
            )
        full = collect(names, default_project_id="p", default_region="r")
    if quick is None:
        assert generated.anomaly is not None or not full.rows_read
        return
    assert (full.errors, full.file_errors) == ([], [])
    assert quick.warnings == full.warnings
    assert quick_plan(quick, max_tags=max_tags, rate_per_s=7) == make_plan(
        full, max_tags=max_tags, rate_per_s=7
    )


def test_rows_beyond_max_tags_on_one_image_make_more_requests(tmp_path: Path) -> None:
    path = tmp_path / "many.csv"
    rows = "".join(f"{POOL[0]},k{i},v\n" for i in range(45)) + f"{POOL[1]},k0,v\n"
    path.write_text(f"image_id,key,value\n{rows}")
    quick = quick_tally([str(path)], default_project_id="p", default_region="r", max_tags=20)
    assert quick is not None
    assert (quick.rows, quick.images, quick.requests) == (46, 2, 4)


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


def test_validate_says_the_same_of_a_clean_file_as_the_full_pass_says_of_stdin(
    tmp_path: Path,
) -> None:
    """stdin always takes the full pass: both plans, and both warnings, are the same."""
    path = tmp_path / "clean.csv"
    rows = "".join(f"{image},k{i},v{i},x\r\n" for image in POOL for i in range(25))
    path.write_text(f"image_id,key,value,owner\r\n{rows}")
    scope = ("--project-id", "p", "--region", "r", "--json")
    quick, full = validate(str(path), *scope), validate("-", *scope, stdin=path.read_text())
    assert (quick.returncode, full.returncode) == (0, 0), quick.stderr + full.stderr
    quick_doc, full_doc = json.loads(quick.stdout), json.loads(full.stdout)
    assert quick_doc["plan"] == {**full_doc["plan"], "files": [str(path)]}
    assert quick_doc["plan"]["requests"] == 24
    assert [w.replace("-:", "") for w in full_doc["warnings"]] == [
        w.replace(f"{path}:", "") for w in quick_doc["warnings"]
    ]
    text = validate(str(path), *scope[:-1])
    assert text.stderr == f"warning: {path}:1: column(s) owner not used; ignored\n"
    assert "requests    24 (at most 20 tags each)" in text.stdout
