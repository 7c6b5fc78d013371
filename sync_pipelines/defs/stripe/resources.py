"""The Stripe API as a Dagster resource. Each account's secret key (`sk_live_…`, or a restricted `rk_live_…` with read
access) lives encrypted in bridge.credentials; the base URL comes from SYNC_STRIPE_BASE_URL (the sandbox's only in
local mode, lib/modes.py). Nothing secret has a default here: the sandbox's keys reach an account only through
`accounts add`."""

from __future__ import annotations

import dagster as dg
import sqlalchemy as sa
from pydantic import Field

from sync_pipelines.defs.stripe.client import API_VERSION, DEFAULT_BASE_URL, StripeClient
from sync_pipelines.defs.stripe.declaration import BASE_URL
from sync_pipelines.lib import accounts, modes
from sync_pipelines.lib.accounts import Account
from sync_pipelines.lib.errors import OperatorError


class StripeResource(dg.ConfigurableResource):
    """Stripe: the API's base URL, the pinned API version, and HTTP behaviour."""

    base_url: str = Field(default=DEFAULT_BASE_URL, description="https://api.stripe.com or the sandbox's /stripe")
    api_version: str = Field(
        default=API_VERSION, description="Stripe-Version sent with every call (the mappings' shapes)"
    )
    timeout_seconds: float = Field(default=30.0, description="Read timeout of one request")
    max_attempts: int = Field(default=6, description="Attempts of one request on 5xx, timeouts and broken JSON")

    def client_for(self, engine: sa.Engine, account: Account) -> StripeClient:
        api_key = accounts.secrets_for(engine, account.id).get("api_key")
        if not api_key:
            raise OperatorError(
                f"stripe account {account.name}: no api_key stored; run `sync-pipelines accounts add stripe --name "
                f"{account.name} --secret api_key=sk_live_...` (a secret or restricted read key)"
            )
        return StripeClient(
            modes.resolve(self.base_url),
            api_key,
            api_version=self.api_version,
            timeout=self.timeout_seconds,
            max_attempts=self.max_attempts,
        )


def stripe_resource_from_env() -> StripeResource:
    # An EnvVar, read when a run starts; the sandbox's URL only in local mode with SYNC_STRIPE_BASE_URL unset.
    return StripeResource(base_url=modes.configured(BASE_URL))


def sandbox_resource(root: str) -> StripeResource:
    """The built-in sandbox serves Stripe under `<root>/stripe`."""
    return StripeResource(base_url=f"{root}/stripe")
