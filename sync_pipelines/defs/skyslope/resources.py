"""The SkySlope API as a Dagster resource. Each account's four secrets (the integrator's client id and secret, the
brokerage user's access key and secret) live encrypted in bridge.credentials; the base URL comes from
SYNC_SKYSLOPE_BASE_URL (the sandbox's only in local mode)."""

from __future__ import annotations

import dagster as dg
import sqlalchemy as sa
from pydantic import Field

from sync_pipelines.defs.skyslope.client import DEFAULT_BASE_URL, SkySlopeClient
from sync_pipelines.defs.skyslope.declaration import BASE_URL, CREDENTIAL_FIELDS
from sync_pipelines.lib import accounts, modes
from sync_pipelines.lib.accounts import Account
from sync_pipelines.lib.errors import OperatorError


class SkySlopeResource(dg.ConfigurableResource):
    """SkySlope: the API's base URL (login at <base>/auth/login, the API under <base>/api) and HTTP behaviour."""

    base_url: str = Field(default=DEFAULT_BASE_URL, description="https://api.skyslope.com or the sandbox's /skyslope")
    timeout_seconds: float = Field(default=60.0, description="Read timeout of one request (a bulk export is large)")
    max_attempts: int = Field(default=6, description="Attempts of one request on 5xx, timeouts and broken JSON")

    def client_for(self, engine: sa.Engine, account: Account) -> SkySlopeClient:
        secrets = accounts.secrets_for(engine, account.id)
        missing = [name for name in CREDENTIAL_FIELDS if not secrets.get(name)]
        if missing:
            raise OperatorError(
                f"skyslope account {account.name}: no {', '.join(missing)} stored; run `sync-pipelines accounts add "
                f"skyslope --name {account.name}` with --secret for each of {', '.join(CREDENTIAL_FIELDS)}"
            )
        return SkySlopeClient(
            modes.resolve(self.base_url),
            secrets["access_key"],
            secrets["access_secret"],
            secrets["client_id"],
            secrets["client_secret"],
            timeout=self.timeout_seconds,
            max_attempts=self.max_attempts,
        )


def skyslope_resource_from_env() -> SkySlopeResource:
    # An EnvVar, read when a run starts; the sandbox's URL only in local mode with SYNC_SKYSLOPE_BASE_URL unset.
    return SkySlopeResource(base_url=modes.configured(BASE_URL))


def sandbox_resource(root: str) -> SkySlopeResource:
    """The built-in sandbox serves SkySlope under `<root>/skyslope`."""
    return SkySlopeResource(base_url=f"{root}/skyslope")
