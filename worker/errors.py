"""Every exception the worker package raises on purpose, in one hierarchy (the producer's own
are in ``producer/errors.py``, under the same ``TagsweepError``); each names what went wrong,
never a secret."""

from __future__ import annotations


class TagsweepError(Exception):
    """Raised for any expected failure; the command line prints it as one line."""


class ConfigError(TagsweepError):
    """Raised when settings or flags are missing, unknown or malformed."""


class CredentialsError(ConfigError):
    """Raised when no usable credentials are found, or a credentials source is malformed."""


class EvictionRefused(ConfigError):
    """Raised when the Redis server may evict keys (``maxmemory-policy`` not noeviction)."""


class AuthError(TagsweepError):
    """Raised when IAM refuses to issue a token (wrong user, password, domain or scope)."""

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


class MalformedChunk(TagsweepError, ValueError):
    """Raised when a stored chunk is not in the expected shape (a ``ValueError`` too: it is
    bad data)."""


class LeaseLost(TagsweepError):
    """Raised when a chunk's lease ran out under its holder; the holder must stop."""
