"""SkySlope (Transaction Management), declared on the integration kit: seed 001's partial integration (transactions,
listings, account users) made whole. SkySlope's TM API has no webhooks: deltas are the only way changes arrive."""

from __future__ import annotations

from sync_pipelines.defs.skyslope.entities import INCREMENTAL, LOAD_ORDER, PARTITIONING, SPECS
from sync_pipelines.defs.skyslope.resources import CREDENTIAL_FIELDS, sandbox_resource, skyslope_resource_from_env
from sync_pipelines.lib.integration.declaration import Entity, Integration

SKYSLOPE = Integration(
    name="skyslope",
    title="SkySlope",
    entities=tuple(
        Entity(SPECS[entity], partitioning=PARTITIONING[entity], incremental=INCREMENTAL[entity])
        for entity in LOAD_ORDER
    ),
    resource=skyslope_resource_from_env,
    sandbox_resource=sandbox_resource,
    credential_fields=CREDENTIAL_FIELDS,
    period_start="2021-11",
    delta_cron_env="SYNC_SKYSLOPE_DELTA_CRON",
    description="Transaction management: sales (transactions), listings, users and offices of a brokerage.",
)
