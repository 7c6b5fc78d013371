"""Lofty (formerly Chime), declared on the integration kit: seed 001's second CRM. Leads (its contacts), the tags on
them, their calls, texts and emails, and the team's members, with Lofty's batched webhooks.

Lofty has no updated-after filter: the delta walks the LastActivity order down to its cursor (usually one page),
webhooks bring changes within minutes, and a full re-walk (a backfill of every month, or `sync`) catches what both
missed, cheaply because the change guard writes nothing for an unchanged lead. Costs: docs/integrations/lofty.md.
"""

from __future__ import annotations

import secrets
from typing import Any

from sync_pipelines.defs.lofty.client import BASE_URL_ENV, DEFAULT_BASE_URL
from sync_pipelines.defs.lofty.entities import DESCRIPTIONS, INCREMENTAL, LOAD_ORDER, PARTITIONING, SOURCE_NAMES, SPECS
from sync_pipelines.defs.lofty.webhooks import WEBHOOKS
from sync_pipelines.lib.errors import OperatorError
from sync_pipelines.lib.integration.declaration import Entity, Integration
from sync_pipelines.lib.modes import EnvSetting

# Each account's API key and webhook secret are stored with the account; the base URL is the application's.
BASE_URL = EnvSetting(BASE_URL_ENV, "https://api.lofty.com", url=True, local_default=DEFAULT_BASE_URL)


# Dagster is imported where a resource is built, not by the declaration (see defs/fub/declaration.py).
def resource() -> Any:
    from sync_pipelines.defs.lofty.resources import lofty_resource_from_env

    return lofty_resource_from_env()


def sandbox_resource(root: str) -> Any:
    from sync_pipelines.defs.lofty import resources

    return resources.sandbox_resource(root)


def connect(resource: Any, given: dict[str, str]) -> dict[str, str]:
    """The API key as given, and a webhook secret of our own (unless one is given): the callback URLs of the
    account's subscriptions carry tokens derived from it (defs/lofty/webhooks.py)."""
    if not str(given.get("api_key") or "").strip():
        raise OperatorError("lofty: --secret api_key=<the team's Lofty API key> is required")
    return {**given, "webhook_secret": given.get("webhook_secret") or secrets.token_hex(32)}


LOFTY = Integration(
    name="lofty",
    title="Lofty",
    entities=tuple(
        Entity(
            SPECS[entity],
            partitioning=PARTITIONING[entity],
            incremental=INCREMENTAL[entity],
            source_name=SOURCE_NAMES.get(entity),
            description=DESCRIPTIONS[entity],
        )
        for entity in LOAD_ORDER
    ),
    resource=resource,
    sandbox_resource=sandbox_resource,
    credential_fields=("api_key",),
    connect=connect,
    period_start="2021-11",
    delta_cron_env="SYNC_LOFTY_DELTA_CRON",
    delta_cron="4-59/5 * * * *",
    # What the LastActivity delta and the webhooks can miss (a removed tag, a lead trashed while no webhook reached
    # us) is caught nightly: ~1,000 calls (2 min of the allowance) per 100,000 leads, nothing written if unchanged.
    rewalk_cron="30 3 * * *",
    rewalk_cron_env="SYNC_LOFTY_REWALK_CRON",
    # Not activities: every lead's activities is ~101,000 calls (3.4 h of the allowance) per 100,000 leads, and a
    # call or text once logged does not change; the delta reads them for every lead whose last activity moved.
    rewalk_entities=("leads", "tags"),
    webhooks=WEBHOOKS,
    description="CRM: leads (contacts), tags on them, their calls, texts and emails, and the team's members.",
    env_settings=(BASE_URL,),
)
