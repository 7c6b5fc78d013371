"""DotLoop, declared on the integration kit: a transaction-management source of seed 001 (schema only there)."""

from __future__ import annotations

from sync_pipelines.defs.dotloop import warehouse, webhooks
from sync_pipelines.defs.dotloop.entities import DESCRIPTIONS, INCREMENTAL, LOAD_ORDER, PARTITIONING, SPECS
from sync_pipelines.defs.dotloop.resources import dotloop_resource_from_env, sandbox_resource
from sync_pipelines.defs.dotloop.tokens import connect
from sync_pipelines.lib.integration.declaration import Departures, Entity, Integration, Webhooks

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
    resource=dotloop_resource_from_env,
    sandbox_resource=sandbox_resource,
    # `accounts add dotloop` is given an authorization code or a refresh token, which `connect` exchanges for the
    # token pair it stores; neither is an API key.
    credential_fields=(),
    connect=connect,
    period_start="2021-11",
    delta_cron_env="SYNC_DOTLOOP_DELTA_CRON",
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
)
