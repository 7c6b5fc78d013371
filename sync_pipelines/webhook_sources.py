"""Webhook signatures of the sources whose webhooks the receiver takes before they are declared on the integration
kit (a declared integration carries its own verifier: defs/<integration>/). Each is the scheme the source documents,
or the one its simulator implements where none is published (docs/integrations/<source>.md)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from sync_pipelines.defs.stripe import webhooks as _stripe
from sync_pipelines.lib.webhooks import header

# Stripe is declared on the kit: its verifier is defs/stripe/webhooks.py. This name stays only while the receiver's
# list of pre-kit sources (webhooks_app.INTEGRATIONS) still names it; the declared entry overrides that one.
verify_stripe = _stripe.verify


def _hex_equal(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.strip().lower().encode())


def verify_dotloop(body: bytes, headers: Mapping[str, str], secret: str) -> bool:
    """X-DOTLOOP-SIGNATURE: hex HMAC-SHA1 of the raw body with the subscription's signing key."""
    given = header(headers, "X-DOTLOOP-SIGNATURE")
    expected = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    return bool(given and secret) and _hex_equal(expected, given)


VERIFIERS = {
    "dotloop": verify_dotloop,
}
