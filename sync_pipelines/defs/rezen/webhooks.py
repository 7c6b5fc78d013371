"""reZEN webhooks: how a delivery is verified, identified, and turned into records to fetch again.

reZEN publishes no webhook API; the scheme is the sandbox's documented assumption (docs/integrations/rezen.md,
"Webhooks"): `X-Real-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed with the subscription secret>`,
a payload `{eventId, eventType, occurredAt, <transactionId|agentId|contributionId|teamId>}`. An event names one
record; the apply job fetches it again (the source has the truth) and soft-deletes it when a DELETED event names
it and the source answers 404.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from sync_pipelines.lib.integration.declaration import Change
from sync_pipelines.lib.webhooks import body_hash, header

SIGNATURE_HEADER = "X-Real-Signature"
SIGNATURE_PREFIX = "sha256="
# Event type prefix -> (the payload field naming the record, the entities it changes). An agent's change reaches
# every table that holds agents: the front line keeps only tier-1 agents when it fetches (client.fetch_ids).
EVENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "TRANSACTION": ("transactionId", ("transactions",)),
    "LISTING": ("transactionId", ("listings",)),
    "AGENT": ("agentId", ("agents", "network_downline", "network_frontline")),
    "REVSHARE_CONTRIBUTION": ("contributionId", ("revshare_contributions",)),
    "TEAM": ("teamId", ("teams",)),
}
ACTIONS = ("CREATED", "UPDATED", "DELETED")


def signature(body: bytes, secret: str) -> str:
    """What reZEN (the sandbox) sends in X-Real-Signature: `sha256=` + hex HMAC-SHA256 of the exact body bytes."""
    return SIGNATURE_PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, headers: Mapping[str, str], secret: str) -> bool:
    """Recompute the HMAC over the bytes received (never a re-serialisation of the parsed JSON) and compare in
    constant time. The hex digest is compared case-insensitively, the `sha256=` scheme name exactly."""
    given = header(headers, SIGNATURE_HEADER)
    if not given or not secret or not given.startswith(SIGNATURE_PREFIX):
        return False
    expected = signature(body, secret)
    received = SIGNATURE_PREFIX + given[len(SIGNATURE_PREFIX) :].lower()
    return hmac.compare_digest(expected.encode(), received.encode())


def _split(event_type: str | None) -> tuple[str, str] | None:
    """`TRANSACTION_UPDATED` -> (TRANSACTION, UPDATED); None for a type we do not know."""
    if not isinstance(event_type, str):
        return None
    for action in ACTIONS:
        suffix = f"_{action}"
        if event_type.endswith(suffix) and event_type[: -len(suffix)] in EVENTS:
            return event_type[: -len(suffix)], action
    return None


def parse(payload: dict[str, Any], body: bytes) -> tuple[str, str | None, str | None]:
    """(event id, event type, resource key) for the receiver's queue: reZEN's eventId (redeliveries repeat it,
    so it is the dedupe key; a body without one is keyed by its hash), and `<type>:<record id>`."""
    event_id = payload.get("eventId")
    event_type = payload.get("eventType")
    kind = _split(event_type)
    key = None
    if kind is not None:
        record_id = payload.get(EVENTS[kind[0]][0])
        key = f"{event_type}:{record_id}" if record_id else None
    return (
        str(event_id) if event_id else body_hash(body),
        event_type if isinstance(event_type, str) else None,
        key,
    )


def changes(event_type: str | None, payload: dict[str, Any]) -> list[Change]:
    """A stored event -> the records to fetch again, per entity; a DELETED event also deletes them (unless the
    source still returns them). An unknown type, or one without its id, changes nothing."""
    kind = _split(event_type or payload.get("eventType"))
    if kind is None:
        return []
    prefix, action = kind
    field, entities = EVENTS[prefix]
    record_id = payload.get(field)
    if not record_id:
        return []
    return [Change(entity, (str(record_id),), deleted=action == "DELETED") for entity in entities]


def changed_records(event_type: str | None, payload: dict[str, Any]) -> list[tuple[str, list[str], list[str]]]:
    """The same as (entity, ids, deleted ids) triples, for callers that do not use the kit's Change."""
    return [(c.entity, list(c.ids), list(c.ids) if c.deleted else []) for c in changes(event_type, payload)]
