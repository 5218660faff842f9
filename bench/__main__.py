"""Run every benchmark in turn: python -m bench."""

from __future__ import annotations

from bench import validate

if __name__ == "__main__":
    validate.main()
