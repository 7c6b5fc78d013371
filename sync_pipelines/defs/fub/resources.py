"""The Follow Up Boss API as a Dagster resource. Per-account API keys live encrypted in bridge.credentials; the base
URL and the system key come from SYNC_FUB_BASE_URL and SYNC_FUB_SYSTEM_KEY through Dagster's `EnvVar`, and fall back
on the sandbox's URL and demo key only in local mode (lib/modes.py)."""

from __future__ import annotations

import os

import dagster as dg
import sqlalchemy as sa
from pydantic import Field

from sync_pipelines.defs.fub.client import DEFAULT_SYSTEM, SANDBOX_SYSTEM_KEY, FubClient
from sync_pipelines.defs.fub.declaration import BASE_URL, DEFAULT_BASE_URL, SYSTEM_KEY
from sync_pipelines.lib import accounts, modes
from sync_pipelines.lib.accounts import Account


class FubResource(dg.ConfigurableResource):
    """Follow Up Boss: base URL, the registered system and its key, and HTTP behaviour."""

    base_url: str = Field(default=DEFAULT_BASE_URL, description="https://api.followupboss.com or the sandbox's /fub")
    system: str = Field(default=DEFAULT_SYSTEM, description="X-System: the registered system name")
    # The default serves tests and the sandbox built explicitly; the configured resource (fub_resource_from_env)
    # never falls back on it in production.
    system_key: str = Field(default=SANDBOX_SYSTEM_KEY, description="X-System-Key (secret); also signs FUB webhooks")
    timeout_seconds: float = Field(default=30.0, description="Read timeout of one request")
    max_attempts: int = Field(default=6, description="Attempts of one request on 5xx, timeouts and broken JSON")

    def client_for(self, engine: sa.Engine, account: Account) -> FubClient:
        api_key = accounts.secrets_for(engine, account.id)["api_key"]
        return FubClient(
            modes.resolve(self.base_url),
            api_key,
            self.system,
            modes.resolve(self.system_key),
            timeout=self.timeout_seconds,
            max_attempts=self.max_attempts,
        )


def fub_resource_from_env() -> FubResource:
    return FubResource(
        base_url=modes.configured(BASE_URL),
        system=os.environ.get("SYNC_FUB_SYSTEM", DEFAULT_SYSTEM),
        system_key=modes.configured(SYSTEM_KEY),
    )
