"""Credentials, found the way Huawei Cloud's SDKs find them; secrets never show in a repr.

Order: AK/SK from the environment (``HUAWEICLOUD_SDK_AK`` / ``_SK`` / ``_SECURITY_TOKEN``), then
an IAM token (``TAGSWEEP_AUTH_TOKEN``), then an IAM user and password (``TAGSWEEP_IAM_USER`` /
``_PASSWORD`` / ``_DOMAIN``), then the SDK profile file (``HUAWEICLOUD_SDK_CREDENTIALS_FILE`` or
``~/.huaweicloud/credentials``, section ``[basic]``). The SDKs define no variables for tokens or
passwords, so those two names are tagsweep's own. The account (domain) id that TMS signs with
is ``HUAWEICLOUD_SDK_DOMAIN_ID``, as the SDK's global credentials name it, else the profile's
``domain_id``.
"""

from __future__ import annotations

import configparser
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from worker.errors import CredentialsError

PROFILE_SECTION = "basic"


@dataclass(frozen=True)
class AkSkCredentials:
    """A permanent AK/SK pair, or a temporary one with its security token."""

    ak: str
    sk: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)

    @property
    def identity(self) -> str:
        return f"ak:{self.ak}"


@dataclass(frozen=True)
class TokenCredentials:
    """An IAM token obtained elsewhere; it cannot be renewed by tagsweep."""

    token: str = field(repr=False)

    @property
    def identity(self) -> str:
        # The token itself is a secret: name the identity by a short digest of it.
        return "token:" + hashlib.sha256(self.token.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PasswordCredentials:
    """An IAM user that tagsweep exchanges for project-scoped tokens."""

    user: str
    password: str = field(repr=False)
    domain: str

    @property
    def identity(self) -> str:
        return f"user:{self.domain}/{self.user}"


Credentials = AkSkCredentials | TokenCredentials | PasswordCredentials


@dataclass(frozen=True)
class CredentialSources:
    """What the environment and profile say beyond the secret itself."""

    credentials: Credentials
    project_id: str | None = None
    iam_endpoint: str | None = None
    domain_id: str | None = None


def load_credentials(env: Mapping[str, str], *, home: Path | None = None) -> CredentialSources:
    """Find credentials in the environment, then in the SDK profile file; the domain id in
    the environment, else in the profile when there is one."""
    found = _load_secret(env, home)
    if found.domain_id is None:
        domain_id = env.get("HUAWEICLOUD_SDK_DOMAIN_ID") or _profile_domain_id(env, home)
        found = replace(found, domain_id=domain_id)
    return found


def _profile_domain_id(env: Mapping[str, str], home: Path | None) -> str | None:
    """The profile's ``domain_id``, if a readable profile has one."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(_profile_path(env, home), encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return None
    return parser.get(PROFILE_SECTION, "domain_id", fallback=None) or None


def _load_secret(env: Mapping[str, str], home: Path | None) -> CredentialSources:
    project_id = env.get("HUAWEICLOUD_SDK_PROJECT_ID") or None
    iam_endpoint = env.get("HUAWEICLOUD_SDK_IAM_ENDPOINT") or env.get("TAGSWEEP_IAM_ENDPOINT")
    ak, sk = env.get("HUAWEICLOUD_SDK_AK"), env.get("HUAWEICLOUD_SDK_SK")
    if ak or sk:
        if not (ak and sk):
            raise CredentialsError("HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK must be set together")
        token = env.get("HUAWEICLOUD_SDK_SECURITY_TOKEN") or None
        return CredentialSources(AkSkCredentials(ak, sk, token), project_id, iam_endpoint)
    if env.get("TAGSWEEP_AUTH_TOKEN"):
        return CredentialSources(
            TokenCredentials(env["TAGSWEEP_AUTH_TOKEN"]), project_id, iam_endpoint
        )
    if env.get("TAGSWEEP_IAM_USER"):
        user, password = env["TAGSWEEP_IAM_USER"], env.get("TAGSWEEP_IAM_PASSWORD", "")
        domain = env.get("TAGSWEEP_IAM_DOMAIN") or user
        if not password:
            raise CredentialsError("TAGSWEEP_IAM_USER is set but TAGSWEEP_IAM_PASSWORD is not")
        return CredentialSources(
            PasswordCredentials(user, password, domain), project_id, iam_endpoint
        )
    profile = _profile_path(env, home)
    if profile.is_file():
        return _read_profile(profile, project_id, iam_endpoint)
    raise CredentialsError(
        "no credentials: set HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK, TAGSWEEP_AUTH_TOKEN, "
        f"or TAGSWEEP_IAM_USER and TAGSWEEP_IAM_PASSWORD, or write {profile}"
    )


def _profile_path(env: Mapping[str, str], home: Path | None) -> Path:
    if env.get("HUAWEICLOUD_SDK_CREDENTIALS_FILE"):
        return Path(env["HUAWEICLOUD_SDK_CREDENTIALS_FILE"])
    return (home or Path.home()) / ".huaweicloud" / "credentials"


def _read_profile(
    path: Path, project_id: str | None, iam_endpoint: str | None
) -> CredentialSources:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise CredentialsError(f"{path}: not a readable credentials profile ({exc})") from None
    if not parser.has_section(PROFILE_SECTION):
        raise CredentialsError(f"{path}: no [{PROFILE_SECTION}] section")
    section = parser[PROFILE_SECTION]
    ak, sk = section.get("ak", ""), section.get("sk", "")
    if not (ak and sk):
        raise CredentialsError(f"{path}: [{PROFILE_SECTION}] needs both ak and sk")
    return CredentialSources(
        AkSkCredentials(ak, sk, section.get("security_token") or None),
        project_id or section.get("project_id") or None,
        iam_endpoint or section.get("iam_endpoint") or None,
    )
