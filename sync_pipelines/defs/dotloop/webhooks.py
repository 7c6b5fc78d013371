"""DotLoop webhooks: how a delivery is verified, identified, and turned into records to fetch again.

A subscription (`POST /subscription`) carries a `signingKey` we choose; it is stored with the account as
`webhook_secret`. Each delivery is one event `{eventId, eventType, timestamp, subscriptionExternalId, profileId?,
event: {id, loopId?, profileId?, fromId?, toId?}}` with `X-DOTLOOP-SIGNATURE`: the lower-case hex HMAC-SHA1 of the
raw request body, byte for byte, keyed with the signing key (UTF-8). `X-DOTLOOP-TIMESTAMP` is not signed.
DotLoop does not publish what it signs; this is the sandbox's documented assumption (docs/integrations/dotloop.md,
"Webhooks"): check it against a real delivery before relying on it.

Events name records; the apply job fetches them again (the source has the truth):
- LOOP_CREATED / LOOP_UPDATED {id}: the loop, and its participant list (a loop announced before it existed
  brings the participants that were waiting for it);
- LOOP_MERGED {fromId, toId}: the old loop is deleted (its id now answers 301 with the survivor, and the client
  points the old row at it: merged_into_source_id), the survivor and its list (the participants moved to it);
- LOOP_PARTICIPANT_* {id, loopId}: the loop's whole participant list (a deleted participant is the one missing
  from it), and the loop (whose `updated` moved);
- CONTACT_* {id}: the contact; PROFILE_UPDATED: the profile.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from sync_pipelines.defs.dotloop.client import LOOP_PREFIX
from sync_pipelines.lib.integration.declaration import Change
from sync_pipelines.lib.webhooks import body_hash, header

SIGNATURE_HEADER = "X-DOTLOOP-SIGNATURE"


def signature(body: bytes, signing_key: str) -> str:
    """What DotLoop (the sandbox) sends in X-DOTLOOP-SIGNATURE."""
    return hmac.new(signing_key.encode(), body, hashlib.sha1).hexdigest()


def verify(body: bytes, headers: Mapping[str, str], secret: str) -> bool:
    """Recompute the HMAC over the bytes received (never a re-serialisation of the parsed JSON) and compare in
    constant time; the hex digest is read case-insensitively."""
    given = header(headers, SIGNATURE_HEADER)
    if not given or not secret:
        return False
    return hmac.compare_digest(signature(body, secret).encode(), given.strip().lower().encode())


def _event(payload: dict[str, Any]) -> dict[str, Any]:
    event = payload.get("event")
    return event if isinstance(event, dict) else {}


def identify(payload: dict[str, Any], body: bytes) -> tuple[str, str | None, str | None]:
    """(event id, event type, resource key): DotLoop's eventId (a redelivery repeats it, so it is the dedupe key;
    a body without one is keyed by its hash) and `<type>:<record id>`."""
    event_id = payload.get("eventId")
    event_type = payload.get("eventType")
    record_id = _event(payload).get("id")
    kind = event_type if isinstance(event_type, str) else None
    key = f"{kind}:{record_id}" if kind and record_id is not None else None
    return str(event_id) if event_id else body_hash(body), kind, key


def _ids(*values: object) -> tuple[str, ...]:
    return tuple(str(v) for v in values if v is not None and v != "")


def changes(event_type: str | None, payload: dict[str, Any]) -> list[Change]:
    """A stored event -> the records to fetch again (see the module docstring). An event of a type we do not load,
    or without the ids it needs, changes nothing."""
    kind = event_type or payload.get("eventType")
    event = _event(payload)
    record = event.get("id")
    if kind in ("LOOP_CREATED", "LOOP_UPDATED") and _ids(record):
        return [Change("loops", _ids(record)), Change("participants", (f"{LOOP_PREFIX}{record}",))]
    if kind == "LOOP_MERGED":
        merged, survivor = event.get("fromId"), event.get("toId") or record
        out = [Change("loops", _ids(merged), deleted=True)] if _ids(merged) else []
        if _ids(survivor):
            out += [Change("loops", _ids(survivor)), Change("participants", (f"{LOOP_PREFIX}{survivor}",))]
        return out
    if isinstance(kind, str) and kind.startswith("LOOP_PARTICIPANT_") and _ids(event.get("loopId")):
        loop = event["loopId"]
        out = [Change("participants", (f"{LOOP_PREFIX}{loop}",)), Change("loops", _ids(loop))]
        if kind == "LOOP_PARTICIPANT_DELETED" and _ids(record):
            out.append(Change("participants", _ids(record), deleted=True))
        return out
    if isinstance(kind, str) and kind.startswith("CONTACT_") and _ids(record):
        return [Change("contacts", _ids(record), deleted=kind == "CONTACT_DELETED")]
    if kind == "PROFILE_UPDATED":
        profile = record if record is not None else payload.get("profileId")
        return [Change("profiles", _ids(profile))] if _ids(profile) else []
    return []
