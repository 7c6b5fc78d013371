"""The DotLoop API as a Dagster resource. Each account's token pair lives encrypted in bridge.credentials (put there
by `accounts add dotloop`, tokens.connect, and rotated by tokens.StoredTokens); the OAuth client id and secret are
the application's, from SYNC_DOTLOOP_CLIENT_ID / SYNC_DOTLOOP_CLIENT_SECRET (EnvVars) or, in local mode only, the
sandbox's demo client (lib/modes.py)."""

from __future__ import annotations

import dagster as dg
import sqlalchemy as sa
from pydantic import Field

from sync_pipelines.defs.dotloop import warehouse
from sync_pipelines.defs.dotloop.client import BATCH_SIZE, DotLoopClient
from sync_pipelines.defs.dotloop.declaration import (
    AUTH_URL,
    BASE_URL,
    CLIENT_ID,
    CLIENT_SECRET,
    DEFAULT_BASE_URL,
    PRODUCTION_AUTH_URL,
    PRODUCTION_BASE_URL,
)
from sync_pipelines.defs.dotloop.tokens import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    TOKEN_PATH,
    StoredTokens,
    TokenEndpoint,
)
from sync_pipelines.lib import modes
from sync_pipelines.lib.accounts import Account

BASE_URL_ENV = BASE_URL.name
AUTH_URL_ENV = AUTH_URL.name
CLIENT_ID_ENV = CLIENT_ID.name
CLIENT_SECRET_ENV = CLIENT_SECRET.name
API_PATH = "public/v2"


class DotLoopResource(dg.ConfigurableResource):
    """DotLoop: the API and OAuth hosts, the registered OAuth client, and HTTP behaviour."""

    base_url: str = Field(
        default=DEFAULT_BASE_URL, description=f"{PRODUCTION_BASE_URL} or the sandbox's /dotloop (API at /public/v2)"
    )
    auth_url: str = Field(default="", description=f"{PRODUCTION_AUTH_URL} (/oauth/token); empty: base_url")
    client_id: str = Field(default=SANDBOX_CLIENT_ID, description="The OAuth client id DotLoop registered for us")
    client_secret: str = Field(default=SANDBOX_CLIENT_SECRET, description="Its client secret")
    timeout_seconds: float = Field(default=30.0, description="Read timeout of one request")
    max_attempts: int = Field(default=6, description="Attempts of one request on 5xx, timeouts and broken JSON")
    batch_size: int = Field(default=BATCH_SIZE, description="Records per batch (DotLoop allows 1-100)")

    @property
    def api_url(self) -> str:
        return f"{modes.resolve(self.base_url).rstrip('/')}/{API_PATH}"

    @property
    def token_url(self) -> str:
        auth_url = modes.resolve(self.auth_url) if self.auth_url else ""
        return f"{(auth_url or modes.resolve(self.base_url)).rstrip('/')}/{TOKEN_PATH}"

    def token_endpoint(self) -> TokenEndpoint:
        return TokenEndpoint(
            self.token_url, modes.resolve(self.client_id), modes.resolve(self.client_secret),
            timeout=self.timeout_seconds,
        )  # fmt: skip

    def client_for(self, engine: sa.Engine, account: Account) -> DotLoopClient:
        return DotLoopClient(
            self.api_url,
            self.token_endpoint(),
            StoredTokens(engine, account.id),
            batch_size=self.batch_size,
            locate_loops=lambda ids: warehouse.loop_profiles(engine, account.id, ids),
            locate_participants=lambda ids: warehouse.participant_loops(engine, account.id, ids),
            on_merge=lambda merged, survivor: warehouse.point_merged_loop(engine, account.id, merged, survivor),
            timeout=self.timeout_seconds,
            max_attempts=self.max_attempts,
        )


def dotloop_resource_from_env() -> DotLoopResource:
    # EnvVars, read when a run starts; the sandbox's hosts and demo client only in local mode with them unset.
    return DotLoopResource(
        base_url=modes.configured(BASE_URL),
        auth_url=modes.configured(AUTH_URL),
        client_id=modes.configured(CLIENT_ID),
        client_secret=modes.configured(CLIENT_SECRET),
    )


def sandbox_resource(root: str) -> DotLoopResource:
    """The built-in sandbox served at `root`: both hosts under `/dotloop`, the demo OAuth client."""
    return DotLoopResource(base_url=f"{root.rstrip('/')}/dotloop")
