"""Why Redis cannot be reached, in words an operator can act on; and the TLS options a URL may carry."""

from __future__ import annotations

import os
import ssl
from urllib.parse import parse_qs, urlsplit

from .sentinel import refused_by_sentinels

TLS_SCHEME = "rediss://"
SENTINEL_SCHEME = "redis+sentinel://"
TLS_ONLY_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")


def check_tls_options(url: str) -> None:
    """ValueError when a URL's TLS options cannot work: on a plain `redis://` URL, or a file not there."""
    options = parse_qs(urlsplit(url).query)
    for name in TLS_ONLY_OPTIONS:
        if name not in options:
            continue
        if url.startswith(SENTINEL_SCHEME):
            raise ValueError(f"{name}: TLS behind Sentinel is not supported; use {TLS_SCHEME}HOST:PORT/DB")
        if not url.startswith(TLS_SCHEME):
            raise ValueError(f"{name} needs TLS: start the URL with {TLS_SCHEME}")
        path = options[name][-1]
        if not os.access(path, os.R_OK) or not os.path.isfile(path):
            raise ValueError(f"{name}: no readable file at {path}")


def not_trusted(exc: BaseException) -> bool:
    """True when the failure is this process not trusting Redis's TLS certificate."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def explain(exc: BaseException, tls: bool, answered_before: bool = False) -> tuple[str, bool]:
    """(why Redis is unreachable, whether it is a setup mistake that waiting will not fix).

    `answered_before`: this process has had an answer, so a dropped connection is an outage, not
    a plain-text client at a TLS-only port."""
    detail = str(exc)
    sentinels_said = refused_by_sentinels(exc)
    if sentinels_said:
        return sentinels_said, True
    if not_trusted(exc) and "mismatch" in detail:
        return (
            f"Redis's TLS certificate does not name the host in REDIS_URL ({detail}); use a name it "
            "lists, or reissue it with that name in its subjectAltName",
            True,
        )
    if not_trusted(exc):
        return (
            f"Redis's TLS certificate is not trusted ({detail}); REDIS_URL must name the CA that "
            "signed it: rediss://HOST:PORT/DB?ssl_ca_certs=PATH",
            True,
        )
    if not tls and not answered_before and ("reset by peer" in detail or "closed by server" in detail):
        return f"{detail} (if this Redis speaks only TLS, the URL must start with {TLS_SCHEME})", False
    return detail, False
