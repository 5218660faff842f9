"""The ``tagsweep`` sub-commands, grouped by what they do.

- ``jobs``: make and work a job from CSV files (validate, plan, run, submit);
- ``watching``: look at jobs (status, report, jobs);
- ``control``: change a job that exists (cancel, retry, undo, forget);
- ``select``: write the cleanup CSV from an IMS tag query;
- ``doctor``: check an account read-only before a first job;
- ``operations``: the long-running processes (worker, exporter).

``tagsweep simulator`` lives with the simulator (``simulator.cli``). Each command builds its
request from its options, raises ``producer.errors`` for what a user can get wrong and returns
the exit code of a job that ended; ``producer.cli.main`` ends the process with them.
"""
