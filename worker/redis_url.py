"""The Redis URL as users write it (``REDIS_URL``): its TLS options in either library's
spelling, and one line naming the fix in it when Redis cannot be used.

Celery's documentation spells the certificate check ``?ssl_cert_reqs=CERT_REQUIRED`` (kombu
and Celery's result backend accept that and ``required``); redis-py accepts only ``required``,
``optional`` or ``none`` and refuses the rest ("Invalid SSL Certificate Requirements Flag").
Every URL a redis-py client is made from goes through ``client_url``, so both spellings work
everywhere. A server certificate signed by a private CA is trusted with ``ssl_ca_certs=PATH``,
which redis-py and kombu both read from the URL.
"""

from __future__ import annotations

import re

# Celery's names of the certificate check (any case) -> redis-py's.
_CERT_REQS = re.compile(r"(?i)([?&]ssl_cert_reqs=)cert_(required|optional|none)(?=&|#|$)")
# What to write in REDIS_URL, for the messages below.
TLS_FIX = "rediss://HOST:PORT/0?ssl_cert_reqs=required&ssl_ca_certs=/path/to/ca.pem"
PASSWORD_FIX = "redis://:PASSWORD@HOST:PORT/0 (rediss:// for TLS)"


def client_url(url: str) -> str:
    """``url`` with ``ssl_cert_reqs=CERT_REQUIRED`` (Celery's spelling) in redis-py's
    (``required``); anything else is left as it is."""
    return _CERT_REQS.sub(lambda found: found[1] + found[2].lower(), url)


def redis_problem(exc: BaseException) -> str:
    """Why Redis could not be used, in one line that names the fix in ``REDIS_URL`` when there
    is one (a CA to trust, a password to give); the first line of the error otherwise."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    lowered = text.lower()
    if "certificate_verify_failed" in lowered:
        detail = first.split("certificate verify failed:")[-1].split("(_ssl.c")[0].strip(" .")
        return (
            f"its TLS certificate is not trusted ({detail}); name the CA that signed it in "
            f"REDIS_URL with ssl_ca_certs: {TLS_FIX}"
        )
    if any(sign in lowered for sign in ("noauth", "authentication required", "hello must be")):
        return f"this Redis wants a password; put it in REDIS_URL: {PASSWORD_FIX}"
    if "wrongpass" in lowered or "invalid username-password" in lowered:
        return f"Redis refused the user or password in REDIS_URL ({first.rstrip('.')})"
    if "ssl certificate requirements" in lowered:
        return f"{first}; in REDIS_URL, ssl_cert_reqs is required, optional or none"
    return first
