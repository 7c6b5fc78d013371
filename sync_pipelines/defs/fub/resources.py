"""The Follow Up Boss API as a Dagster resource. Per-account API keys live encrypted in bridge.credentials;
the system key comes from SYNC_FUB_SYSTEM_KEY (an EnvVar) or, offline, the sandbox's demo key."""

from __future__ import annotations

import os

import dagster as dg
import sqlalchemy as sa
from pydantic import Field

from sync_pipelines.defs.fub.client import DEFAULT_SYSTEM, SANDBOX_SYSTEM_KEY, FubClient
from sync_pipelines.lib import accounts
from sync_pipelines.lib.accounts import Account

DEFAULT_BASE_URL = "http://127.0.0.1:8900/fub"


class FubResource(dg.ConfigurableResource):
    """Follow Up Boss: base URL, the registered system and its key, and HTTP behaviour."""

    base_url: str = Field(default=DEFAULT_BASE_URL, description="https://api.followupboss.com or the sandbox's /fub")
    system: str = Field(default=DEFAULT_SYSTEM, description="X-System: the registered system name")
    system_key: str = Field(default=SANDBOX_SYSTEM_KEY, description="X-System-Key (secret); also signs FUB webhooks")
    timeout_seconds: float = Field(default=30.0, description="Read timeout of one request")
    max_attempts: int = Field(default=6, description="Attempts of one request on 5xx, timeouts and broken JSON")

    def client_for(self, engine: sa.Engine, account: Account) -> FubClient:
        api_key = accounts.secrets_for(engine, account.id)["api_key"]
        return FubClient(
            self.base_url,
            api_key,
            self.system,
            self.system_key,
            timeout=self.timeout_seconds,
            max_attempts=self.max_attempts,
        )


def fub_resource_from_env() -> FubResource:
    system_key: str | dg.EnvVar = (
        dg.EnvVar("SYNC_FUB_SYSTEM_KEY") if os.environ.get("SYNC_FUB_SYSTEM_KEY") else SANDBOX_SYSTEM_KEY
    )
    return FubResource(
        base_url=os.environ.get("SYNC_FUB_BASE_URL", DEFAULT_BASE_URL),
        system=os.environ.get("SYNC_FUB_SYSTEM", DEFAULT_SYSTEM),
        system_key=system_key,  # type: ignore[arg-type]
    )
