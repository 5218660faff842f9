"""Where a row ref points, and the one warning about unused columns."""

from __future__ import annotations

from producer.reading import FileSpans, Layout, ignored_warning


def test_a_ref_leads_back_to_its_file_and_physical_line() -> None:
    """Each file's refs start past the last line of the one before it."""
    spans = FileSpans()
    one = spans.open("one.csv")
    spans.close(one, last_line=3)
    two = spans.open("two.csv")
    assert [spans.locate(one.base + line) for line in (2, 3)] == [("one.csv", 2), ("one.csv", 3)]
    assert spans.locate(two.base + 2) == ("two.csv", 2)


def test_the_unused_columns_warning_names_ten_and_counts_the_rest() -> None:
    ignored = tuple(f"c{n}" for n in range(12))
    layout = Layout(
        width=14, image_id=0, key=1, value=-1, project_id=-1, region=-1, ignored=ignored
    )
    assert ignored_warning("in.csv", layout) == (
        "in.csv:1: column(s) c0, c1, c2, c3, c4, c5, c6, c7, c8, c9 and 2 more not used; ignored"
    )
