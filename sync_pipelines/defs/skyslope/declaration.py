"""SkySlope (Transaction Management), declared on the integration kit: seed 001's partial integration (transactions,
listings, account users) made whole. SkySlope's TM API has no webhooks: deltas are the only way changes arrive."""

from __future__ import annotations

from typing import Any

from sync_pipelines.defs.skyslope.client import BASE_URL_ENV, DEFAULT_BASE_URL, PRODUCTION_BASE_URL
from sync_pipelines.defs.skyslope.entities import INCREMENTAL, LOAD_ORDER, PARTITIONING, SPECS
from sync_pipelines.lib.integration.declaration import Entity, Integration
from sync_pipelines.lib.modes import EnvSetting

# Every secret is the account's (stored encrypted); the base URL is the application's.
CREDENTIAL_FIELDS = ("access_key", "access_secret", "client_id", "client_secret")
BASE_URL = EnvSetting(BASE_URL_ENV, PRODUCTION_BASE_URL, url=True, local_default=DEFAULT_BASE_URL)


# Dagster is imported where a resource is built, not by the declaration (see defs/fub/declaration.py).
def resource() -> Any:
    from sync_pipelines.defs.skyslope.resources import skyslope_resource_from_env

    return skyslope_resource_from_env()


def sandbox_resource(root: str) -> Any:
    from sync_pipelines.defs.skyslope import resources

    return resources.sandbox_resource(root)


SKYSLOPE = Integration(
    name="skyslope",
    title="SkySlope",
    entities=tuple(
        Entity(SPECS[entity], partitioning=PARTITIONING[entity], incremental=INCREMENTAL[entity])
        for entity in LOAD_ORDER
    ),
    resource=resource,
    sandbox_resource=sandbox_resource,
    credential_fields=CREDENTIAL_FIELDS,
    period_start="2021-11",
    delta_cron_env="SYNC_SKYSLOPE_DELTA_CRON",
    delta_cron="2-59/5 * * * *",
    description="Transaction management: sales (transactions), listings, users and offices of a brokerage.",
    env_settings=(BASE_URL,),
)
