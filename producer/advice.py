"""What ``tagsweep doctor`` tells a user to do when a check fails, in one place: the options,
variables and console pages named here change with the cloud's console and tagsweep's options,
not with the checks (``producer.doctor``) that pick them."""

from __future__ import annotations

from worker.cloud.credentials import AkSkCredentials, Credentials, PasswordCredentials

NTP = "set this machine's clock right (NTP: timedatectl set-ntp true, or chronyc makestep)"
IAM = "check TAGSWEEP_IAM_ENDPOINT (or HUAWEICLOUD_SDK_IAM_ENDPOINT, the profile's iam_endpoint)"
NO_PROJECT = (
    "give --project-id or set HUAWEICLOUD_SDK_PROJECT_ID "
    "(IAM console, My Credentials, Projects: the region's project)"
)
WRONG_PROJECT = (
    "use a project id this account holds in this region, the same as the credentials' "
    "(IAM console, My Credentials, Projects)"
)
NO_REGION = "give --region (TAGSWEEP_REGION) or --endpoint"
OTHER_REGION = "give the region of the project, or drop --endpoint"
NO_TMS_ENDPOINT = "give --tms-endpoint (env TAGSWEEP_TMS_ENDPOINT)"
NO_DOMAIN = (
    "give --domain-id (env HUAWEICLOUD_SDK_DOMAIN_ID, or domain_id in the credentials "
    "profile): IAM console, My Credentials, Account ID"
)
TMS_NEEDS_AKSK = "use AK/SK credentials, or --api v1"
TMS_WITHOUT_IMS = "use --api v1 (auto sends everything through IMS), or --tms-resource-type TYPE"
THROTTLED = "its allowance is spent: try later"

# By what went wrong with a service's read: no answer, a refusal of permission, an answer that
# is not the service's, the account id refused (TMS).
IMS = {
    "transport": "check --endpoint or --region (TAGSWEEP_ENDPOINT), DNS, proxy and firewall",
    "forbidden": "the user needs IMS permissions (an IAM policy granting IMS access)",
    "other": "is this IMS's endpoint? check --endpoint",
}
TMS = {
    "transport": "check --tms-endpoint (TAGSWEEP_TMS_ENDPOINT), DNS, proxy and firewall",
    "forbidden": "the user needs TMS permissions (an IAM policy granting TMS access), "
    "or use --api v1",
    "other": "is this TMS's endpoint? check --tms-endpoint",
    "account": "--domain-id must be these credentials' account id "
    "(IAM console, My Credentials, Account ID)",
}


def credentials(found: Credentials) -> str:
    """What to check when the gateway or IAM refused these credentials."""
    if isinstance(found, AkSkCredentials):
        return (
            "check HUAWEICLOUD_SDK_AK and _SK (or the profile): the SK must be this AK's, and "
            "a temporary AK needs its HUAWEICLOUD_SDK_SECURITY_TOKEN (5 bad signatures lock "
            "the AK for 5 minutes)"
        )
    if isinstance(found, PasswordCredentials):
        return "check TAGSWEEP_IAM_USER, _PASSWORD and _DOMAIN (the account name)"
    return "the token may have expired: get a new one, or use AK/SK"
