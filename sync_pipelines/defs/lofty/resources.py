"""The Lofty API as a Dagster resource. Each account's API key (and the secret its webhook callback URLs carry)
lives encrypted in bridge.credentials; nothing here defaults a secret."""

from __future__ import annotations

import dagster as dg
import sqlalchemy as sa
from pydantic import Field

from sync_pipelines.defs.lofty.client import DEFAULT_BASE_URL, LoftyClient
from sync_pipelines.defs.lofty.declaration import BASE_URL
from sync_pipelines.lib import accounts, modes
from sync_pipelines.lib.accounts import Account
from sync_pipelines.lib.errors import OperatorError


class LoftyResource(dg.ConfigurableResource):
    """Lofty: the API's base URL (`/v1.0/...` and `/v2.0/...` under it) and HTTP behaviour."""

    base_url: str = Field(default=DEFAULT_BASE_URL, description="https://api.lofty.com or the sandbox's /lofty")
    timeout_seconds: float = Field(default=30.0, description="Read timeout of one request")
    max_attempts: int = Field(default=6, description="Attempts of one request on 5xx, timeouts and broken JSON")

    def client_for(self, engine: sa.Engine, account: Account) -> LoftyClient:
        api_key = accounts.secrets_for(engine, account.id).get("api_key")
        if not api_key:
            raise OperatorError(
                f"lofty account {account.name}: no api_key stored; run `sync-pipelines accounts add lofty --name "
                f"{account.name} --secret api_key=<the team's Lofty API key>`"
            )
        return LoftyClient(
            modes.resolve(self.base_url), api_key, timeout=self.timeout_seconds, max_attempts=self.max_attempts
        )


def lofty_resource_from_env() -> LoftyResource:
    # An EnvVar, read when a run starts; the sandbox's URL only in local mode with SYNC_LOFTY_BASE_URL unset.
    return LoftyResource(base_url=modes.configured(BASE_URL))


def sandbox_resource(root: str) -> LoftyResource:
    """The built-in sandbox serves Lofty under `<root>/lofty`."""
    return LoftyResource(base_url=f"{root}/lofty")
