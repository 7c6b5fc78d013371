"""Webhook signatures of the sources whose webhooks the receiver takes before they are declared on the integration
kit (a declared integration carries its own verifier: defs/<integration>/). Each is the scheme the source documents,
or the one its simulator implements where none is published (docs/integrations/<source>.md)."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

from sync_pipelines.lib.webhooks import header

# Stripe's default tolerance: a signed timestamp older than this is a replay.
STRIPE_TOLERANCE_SECONDS = 300


def _hex_equal(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.strip().lower().encode())


def verify_stripe(
    body: bytes,
    headers: Mapping[str, str],
    secret: str,
    *,
    tolerance: int = STRIPE_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """Stripe-Signature `t=<unix>,v1=<hex>[,v1=...]`: HMAC-SHA256 over "t.body"; any v1 may match; the
    timestamp must be within `tolerance` seconds of now (replay protection)."""
    given = header(headers, "Stripe-Signature")
    if not given or not secret:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for part in given.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    matched = False
    for candidate in candidates:  # no early exit: every candidate is compared
        matched |= _hex_equal(expected, candidate)
    return matched


def verify_dotloop(body: bytes, headers: Mapping[str, str], secret: str) -> bool:
    """X-DOTLOOP-SIGNATURE: hex HMAC-SHA1 of the raw body with the subscription's signing key."""
    given = header(headers, "X-DOTLOOP-SIGNATURE")
    expected = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    return bool(given and secret) and _hex_equal(expected, given)


VERIFIERS = {
    "stripe": verify_stripe,
    "dotloop": verify_dotloop,
}
