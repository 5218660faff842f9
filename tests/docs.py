"""The command blocks of the project's docs, as tests read them: every fenced ``sh`` block of
README.md and docs/*.md, with where it is and, when the doc says it is not run here, why."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import REPO

DOCS = (REPO / "README.md", *sorted((REPO / "docs").glob("*.md")))
NOT_RUN = re.compile(r"^<!-- not run: (?P<reason>.+?) -->$")


@dataclass(frozen=True)
class Block:
    """One fenced ``sh`` block: its file (relative to the repository), the line of its first
    command, its text, and the reason given in ``<!-- not run: REASON -->`` just above it."""

    doc: str
    line: int
    text: str
    not_run: str | None

    @property
    def first_line(self) -> str:
        return self.text.splitlines()[0]


def sh_blocks(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, start = [], None
    for number, line in enumerate(lines):
        if start is None and line == "```sh":
            start = number
        elif start is not None and line == "```":
            above = NOT_RUN.match(lines[start - 1]) if start else None
            text = "\n".join(lines[start + 1 : number]) + "\n"
            doc = str(path.relative_to(REPO))
            blocks.append(Block(doc, start + 2, text, above and above["reason"]))
            start = None
    return blocks


def all_blocks() -> list[Block]:
    return [block for path in DOCS for block in sh_blocks(path)]


def block_containing(doc: str, containing: str) -> str:
    """The text of the one ``sh`` block of ``doc`` (e.g. ``docs/operations.md``) that holds
    ``containing``."""
    (block,) = [b.text for b in sh_blocks(REPO / doc) if containing in b.text]
    return block
