"""Webhook signatures of the sources received before they join the integration kit."""

from __future__ import annotations

import hashlib
import hmac
import time

from sync_pipelines import webhook_sources

BODY = b'{"id":"evt_1","type":"customer.updated"}'


def test_stripe_signature_any_v1_matches_within_five_minutes() -> None:
    t = int(time.time())
    mac = hmac.new(b"whsec_x", f"{t}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert webhook_sources.verify_stripe(BODY, {"Stripe-Signature": f"t={t},v1={mac}"}, "whsec_x")
    assert webhook_sources.verify_stripe(BODY, {"Stripe-Signature": f"t={t},v1={'0' * 64},v1={mac},v0=zz"}, "whsec_x")
    assert not webhook_sources.verify_stripe(BODY, {"Stripe-Signature": f"t={t},v1={mac}"}, "whsec_y")
    assert not webhook_sources.verify_stripe(BODY, {"Stripe-Signature": f"t={t + 1},v1={mac}"}, "whsec_x")
    assert not webhook_sources.verify_stripe(BODY, {"Stripe-Signature": f"v1={mac}"}, "whsec_x")
    assert not webhook_sources.verify_stripe(BODY, {"Stripe-Signature": "t=abc,v1=00"}, "whsec_x")
    old = t - 301
    stale = hmac.new(b"whsec_x", f"{old}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert not webhook_sources.verify_stripe(BODY, {"Stripe-Signature": f"t={old},v1={stale}"}, "whsec_x")
    assert webhook_sources.verify_stripe(BODY, {"Stripe-Signature": f"t={old},v1={stale}"}, "whsec_x", now=old + 10)


def test_dotloop_signatures() -> None:
    sha1 = hmac.new(b"k", BODY, hashlib.sha1).hexdigest()
    sha256 = hmac.new(b"k", BODY, hashlib.sha256).hexdigest()
    assert webhook_sources.verify_dotloop(BODY, {"X-DOTLOOP-SIGNATURE": sha1}, "k")
    assert not webhook_sources.verify_dotloop(BODY, {"X-DOTLOOP-SIGNATURE": sha256}, "k")
