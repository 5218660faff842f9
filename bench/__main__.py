"""Run every benchmark in turn: python -m bench."""

from __future__ import annotations

from bench import ratelimit, submit, validate

if __name__ == "__main__":
    validate.main()
    submit.main()
    ratelimit.main()
