"""Stripe, declared on the integration kit: the brokerage's billing (seed 000's sync state names it). Deltas read the
events feed; webhooks name the objects to fetch again."""

from __future__ import annotations

from typing import Any

from sync_pipelines.defs.stripe import webhooks
from sync_pipelines.defs.stripe.client import BASE_URL_ENV, DEFAULT_BASE_URL, PRODUCTION_BASE_URL
from sync_pipelines.defs.stripe.entities import DESCRIPTIONS, INCREMENTAL, LOAD_ORDER, PARTITIONING, SPECS
from sync_pipelines.lib.integration.declaration import Departures, Entity, Integration, Webhooks
from sync_pipelines.lib.modes import EnvSetting

# The account's secret (or restricted read) key is its only secret, stored encrypted; the base URL is configuration.
CREDENTIAL_FIELDS = ("api_key",)
BASE_URL = EnvSetting(BASE_URL_ENV, PRODUCTION_BASE_URL, url=True, local_default=DEFAULT_BASE_URL)


# Dagster is imported where a resource is built, not by the declaration (the engine process must not load it).
def resource() -> Any:
    from sync_pipelines.defs.stripe.resources import stripe_resource_from_env

    return stripe_resource_from_env()


def sandbox_resource(root: str) -> Any:
    from sync_pipelines.defs.stripe import resources

    return resources.sandbox_resource(root)


STRIPE = Integration(
    name="stripe",
    title="Stripe",
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
    credential_fields=CREDENTIAL_FIELDS,
    period_start="2021-11",
    delta_cron_env="SYNC_STRIPE_DELTA_CRON",
    delta_cron="2-59/5 * * * *",
    # An item removed from a subscription sends no event of its own and the subscription names only its current
    # items: a weekly full read of subscriptions and their items soft-deletes the removed ones (the change guard
    # writes nothing for the rest; about one call per 100 subscriptions).
    rewalk_cron="0 4 * * 0",
    rewalk_cron_env="SYNC_STRIPE_REWALK_CRON",
    rewalk_entities=("subscriptions", "subscription_items"),
    webhooks=Webhooks(
        verify=webhooks.verify,
        identify=webhooks.identify,
        changes=webhooks.changes,
        # Each endpoint has its own signing secret (whsec_…), shown once when the endpoint is made: no default.
        secret_keys=("webhook_secret",),
    ),
    # Not departures in the kit's sense (nothing is remembered before): the hook after a delta's pages applies the
    # deletions its events named, or closes a re-walk with the soft deletes of a complete read.
    departures=Departures(entities=LOAD_ORDER, before=webhooks.departed_before, close=webhooks.close_deltas),
    description="Billing: customers, products and prices, subscriptions and their items, invoices and their lines, "
    "charges, payment intents, refunds, payouts. Money in minor units with its currency.",
    env_settings=(BASE_URL,),
)
