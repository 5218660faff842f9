"""What TMS takes, apart from its client (the command line batches by these rules and must
not import aiohttp to start): its endpoints by region, its per-call limits, its key rules, and
the names it gives IMS. Facts: docs/ims-api.md, TMS."""

from __future__ import annotations

import re
from collections.abc import Mapping

# The SDK's region map (huaweicloudsdktms 3.1.219, v1/region/tms_region.py): the first
# endpoint of each region. A region it does not list needs --tms-endpoint.
TMS_ENDPOINTS: Mapping[str, str] = {
    "cn-north-4": "https://tms.myhuaweicloud.com",
    "ap-southeast-1": "https://tms-intl.myhuaweicloud.com",
    "eu-west-101": "https://tms.eu-west-101.myhuaweicloud.eu",
    "ru-moscow-1": "https://tms.ru-moscow-1.myhuaweicloud.com",
    "my-kualalumpur-1": "https://tms.my-kualalumpur-1.myhuaweicloud.com",
}
# The SDKs' docstrings say 20 resources a call, the web pages 50: 20 is what both allow.
MAX_RESOURCES = 20
MAX_KEYS = 10
# Keys TMS takes: 1 to 36 letters, digits, "-", "_" (and "@" on OTC). IMS takes up to 127
# characters of anything, so the other keys go through IMS, image by image.
_TMS_KEY = re.compile(r"[A-Za-z0-9_@-]{1,36}")
# The provider whose resource types are IMS's, and the type expected for its images.
IMS_PROVIDER = "ims"
EXPECTED_IMAGE_TYPE = "private_image"


def tms_endpoint(region: str, override: str | None = None) -> str | None:
    """TMS's base URL: an explicit one, else the region's as the SDK maps it (None: unknown)."""
    if override:
        return override.rstrip("/")
    return TMS_ENDPOINTS.get(region)


def tms_takes_key(key: str) -> bool:
    """Whether TMS accepts ``key`` (its key rules are stricter than IMS's)."""
    return _TMS_KEY.fullmatch(key) is not None
