"""What the command line asked a job to be, built once from the options (``options.job_request``).

The options every worker reads travel in ``JobOptions`` (``worker.jobs``), whose defaults are
the command line's; the rest (files, how rows are chunked, retention, the confirmation) is the
producer's own, with its defaults here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from producer.batching import DEFAULT_MAX_TAGS_PER_REQUEST
from producer.retention import DEFAULT_KEEP, parse_keep
from producer.submit import DEFAULT_CHUNK_REQUESTS
from worker.jobs import JobOptions

# On a terminal, a deleting job of more rows than this is confirmed first (--confirm-above).
DEFAULT_CONFIRM_ABOVE = 1000


@dataclass(frozen=True, kw_only=True)
class JobRequest:
    """A job as asked for: its files, the workers' options, and how to write and keep it."""

    files: tuple[str, ...]
    options: JobOptions = field(default_factory=JobOptions)
    # For rows without a project_id / region of their own.
    project_id: str | None = None
    region: str | None = None
    max_tags_per_request: int = DEFAULT_MAX_TAGS_PER_REQUEST
    chunk_requests: int = DEFAULT_CHUNK_REQUESTS
    skip_invalid: bool = False
    # Every invalid row its own line, even when most rows of a file share one mistake.
    all_errors: bool = False
    keep_ms: int = parse_keep(DEFAULT_KEEP)
    confirm_above: int = DEFAULT_CONFIRM_ABOVE
    yes: bool = False
    # Aimed at this run's simulator (``run --simulate``), whose address changes each run.
    simulated: bool = False

    def submission_key(self, checksum: str) -> str | None:
        """What finds the job again: the files' bytes and the target. None for stdin (not
        re-read). A simulated job is found by the files alone."""
        if "-" in self.files:
            return None
        options = self.options
        material = [
            checksum,
            "--simulate" if self.simulated else options.endpoint,
            self.region,
            self.project_id,
            options.api,
            self.max_tags_per_request,
            self.chunk_requests,
            self.skip_invalid,
            options.mode,
            options.backup,
            options.match_values,
            # Only for TMS jobs, so that the keys of earlier jobs stay what they were.
            *(
                [options.tms_endpoint, options.domain_id, options.tms_resource_type]
                if options.api.uses_tms
                else []
            ),
        ]
        return hashlib.sha256(json.dumps(material).encode()).hexdigest()[:32]
