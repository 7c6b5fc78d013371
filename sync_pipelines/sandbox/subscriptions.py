"""Webhook subscriptions made on a served sandbox, the way each source's API makes them, so that a change in the
sandbox reaches a webhook receiver (`make dev`, the demo). Each recipe returns the secrets the account must store
for the receiver to verify what that source signs (a secret the source shows once, or one we chose).

A simulator without a recipe here is served without webhook subscriptions: its changes reach core by the delta
schedule only. Adding a source's recipe is one function and one line in RECIPES.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import requests

TIMEOUT = 10

Recipe = Callable[[Any, str, str], dict[str, str]]


class SubscriptionRefused(RuntimeError):
    """The simulator refused a subscription; the message says which source, account and why."""


def _check(response: requests.Response, source: str, account: str) -> requests.Response:
    if response.status_code != 201:
        raise SubscriptionRefused(f"{source} sandbox refused the webhook subscription of {account}: "
                                  f"HTTP {response.status_code} {response.text[:200]}")  # fmt: skip
    return response


_FUB_KINDS = ("people", "deals", "calls", "textMessages", "appointments", "events", "stage")


def _fub(simulator: Any, target: str, account: str) -> dict[str, str]:
    credentials = simulator.credentials()
    key = credentials["accounts"][account]
    system = {"X-System": credentials["system"], "X-System-Key": credentials["system_key"]}
    mine = requests.get(f"{simulator.base_url}/v1/webhooks", auth=(key, ""), headers=system, timeout=TIMEOUT)
    held = {(w["event"], w["url"]) for w in mine.json().get("webhooks", [])} if mine.ok else set()
    for event in (f"{kind}{action}" for kind in _FUB_KINDS for action in ("Created", "Updated", "Deleted")):
        if (event, target) in held:
            continue
        response = requests.post(f"{simulator.base_url}/v1/webhooks", json={"event": event, "url": target},
                                 auth=(key, ""), headers=system, timeout=TIMEOUT)  # fmt: skip
        _check(response, "fub", account)
    return {}  # FUB signs with the system key every FUB resource already holds


def _rezen(simulator: Any, target: str, account: str) -> dict[str, str]:
    key = simulator.credentials()["accounts"][account]["api_key"]
    response = _check(
        requests.post(f"{simulator.base_url}/arrakis/api/v1/webhooks", json={"url": target},
                      headers={"X-API-KEY": key}, timeout=TIMEOUT),
        "rezen", account,
    )  # fmt: skip
    return {"webhook_secret": response.json()["secret"]}  # shown once: stored encrypted with the account


def _dotloop(simulator: Any, target: str, account: str) -> dict[str, str]:
    credentials = simulator.credentials()
    token = requests.post(
        f"{simulator.base_url}/oauth/token",
        auth=(credentials["client_id"], credentials["client_secret"]),
        data={"grant_type": "authorization_code", "code": credentials["accounts"][account]["code"]},
        timeout=TIMEOUT,
    ).json()["access_token"]
    # We choose the signing key; derived from the target so that subscribing again keeps it.
    signing_key = hashlib.sha256(f"sync_pipelines:{target}".encode()).hexdigest()[:32]
    _check(
        requests.post(
            f"{simulator.base_url}/public/v2/subscription",
            json={"targetType": "USER", "targetId": credentials["users"][account]["account_id"], "url": target,
                  "signingKey": signing_key, "externalId": account,
                  "eventTypes": ["LOOP_CREATED", "LOOP_UPDATED", "LOOP_MERGED", "LOOP_PARTICIPANT_CREATED",
                                 "LOOP_PARTICIPANT_UPDATED", "LOOP_PARTICIPANT_DELETED", "CONTACT_CREATED",
                                 "CONTACT_UPDATED", "CONTACT_DELETED"]},
            headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT,
        ),
        "dotloop", account,
    )  # fmt: skip
    return {"webhook_secret": signing_key}


def _lofty(simulator: Any, target: str, account: str) -> dict[str, str]:
    from sync_pipelines.defs.lofty.webhooks import LISTS, TOKEN_PARAM, subscription_token

    key = simulator.credentials()["accounts"][account]
    headers = {"Authorization": f"token {key}"}
    # Lofty signs nothing: the callback URL carries a token per list, derived from a secret we choose (here from the
    # target, so that subscribing again keeps it).
    secret = hashlib.sha256(f"sync_pipelines:{target}".encode()).hexdigest()[:32]
    mine = requests.get(f"{simulator.base_url}/v1.0/webhooks", headers=headers, timeout=TIMEOUT)
    held = {w["callbackUrl"] for w in mine.json()} if mine.ok else set()
    for list_id in LISTS:
        url = f"{target}?{TOKEN_PARAM}={subscription_token(secret, list_id)}"
        if url in held:
            continue
        response = requests.post(f"{simulator.base_url}/v1.0/webhook", json={"listId": list_id, "callbackUrl": url},
                                 headers=headers, timeout=TIMEOUT)  # fmt: skip
        if response.status_code != 200:
            raise SubscriptionRefused(f"lofty sandbox refused the webhook subscription of {account}: "
                                      f"HTTP {response.status_code} {response.text[:200]}")  # fmt: skip
    return {"webhook_secret": secret}


def _stripe(simulator: Any, target: str, account: str) -> dict[str, str]:
    key = simulator.credentials()["accounts"][account]
    headers = {"Authorization": f"Bearer {key}"}
    # The endpoint's secret is shown once, at creation: an endpoint made earlier for the same target is replaced.
    held = requests.get(f"{simulator.base_url}/v1/webhook_endpoints", params={"limit": 100}, headers=headers,
                        timeout=TIMEOUT)  # fmt: skip
    for endpoint in held.json().get("data", []) if held.ok else []:
        if endpoint.get("url") == target:
            requests.delete(f"{simulator.base_url}/v1/webhook_endpoints/{endpoint['id']}", headers=headers,
                            timeout=TIMEOUT)  # fmt: skip
    response = requests.post(
        f"{simulator.base_url}/v1/webhook_endpoints",
        data={"url": target, "enabled_events[]": "*"},
        headers=headers,
        timeout=TIMEOUT,
    )
    if response.status_code != 200:
        raise SubscriptionRefused(f"stripe sandbox refused the webhook endpoint of {account}: "
                                  f"HTTP {response.status_code} {response.text[:200]}")  # fmt: skip
    return {"webhook_secret": response.json()["secret"]}


RECIPES: dict[str, Recipe] = {"fub": _fub, "rezen": _rezen, "dotloop": _dotloop, "lofty": _lofty, "stripe": _stripe}


def subscribe(simulator: Any, receiver_url: str, account: str) -> dict[str, str] | None:
    """Subscribe `account` of `simulator` to `<receiver_url>/webhooks/<source>/<account>`; the secrets to store with
    the account, or None when this source has no recipe (it is served without webhooks)."""
    recipe = RECIPES.get(simulator.name)
    if recipe is None:
        return None
    return recipe(simulator, f"{receiver_url.rstrip('/')}/webhooks/{simulator.name}/{account}", account)
