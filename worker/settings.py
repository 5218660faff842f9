"""Settings the workers and the command line share, from the environment."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from worker.errors import ConfigError
from worker.redis_url import client_url

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
# Every TAGSWEEP_ name a process accepts. Those not in ``Settings`` are read where they are
# used: TAGSWEEP_ENDPOINT, _TMS_ENDPOINT, _REGION, _RATE, _KEEP by the command line's options (click
# ``envvar``), a job's, that reach the workers in its ``JobOptions`` (docs/decisions.md);
# the IAM ones by ``worker.cloud.credentials``.
KNOWN = frozenset(
    {
        "REDIS_URL",
        "TAGSWEEP_ENDPOINT",
        "TAGSWEEP_TMS_ENDPOINT",
        "TAGSWEEP_REGION",
        "TAGSWEEP_IAM_ENDPOINT",
        "TAGSWEEP_RATE",
        "TAGSWEEP_CONCURRENCY",
        "TAGSWEEP_LOG_FORMAT",
        "TAGSWEEP_LOG_LEVEL",
        "TAGSWEEP_LEASE_S",
        "TAGSWEEP_AUTH_TOKEN",
        "TAGSWEEP_IAM_USER",
        "TAGSWEEP_IAM_PASSWORD",
        "TAGSWEEP_IAM_DOMAIN",
        "TAGSWEEP_HOME",
        "TAGSWEEP_KEEP",
        "TAGSWEEP_EGRESS_ID",
        "TAGSWEEP_SOURCE_ADDRESS",
        "TAGSWEEP_RUN_JOB",
    }
)


@dataclass(frozen=True)
class Settings:
    """What a process needs to reach Redis and IAM; credentials are loaded separately, and the
    IMS endpoint is each job's (``JobOptions.endpoint``)."""

    redis_url: str = DEFAULT_REDIS_URL
    iam_endpoint: str | None = None
    concurrency: int = 16
    lease_s: float = 30.0
    log_format: str = "auto"
    # Workers' log level: info by default; debug adds a line per request that succeeded.
    log_level: str = "INFO"
    # The group of workers whose calls leave through one source address: under a gateway
    # policy ``ip`` they share one schedule (worker/limits/scopes.py). By default the host; hosts
    # behind one NAT gateway set the same value.
    egress_id: str = field(default_factory=socket.gethostname)
    # The local address outgoing connections are bound to (multi-homed hosts; tests on loopback:
    # 127.0.0.1 and 127.0.0.2); None: the system's choice.
    source_address: str | None = None
    # Set by ``run`` for the workers it starts on its private Redis: they work that job only
    # (another job's chunks there wait for that job's own run; docs/decisions.md).
    run_job: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read ``TAGSWEEP_*`` and ``REDIS_URL``; an unknown ``TAGSWEEP_`` name is an error."""
        env = os.environ if env is None else env
        unknown = sorted(k for k in env if k.startswith("TAGSWEEP_") and k not in KNOWN)
        if unknown:
            raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; known: {sorted(KNOWN)}")
        try:
            return cls(
                redis_url=client_url(env.get("REDIS_URL") or DEFAULT_REDIS_URL),
                iam_endpoint=env.get("TAGSWEEP_IAM_ENDPOINT") or None,
                concurrency=int(env.get("TAGSWEEP_CONCURRENCY", "16")),
                lease_s=float(env.get("TAGSWEEP_LEASE_S", "30")),
                log_format=env.get("TAGSWEEP_LOG_FORMAT", "auto"),
                log_level=_log_level(env.get("TAGSWEEP_LOG_LEVEL", "INFO")),
                egress_id=env.get("TAGSWEEP_EGRESS_ID") or socket.gethostname(),
                source_address=_source_address(env.get("TAGSWEEP_SOURCE_ADDRESS") or None),
                run_job=env.get("TAGSWEEP_RUN_JOB") or None,
            )
        except ValueError as exc:
            raise ConfigError(f"bad setting: {exc}") from None


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level(name: str) -> str:
    level = name.strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"TAGSWEEP_LOG_LEVEL={name!r}; one of {', '.join(LOG_LEVELS).lower()}")
    return level


def _source_address(address: str | None) -> str | None:
    if address is not None:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise ValueError(
                f"TAGSWEEP_SOURCE_ADDRESS={address!r} is not an IP address of this host"
            ) from None
    return address


def redact_url(url: str) -> str:
    """A URL with its password replaced by ``***``, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))
