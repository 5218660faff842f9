"""Entry point for ``celery -A worker worker``: Celery looks for ``worker.celery.app``."""

from worker.app import app

__all__ = ["app"]
