"""reZEN (Real Brokerage), declared on the integration kit: seed 001's second production integration."""

from __future__ import annotations

from sync_pipelines.defs.rezen import lifecycle, webhooks
from sync_pipelines.defs.rezen.checks import lifecycle_checks
from sync_pipelines.defs.rezen.entities import INCREMENTAL, LOAD_ORDER, PARTITIONING, SPECS
from sync_pipelines.defs.rezen.resources import rezen_resource_from_env, sandbox_resource
from sync_pipelines.lib.integration.declaration import Departures, Entity, Integration, Webhooks

REZEN = Integration(
    name="rezen",
    title="reZEN",
    entities=tuple(
        Entity(SPECS[entity], partitioning=PARTITIONING[entity], incremental=INCREMENTAL[entity])
        for entity in LOAD_ORDER
    ),
    resource=rezen_resource_from_env,
    sandbox_resource=sandbox_resource,
    credential_fields=("api_key",),
    period_start="2021-11",
    delta_cron_env="SYNC_REZEN_DELTA_CRON",
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
    description="Brokerage: transactions, listings, agents, teams, network, revenue share, equity, cap info.",
)
