"""What the contract suite needs to know of each registered integration that its declaration does not say: how its
simulator hands out credentials, which entity is its big one, and how a webhook subscription is made there.
An integration joins the suite with one entry here; everything else comes from its declaration."""

from __future__ import annotations

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


SUBJECTS: dict[str, Subject] = {
    "fub": Subject(registry.INTEGRATIONS["fub"], scale=200, main="people", kill_scale=8_000,
                   subscribe=_subscribe_fub, change_one=_change_fub),
    "rezen": Subject(registry.INTEGRATIONS["rezen"], scale=60, main="transactions", kill_scale=8_000,
                     subscribe=_subscribe_rezen, change_one=_change_rezen),
}  # fmt: skip


def every_integration_has_a_subject() -> list[str]:
    """Registered integrations the suite does not cover (must be empty: a test says so)."""
    return sorted(set(registry.INTEGRATIONS) - set(SUBJECTS))
