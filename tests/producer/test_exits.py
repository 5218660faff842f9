"""How a command's process ends (producer/exits.py)."""

from __future__ import annotations

import subprocess
import sys

ENDS_WITHOUT_TEARDOWN = """
import atexit
from producer.exits import ENDING, end_process
atexit.register(print, "atexit ran")
ENDING.skip_teardown = True
end_process(3)
"""


def test_a_process_that_skips_its_teardown_still_runs_its_atexit_functions() -> None:
    """A stopped worker skips freeing its modules (up to 1 s on a busy machine), but what its
    libraries registered to run at exit still runs."""
    done = subprocess.run(
        [sys.executable, "-c", ENDS_WITHOUT_TEARDOWN], capture_output=True, text=True, check=False
    )
    assert done.returncode == 3, done.stderr
    assert done.stdout == "atexit ran\n"
