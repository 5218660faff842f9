"""The API gateway and IAM as the simulator plays them: AK/SK checks, lockout, tokens.

Messages follow the real gateway's wording (APIGW.0301 "Incorrect IAM authentication
information: ..."), so clients are tested against the text they will meet.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from simulator.config import SimulatorConfig
from worker.cloud.signing import (
    DATE_FORMAT,
    DATE_HEADER,
    compute_signature,
    parse_authorization,
    string_to_sign,
)

AUTH_PREFIX = "Incorrect IAM authentication information: "
DATE_TOLERANCE = timedelta(minutes=15)


@dataclass(frozen=True)
class Identity:
    """Who a request comes from; the name keys the rate limit."""

    name: str
    project_id: str | None = None
    # A token scoped to the account rather than a project (AK/SK has no scope).
    domain_scoped: bool = False


@dataclass(frozen=True)
class AuthFailure:
    """Why a request was refused: the gateway's status, code and message."""

    status: int
    code: str
    message: str


@dataclass(frozen=True)
class IssuedToken:
    """A token's owner and scope: a project, or (``project_id`` None) the whole account, as
    global services such as TMS require."""

    user: str
    project_id: str | None
    expires_at: datetime


@dataclass
class SignedRequest:
    """The parts of a received request that its signature covers."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: Mapping[str, str]
    body: bytes


@dataclass
class Gateway:
    """Authenticates requests the way Huawei Cloud's API gateway does."""

    config: SimulatorConfig
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    tokens: dict[str, IssuedToken] = field(default_factory=dict)
    bad_signatures: Counter[str] = field(default_factory=Counter)
    locked_until: dict[str, float] = field(default_factory=dict)

    def authenticate(
        self, request: SignedRequest, *, needs_domain: bool = False
    ) -> Identity | AuthFailure:
        """Check a request's AK/SK signature or its token; a global service (``needs_domain``)
        also wants the account id in ``X-Domain-Id`` beside a signature."""
        authorization = request.headers.get("Authorization")
        if authorization:
            identity = self._check_signature(request, authorization)
            if needs_domain and isinstance(identity, Identity):
                return self._check_domain(request) or identity
            return identity
        token = request.headers.get("X-Auth-Token")
        if token:
            return _check_scope(self._check_token(token), needs_domain=needs_domain)
        return _unauthorized("x-auth-token not found")

    def issue_token(
        self, *, user: str, password: str, domain: str, project_id: str | None
    ) -> tuple[str, IssuedToken] | None:
        """A new token and its record for a known user, or ``None`` for wrong credentials."""
        for known in self.config.users:
            if (
                hmac.compare_digest(known.name, user)
                and hmac.compare_digest(known.password, password)
                and known.domain == domain
            ):
                issued = IssuedToken(
                    user=f"{domain}/{user}",
                    project_id=project_id,
                    expires_at=self.now() + timedelta(seconds=self.config.token_ttl_s),
                )
                value = "MII" + secrets.token_urlsafe(48)
                self.tokens[value] = issued
                return value, issued
        return None

    def _check_token(self, token: str) -> Identity | AuthFailure:
        issued = self.tokens.get(token)
        if issued is None:
            return _unauthorized("decrypt token fail")
        if issued.expires_at <= self.now():
            stamp = issued.expires_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            return _unauthorized(f"token expires, expires_at: {stamp}")
        return Identity(
            f"user:{issued.user}", issued.project_id, domain_scoped=issued.project_id is None
        )

    def check_project(
        self, identity: Identity, project_id: str, *, known: Collection[str]
    ) -> AuthFailure | None:
        """Refuse a path's project that the account does not hold, or that is not the one the
        credentials name (X-Project-Id, the token's scope). IMS's real wording for these is not
        published; the codes and messages are the simulator's."""
        if project_id not in known:
            return _unauthorized("the project id does not belong to the account")
        if identity.project_id and identity.project_id != project_id:
            return AuthFailure(
                403,
                "APIGW.0302",
                "The IAM user is forbidden in the currently selected region: the project in "
                "the URL is not the credentials' project.",
            )
        return None

    def _check_domain(self, request: SignedRequest) -> AuthFailure | None:
        # The real wording for a missing or wrong X-Domain-Id is not published; these
        # messages are the simulator's, under the gateway's usual 401 code.
        domain_id = request.headers.get("X-Domain-Id")
        if not domain_id:
            return _unauthorized("x-domain-id not found")
        if not hmac.compare_digest(domain_id, self.config.tms.domain_id):
            return _unauthorized("the x-domain-id does not match the ak's account")
        return None

    def _check_signature(
        self, request: SignedRequest, authorization: str
    ) -> Identity | AuthFailure:
        parsed = parse_authorization(authorization)
        if parsed is None:
            return _unauthorized(
                "verify aksk signature fail, the authorization header is malformed"
            )
        ak, names, signature = parsed
        sk = self.config.aksk.get(ak)
        if sk is None:
            # The real gateway's words for an unknown AK (docs/ims-api.md).
            return _unauthorized(f"Get secretKey failed,ak:{ak},err:ak not exist")
        if self.locked_until.get(ak, 0.0) > self.clock():
            return _unauthorized("AK access failed to reach the limit,forbidden.")
        if self._signature_matches(request, names, signature, sk):
            self.bad_signatures.pop(ak, None)
            return Identity(f"ak:{ak}", request.headers.get("X-Project-Id"))
        self.bad_signatures[ak] += 1
        if self.bad_signatures[ak] >= self.config.lockout_after:
            self.locked_until[ak] = self.clock() + self.config.lockout_s
            self.bad_signatures.pop(ak, None)
        return _unauthorized("verify aksk signature fail")

    def _signature_matches(
        self, request: SignedRequest, names: list[str], signature: str, sk: str
    ) -> bool:
        if "host" not in names or DATE_HEADER.lower() not in names:
            return False
        signed = {}
        for name in names:
            value = request.headers.get(name)
            if value is None:
                return False
            signed[name] = value
        try:
            sent_at = datetime.strptime(signed[DATE_HEADER.lower()], DATE_FORMAT).replace(
                tzinfo=UTC
            )
        except ValueError:
            return False
        if abs(self.now() - sent_at) > DATE_TOLERANCE:
            return False
        text, _ = string_to_sign(
            method=request.method,
            path=request.path,
            query=request.query,
            headers=signed,
            body=request.body,
        )
        return hmac.compare_digest(compute_signature(sk, text), signature)


def _check_scope(identity: Identity | AuthFailure, *, needs_domain: bool) -> Identity | AuthFailure:
    """A global service (TMS) takes account-scoped tokens only; IMS project-scoped ones only.
    TMS answers with its published 403 TMS.0004; the IMS wording is the simulator's."""
    if isinstance(identity, AuthFailure) or identity.domain_scoped == needs_domain:
        return identity
    if needs_domain:
        return AuthFailure(403, "TMS.0004", "You do not have permissions to perform the operation.")
    return _unauthorized("the token is not scoped to a project")


def _unauthorized(reason: str) -> AuthFailure:
    return AuthFailure(401, "APIGW.0301", AUTH_PREFIX + reason)
