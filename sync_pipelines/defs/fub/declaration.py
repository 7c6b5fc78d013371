"""Follow Up Boss, declared on the integration kit: its entities, client resource and webhooks. Everything
Dagster shows of FUB (assets, partitions, checks, sensors, schedules, the webhook job) and every CLI command is
built from this by lib/integration."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlparse

from sync_pipelines.defs.fub.client import SANDBOX_SYSTEM_KEY
from sync_pipelines.defs.fub.entities import COLLECTIONS, LOAD_ORDER, REFERENCE_ENTITIES, SPECS
from sync_pipelines.lib.integration.declaration import Change, Entity, Integration, Partitioning, Webhooks
from sync_pipelines.lib.modes import EnvSetting
from sync_pipelines.lib.webhooks import body_hash, header

DEFAULT_BASE_URL = "http://127.0.0.1:8900/fub"  # the sandbox (sync-pipelines sandbox serve)
BASE_URL = EnvSetting("SYNC_FUB_BASE_URL", "https://api.followupboss.com", url=True, local_default=DEFAULT_BASE_URL)
SYSTEM_KEY = EnvSetting(
    "SYNC_FUB_SYSTEM_KEY",
    "the X-System-Key FUB registered for our system; it also signs FUB webhooks",
    secret=True,
    local_default=SANDBOX_SYSTEM_KEY,
)

# FUB event name prefix -> our entity. Longest prefix first; relationship events are not loaded.
_EVENT_PREFIXES: tuple[tuple[str, str | None], ...] = (
    ("peopleRelationship", None),
    ("people", "people"),
    ("deals", "deals"),
    ("calls", "calls"),
    ("textMessages", "text_messages"),
    ("appointments", "appointments"),
    ("events", "events"),
    ("stage", "stages"),
)


def entity_of(event_type: str | None) -> str | None:
    """`peopleUpdated` -> people, `stageCreated` -> stages; None for events we do not load (notes, emails...)."""
    for prefix, entity in _EVENT_PREFIXES:
        if event_type and event_type.startswith(prefix):
            return entity
    return None


def resource_ids(payload: dict) -> list[str]:
    ids = payload.get("resourceIds")
    if isinstance(ids, list) and ids:
        return [str(i) for i in ids]
    uri = payload.get("uri")
    if isinstance(uri, str):
        values = parse_qs(urlparse(uri).query).get("id", [])
        return [i for v in values for i in v.split(",") if i]
    return []


def changes(event_type: str | None, payload: dict[str, Any]) -> list[Change]:
    """A FUB event names its records by `resourceIds` (or the `uri`'s `id=`); `*Deleted` events delete them."""
    kind = event_type or payload.get("event")
    entity = entity_of(kind if isinstance(kind, str) else None)
    if entity is None:
        return []
    return [Change(entity, tuple(resource_ids(payload)), deleted=str(kind).endswith("Deleted"))]


def signature(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), base64.b64encode(body), hashlib.sha256).hexdigest()


def verify(body: bytes, headers: Mapping[str, str], secret: str) -> bool:
    """FUB-Signature: hex HMAC-SHA256, keyed with the system key, over base64 of the raw body."""
    given = header(headers, "FUB-Signature")
    return bool(given and secret) and hmac.compare_digest(signature(body, secret).encode(), given.lower().encode())


def identify(payload: dict[str, Any], body: bytes) -> tuple[str, str | None, str | None]:
    """{eventId, eventCreated, event, resourceIds, uri}; the resource key names what the event touches."""
    event = payload.get("event")
    ids = payload.get("resourceIds")
    key = None
    if isinstance(event, str) and isinstance(ids, list):
        key = f"{event}:{','.join(str(i) for i in ids)}"
    event_id = payload.get("eventId")
    return str(event_id) if event_id else body_hash(body), event if isinstance(event, str) else None, key


# The resource is imported where it is built: the engine (lib/integration/sync.py) and the declaration stay free
# of Dagster, so a process that only syncs (a benchmark, a child of a test) does not load it.
def resource() -> Any:
    from sync_pipelines.defs.fub.resources import fub_resource_from_env

    return fub_resource_from_env()


def sandbox_resource(root: str) -> Any:
    from sync_pipelines.defs.fub.resources import FubResource

    return FubResource(base_url=f"{root}/fub")


FUB = Integration(
    name="fub",
    title="Follow Up Boss",
    entities=tuple(
        Entity(
            SPECS[entity],
            partitioning=Partitioning.ACCOUNT if entity in REFERENCE_ENTITIES else Partitioning.PERIOD_ACCOUNT,
            source_name=COLLECTIONS[entity],
        )
        for entity in LOAD_ORDER
    ),
    resource=resource,
    sandbox_resource=sandbox_resource,
    credential_fields=("api_key",),
    period_start="2021-11",
    delta_cron_env="SYNC_FUB_DELTA_CRON",
    webhooks=Webhooks(
        verify=verify,
        identify=identify,
        changes=changes,
        secret_keys=("webhook_secret", "system_key"),
        # FUB signs with the system's X-System-Key, the same for every account; the sandbox's in local mode only.
        secret_env=SYSTEM_KEY.name,
        default_secret=lambda: SANDBOX_SYSTEM_KEY,
    ),
    env_settings=(BASE_URL, SYSTEM_KEY),
    description="CRM: people, deals, stages, events, calls, texts, appointments, users, groups.",
)
