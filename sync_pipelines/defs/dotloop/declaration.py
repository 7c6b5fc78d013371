"""DotLoop, declared on the integration kit: a transaction-management source of seed 001 (schema only there)."""

from __future__ import annotations

from typing import Any

from sync_pipelines.defs.dotloop import warehouse, webhooks
from sync_pipelines.defs.dotloop.entities import DESCRIPTIONS, INCREMENTAL, LOAD_ORDER, PARTITIONING, SPECS
from sync_pipelines.defs.dotloop.tokens import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, connect
from sync_pipelines.lib.integration.declaration import Departures, Entity, Integration, Webhooks
from sync_pipelines.lib.modes import EnvSetting

# The sandbox serves both of DotLoop's hosts under one root (sync-pipelines sandbox serve).
DEFAULT_BASE_URL = "http://127.0.0.1:8900/dotloop"
PRODUCTION_BASE_URL = "https://api-gateway.dotloop.com"
PRODUCTION_AUTH_URL = "https://auth.dotloop.com"

# Each account's token pair is stored with the account; the hosts and the OAuth client are the application's.
BASE_URL = EnvSetting("SYNC_DOTLOOP_BASE_URL", PRODUCTION_BASE_URL, url=True, local_default=DEFAULT_BASE_URL)
# Empty in local mode: the sandbox serves the token endpoint under the base URL.
AUTH_URL = EnvSetting("SYNC_DOTLOOP_AUTH_URL", PRODUCTION_AUTH_URL, url=True, local_default="")
CLIENT_ID = EnvSetting(
    "SYNC_DOTLOOP_CLIENT_ID", "the OAuth client id DotLoop registered for us", local_default=SANDBOX_CLIENT_ID
)
CLIENT_SECRET = EnvSetting(
    "SYNC_DOTLOOP_CLIENT_SECRET", "that OAuth client's secret", secret=True, local_default=SANDBOX_CLIENT_SECRET
)


# Dagster is imported where a resource is built, not by the declaration (see defs/fub/declaration.py).
def resource() -> Any:
    from sync_pipelines.defs.dotloop.resources import dotloop_resource_from_env

    return dotloop_resource_from_env()


def sandbox_resource(root: str) -> Any:
    from sync_pipelines.defs.dotloop import resources

    return resources.sandbox_resource(root)


DOTLOOP = Integration(
    name="dotloop",
    title="DotLoop",
    entities=tuple(
        Entity(
            SPECS[entity],
            partitioning=PARTITIONING[entity],
            incremental=INCREMENTAL[entity],
            description=DESCRIPTIONS.get(entity, ""),
        )
        for entity in LOAD_ORDER
    ),
    resource=resource,
    sandbox_resource=sandbox_resource,
    # `accounts add dotloop` is given an authorization code or a refresh token, which `connect` exchanges for the
    # token pair it stores; neither is an API key.
    credential_fields=(),
    connect=connect,
    period_start="2021-11",
    delta_cron_env="SYNC_DOTLOOP_DELTA_CRON",
    delta_cron="3-59/5 * * * *",
    webhooks=Webhooks(
        verify=webhooks.verify,
        identify=webhooks.identify,
        changes=webhooks.changes,
        # `signing_key` is what the receiver accepted for DotLoop before it was on the kit.
        secret_keys=("webhook_secret", "signing_key"),
    ),
    # A delta re-reads the participant lists of the loops that changed; a participant a list no longer has was
    # removed from its loop.
    departures=Departures(
        entities=("participants",),
        before=warehouse.participants_before,
        close=warehouse.close_participant_lists,
    ),
    description="Transaction management: profiles, loops with their details, participants, contacts.",
    env_settings=(BASE_URL, AUTH_URL, CLIENT_ID, CLIENT_SECRET),
)
