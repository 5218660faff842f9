"""The engine: working one chunk of a job, with nothing of Celery in it.

``run_chunk`` (``worker.engine.run``) leases a chunk and hands it to the chunk loop
(``chunk``), which works each batch (``batch``): the read first when the job reads first, what
delete, plan or undo decide from it (``modes``), and each call under the shared rate with
retries (``worker.limits.retrying``), routed by ``calls``, gated by the credential probe
(``probe``).
Rows are recorded (``recording``, buffered by ``recorder``), the breakers checked
(``breakers``), the rate published (``rates``) and the job's stop state followed
(``stopping``); ``lease`` holds the chunk's lease, ``progress`` writes ``job.progress``.
"""

from worker.engine.context import EngineContext
from worker.engine.run import ChunkOutcome, run_chunk

__all__ = ["ChunkOutcome", "EngineContext", "run_chunk"]
