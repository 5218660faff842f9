"""Whose allowance a call draws on: the schedules of one API, endpoint and identity in each
scope the gateway's 429 may name (``policy user|ip|api over ratelimit,...``).

A limiter starts on the user schedule (every worker with the same credentials shares it: the
common policy). A 429 naming another scope moves the process's calls to that scope's schedule
(``SharedRateLimiter.throttled``), and each schedule keeps what it learnt. Under ``ip`` the
workers leaving through one source address share a schedule: the address is not known to a
worker behind a NAT gateway, so workers name their group themselves (``TAGSWEEP_EGRESS_ID``,
by default the host name; hosts behind one NAT gateway set the same value). Under ``api``
everyone shares one. One scope at a time: the one the latest 429 named.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker import keys
from worker.model import Scope

DEFAULT_API = "ims"


@dataclass(frozen=True)
class Schedules:
    """The schedule keys of one (API, endpoint, identity), one per scope."""

    endpoint: str
    identity: str
    # The group of workers that leave through one source address (``Settings.egress_id``).
    egress_id: str
    # The API family whose allowance this is: "ims", "tms".
    api: str = DEFAULT_API

    def key(self, scope: Scope) -> str:
        holder = {Scope.USER: self.identity, Scope.IP: self.egress_id, Scope.API: ""}[scope]
        return keys.rate_bucket(self.endpoint, holder, api=self.api, scope=scope.value)
