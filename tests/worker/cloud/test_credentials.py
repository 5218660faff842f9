"""Credentials follow the Huawei SDK conventions and never show a secret in a repr."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.cloud.credentials import (
    AkSkCredentials,
    PasswordCredentials,
    TokenCredentials,
    load_credentials,
)
from worker.errors import CredentialsError


def test_aksk_from_the_sdk_environment_variables() -> None:
    found = load_credentials(
        {
            "HUAWEICLOUD_SDK_AK": "AK1",
            "HUAWEICLOUD_SDK_SK": "SK1",
            "HUAWEICLOUD_SDK_SECURITY_TOKEN": "ST1",
            "HUAWEICLOUD_SDK_PROJECT_ID": "p1",
        },
        home=Path("/nonexistent"),
    )
    assert found.credentials == AkSkCredentials("AK1", "SK1", "ST1")
    assert found.project_id == "p1"


def test_the_profile_file_is_read_when_the_environment_has_nothing(tmp_path: Path) -> None:
    profile = tmp_path / ".huaweicloud" / "credentials"
    profile.parent.mkdir()
    profile.write_text(
        "[basic]\nak = AK2\nsk = SK2\nproject_id = p2\niam_endpoint = https://iam.x\n"
    )
    found = load_credentials({}, home=tmp_path)
    assert found.credentials == AkSkCredentials("AK2", "SK2")
    assert (found.project_id, found.iam_endpoint) == ("p2", "https://iam.x")


def test_the_profile_path_can_be_set_by_environment(tmp_path: Path) -> None:
    profile = tmp_path / "creds.ini"
    profile.write_text("[basic]\nak = AK3\nsk = SK3\n")
    found = load_credentials({"HUAWEICLOUD_SDK_CREDENTIALS_FILE": str(profile)})
    assert found.credentials == AkSkCredentials("AK3", "SK3")


def test_token_and_password_credentials_from_the_environment() -> None:
    token = load_credentials({"TAGSWEEP_AUTH_TOKEN": "MIItoken"}, home=Path("/nonexistent"))
    assert token.credentials == TokenCredentials("MIItoken")
    password = load_credentials(
        {"TAGSWEEP_IAM_USER": "u", "TAGSWEEP_IAM_PASSWORD": "pw", "TAGSWEEP_IAM_DOMAIN": "d"},
        home=Path("/nonexistent"),
    )
    assert password.credentials == PasswordCredentials("u", "pw", "d")


@pytest.mark.parametrize(
    "env",
    [{}, {"HUAWEICLOUD_SDK_AK": "only-ak"}, {"TAGSWEEP_IAM_USER": "u"}],
)
def test_missing_or_partial_credentials_are_a_clear_error(env: dict[str, str]) -> None:
    with pytest.raises(CredentialsError):
        load_credentials(env, home=Path("/nonexistent"))


def test_a_profile_without_sk_is_a_clear_error(tmp_path: Path) -> None:
    profile = tmp_path / "creds.ini"
    profile.write_text("[basic]\nak = AK3\n")
    with pytest.raises(CredentialsError, match="needs both ak and sk"):
        load_credentials({"HUAWEICLOUD_SDK_CREDENTIALS_FILE": str(profile)})


def test_no_secret_appears_in_a_repr() -> None:
    shown = repr(
        [
            AkSkCredentials("AKVISIBLE", "SECRET-SK", "SECRET-ST"),
            TokenCredentials("SECRET-TOKEN"),
            PasswordCredentials("user", "SECRET-PW", "dom"),
        ]
    )
    assert "SECRET" not in shown
    assert "AKVISIBLE" in shown
    assert "SECRET" not in TokenCredentials("SECRET-TOKEN").identity
