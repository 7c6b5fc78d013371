"""reZEN (Real Brokerage), declared on the integration kit: seed 001's second production integration."""

from __future__ import annotations

from typing import Any

from sync_pipelines.defs.rezen import lifecycle, webhooks
from sync_pipelines.defs.rezen.client import (
    ARRAKIS_URL_ENV,
    DEFAULT_ARRAKIS_URL,
    DEFAULT_YENTA_URL,
    PRODUCTION_ARRAKIS_URL,
    PRODUCTION_YENTA_URL,
    YENTA_URL_ENV,
)
from sync_pipelines.defs.rezen.entities import INCREMENTAL, LOAD_ORDER, PARTITIONING, SPECS
from sync_pipelines.lib.integration.declaration import Departures, Entity, Integration, Webhooks
from sync_pipelines.lib.modes import EnvSetting

# Each account's API key and webhook secret are stored with the account; the hosts are the application's.
ARRAKIS_URL = EnvSetting(ARRAKIS_URL_ENV, PRODUCTION_ARRAKIS_URL, url=True, local_default=DEFAULT_ARRAKIS_URL)
YENTA_URL = EnvSetting(YENTA_URL_ENV, PRODUCTION_YENTA_URL, url=True, local_default=DEFAULT_YENTA_URL)


# Dagster is imported where a resource or a check is built, not by the declaration (see defs/fub/declaration.py).
def resource() -> Any:
    from sync_pipelines.defs.rezen.resources import rezen_resource_from_env

    return rezen_resource_from_env()


def sandbox_resource(root: str) -> Any:
    from sync_pipelines.defs.rezen import resources

    return resources.sandbox_resource(root)


def lifecycle_checks(integration: Integration) -> list[Any]:
    from sync_pipelines.defs.rezen import checks

    return checks.lifecycle_checks(integration)


REZEN = Integration(
    name="rezen",
    title="reZEN",
    entities=tuple(
        Entity(SPECS[entity], partitioning=PARTITIONING[entity], incremental=INCREMENTAL[entity])
        for entity in LOAD_ORDER
    ),
    resource=resource,
    sandbox_resource=sandbox_resource,
    credential_fields=("api_key",),
    period_start="2021-11",
    delta_cron_env="SYNC_REZEN_DELTA_CRON",
    delta_cron="1-59/5 * * * *",
    webhooks=Webhooks(
        verify=webhooks.verify,
        identify=webhooks.parse,
        changes=webhooks.changes,
        secret_keys=("webhook_secret",),
    ),
    # A transaction or listing that leaves the open groups is missing from the delta's re-walk: it is fetched by id
    # (its new state loaded, or soft-deleted on a 404).
    departures=Departures(
        entities=tuple(lifecycle.CHANGEABLE_GROUPS),
        before=lifecycle.open_in_core,
        close=lifecycle.close_departures,
    ),
    extra_checks=lifecycle_checks,
    env_settings=(ARRAKIS_URL, YENTA_URL),
    description="Brokerage: transactions, listings, agents, teams, network, revenue share, equity, cap info.",
)
