"""The reZEN API as a Dagster resource: the two hosts (arrakis for transactions and revenue share, yenta for
agents, network and teams) and HTTP behaviour. Per-account API keys live encrypted in bridge.credentials; the hosts
come from SYNC_REZEN_ARRAKIS_URL and SYNC_REZEN_YENTA_URL (the sandbox's only in local mode)."""

from __future__ import annotations

import dagster as dg
import sqlalchemy as sa
from pydantic import Field

from sync_pipelines.defs.rezen.client import DEFAULT_ARRAKIS_URL, DEFAULT_YENTA_URL, RezenClient
from sync_pipelines.defs.rezen.declaration import ARRAKIS_URL, YENTA_URL
from sync_pipelines.lib import accounts, modes
from sync_pipelines.lib.accounts import Account


class RezenResource(dg.ConfigurableResource):
    """reZEN: the arrakis and yenta base URLs and HTTP behaviour."""

    arrakis_url: str = Field(default=DEFAULT_ARRAKIS_URL, description="https://arrakis.therealbrokerage.com/api/v1")
    yenta_url: str = Field(default=DEFAULT_YENTA_URL, description="https://yenta.therealbrokerage.com/api/v1")
    timeout_seconds: float = Field(default=30.0, description="Read timeout of one request")
    max_attempts: int = Field(default=6, description="Attempts of one request on 5xx, timeouts and broken JSON")

    def client_for(self, engine: sa.Engine, account: Account) -> RezenClient:
        secrets = accounts.secrets_for(engine, account.id)
        return RezenClient(
            modes.resolve(self.arrakis_url),
            modes.resolve(self.yenta_url),
            secrets["api_key"],
            secrets.get("yenta_id") or None,
            timeout=self.timeout_seconds,
            max_attempts=self.max_attempts,
        )


def rezen_resource_from_env() -> RezenResource:
    # EnvVars, read when a run starts; the sandbox's hosts only in local mode with the variables unset.
    return RezenResource(arrakis_url=modes.configured(ARRAKIS_URL), yenta_url=modes.configured(YENTA_URL))


def sandbox_resource(root: str) -> RezenResource:
    """The built-in sandbox serves both hosts under one root, as path prefixes."""
    return RezenResource(arrakis_url=f"{root}/rezen/arrakis/api/v1", yenta_url=f"{root}/rezen/yenta/api/v1")
