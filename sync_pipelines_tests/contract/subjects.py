"""What the contract suite needs to know of each registered integration that its declaration does not say: how its
simulator hands out credentials, which entity is its big one, and how a webhook subscription is made there.
An integration joins the suite with one entry here; everything else comes from its declaration."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from sync_pipelines import registry
from sync_pipelines.lib.integration.declaration import Integration


@dataclass(frozen=True)
class Subject:
    integration: Integration
    scale: int  # small: the suite runs for every integration on every `make test`
    main: str  # the entity with the most records: faults, the DLQ, the kill, reconciliation
    kill_scale: int  # enough of `main` for several 2,000-record batches
    # (simulator, receiver URL, account name) -> the secrets to store beside the API key for webhooks to verify
    subscribe: Callable[[Any, str, str], dict[str, str]] | None = None
    # (simulator, account name) -> the source id of a record of `main` to change, and how it is changed
    change_one: Callable[[Any, str], str] | None = None
    # (simulator, account name) -> the secrets `accounts add` would store; default: the simulator's credentials
    account_secrets: Callable[[Any, str], dict[str, str]] | None = None

    @property
    def name(self) -> str:
        return self.integration.name

    def secrets(self, simulator: Any, account: str) -> dict[str, str]:
        if self.account_secrets is not None:
            return self.account_secrets(simulator, account)
        given = simulator.credentials()["accounts"][account]
        return dict(given) if isinstance(given, dict) else {"api_key": given}


def _subscribe_fub(simulator: Any, receiver: str, account: str) -> dict[str, str]:
    from sync_pipelines.defs.fub.client import DEFAULT_SYSTEM, SANDBOX_SYSTEM_KEY

    key = simulator.credentials()["accounts"][account]
    for event in ("peopleUpdated", "peopleCreated", "peopleDeleted"):
        response = requests.post(
            f"{simulator.base_url}/v1/webhooks",
            json={"event": event, "url": f"{receiver}/webhooks/fub/{account}"},
            auth=(key, ""),
            headers={"X-System": DEFAULT_SYSTEM, "X-System-Key": SANDBOX_SYSTEM_KEY},
            timeout=10,
        )
        assert response.status_code == 201, response.text
    return {}  # FUB signs with the system key the resource already has


def _change_fub(simulator: Any, account: str) -> str:
    return str(simulator.mutate(account, "people", updates=1, update_ids=[5])["updated"][0])


def _subscribe_rezen(simulator: Any, receiver: str, account: str) -> dict[str, str]:
    key = simulator.credentials()["accounts"][account]["api_key"]
    response = requests.post(
        f"{simulator.base_url}/arrakis/api/v1/webhooks",
        json={"url": f"{receiver}/webhooks/rezen/{account}"},
        headers={"X-API-KEY": key},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return {"webhook_secret": response.json()["secret"]}  # shown once, stored encrypted with the account


def _change_rezen(simulator: Any, account: str) -> str:
    return str(simulator.mutate(account, "transactions", updates=1)["updated"][0])


def _secrets_dotloop(simulator: Any, account: str) -> dict[str, str]:
    from sync_pipelines.defs.dotloop.resources import sandbox_resource

    # What `accounts add dotloop --secret code=...` stores: the sandbox's fresh code for the user, exchanged.
    given = simulator.credentials()["accounts"][account]
    connect = registry.INTEGRATIONS["dotloop"].connect
    assert connect is not None
    return connect(sandbox_resource(simulator.sandbox.base_url), given)


def _subscribe_dotloop(simulator: Any, receiver: str, account: str) -> dict[str, str]:
    credentials = simulator.credentials()
    token = requests.post(
        f"{simulator.base_url}/oauth/token",
        auth=(credentials["client_id"], credentials["client_secret"]),
        data={"grant_type": "authorization_code", "code": credentials["accounts"][account]["code"]},
        timeout=10,
    ).json()["access_token"]
    signing_key = secrets.token_hex(16)
    response = requests.post(
        f"{simulator.base_url}/public/v2/subscription",
        json={"targetType": "USER", "targetId": credentials["users"][account]["account_id"],
              "url": f"{receiver}/webhooks/dotloop/{account}", "signingKey": signing_key, "externalId": account,
              "eventTypes": ["LOOP_CREATED", "LOOP_UPDATED", "LOOP_MERGED", "LOOP_PARTICIPANT_CREATED",
                             "LOOP_PARTICIPANT_UPDATED", "LOOP_PARTICIPANT_DELETED", "CONTACT_CREATED",
                             "CONTACT_UPDATED", "CONTACT_DELETED"]},
        headers={"Authorization": f"Bearer {token}"}, timeout=10,
    )  # fmt: skip
    assert response.status_code == 201, response.text
    return {"webhook_secret": signing_key}  # we chose it; stored encrypted with the account's tokens


def _change_dotloop(simulator: Any, account: str) -> str:
    return str(simulator.mutate(account, "loops", updates=1)["updated"][0])


def _subscribe_lofty(simulator: Any, receiver: str, account: str) -> dict[str, str]:
    from sync_pipelines.defs.lofty.webhooks import LISTS, callback_url

    key = simulator.credentials()["accounts"][account]
    secret = secrets.token_hex(16)  # what `accounts add lofty` generates; the URLs carry tokens derived from it
    for list_id in LISTS:
        response = requests.post(
            f"{simulator.base_url}/v1.0/webhook",
            json={"listId": list_id, "callbackUrl": callback_url(receiver, account, secret, list_id), "limit": 100},
            headers={"Authorization": f"token {key}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
    return {"webhook_secret": secret}


def _change_lofty(simulator: Any, account: str) -> str:
    lead = simulator.teams[account].spec.lead_base + 5
    return str(simulator.mutate(account, "leads", updates=1, update_ids=[lead])["updated"][0])


def _subscribe_stripe(simulator: Any, receiver: str, account: str) -> dict[str, str]:
    key = simulator.credentials()["accounts"][account]
    response = requests.post(
        f"{simulator.base_url}/v1/webhook_endpoints",
        data={"url": f"{receiver}/webhooks/stripe/{account}", "enabled_events[]": "*"},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return {"webhook_secret": response.json()["secret"]}  # shown once, stored encrypted with the account


def _change_stripe(simulator: Any, account: str) -> str:
    return str(simulator.mutate(account, "invoices", updates=1)["updated"][0])


SUBJECTS: dict[str, Subject] = {
    "fub": Subject(registry.INTEGRATIONS["fub"], scale=200, main="people", kill_scale=8_000,
                   subscribe=_subscribe_fub, change_one=_change_fub),
    "rezen": Subject(registry.INTEGRATIONS["rezen"], scale=60, main="transactions", kill_scale=8_000,
                     subscribe=_subscribe_rezen, change_one=_change_rezen),
    "skyslope": Subject(registry.INTEGRATIONS["skyslope"], scale=200, main="sales", kill_scale=8_000),
    "dotloop": Subject(registry.INTEGRATIONS["dotloop"], scale=60, main="loops", kill_scale=8_000,
                       subscribe=_subscribe_dotloop, change_one=_change_dotloop, account_secrets=_secrets_dotloop),
    "lofty": Subject(registry.INTEGRATIONS["lofty"], scale=200, main="leads", kill_scale=8_000,
                     subscribe=_subscribe_lofty, change_one=_change_lofty),
    "stripe": Subject(registry.INTEGRATIONS["stripe"], scale=100, main="invoices", kill_scale=5_000,
                      subscribe=_subscribe_stripe, change_one=_change_stripe),
}  # fmt: skip


def every_integration_has_a_subject() -> list[str]:
    """Registered integrations the suite does not cover (must be empty: a test says so)."""
    return sorted(set(registry.INTEGRATIONS) - set(SUBJECTS))
