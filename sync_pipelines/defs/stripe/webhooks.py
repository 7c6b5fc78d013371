"""Stripe webhooks: how a delivery is verified, identified, and turned into records to fetch again; and what a delta
does after its events (soft deletes, or the close of a re-walk).

**Signature**, exactly as Stripe documents it (docs.stripe.com/webhooks#verify-manually; the official libraries'
`WebhookSignature.verify_header`): the `Stripe-Signature` header is `t=<unix seconds>,v1=<hex>[,v1=<hex>…]` (and
`v0=` entries, ignored). The expected value is the hex HMAC-SHA256, keyed with the endpoint's signing secret
(`whsec_…`, stored with the account as `webhook_secret`), of `"{t}.{raw body}"`: the bytes received, never a
re-serialisation. Any `v1` entry may match (Stripe sends two while a secret is being rolled); every entry is
compared in constant time, with no early exit. `t` must be within 300 s of now either way (replay protection). A
failure is 401 at the receiver, and the delivery is stored nowhere.

**Events** are stored once, by their `evt_…` id (a redelivery or a duplicate repeats it: the receiver answers 200
and keeps the first). They are applied by re-fetching the objects they name from the API, never from the event's
snapshot: Stripe does not order deliveries, and the object as the API serves it now is at least as new as every
event about it, so an older event arriving last cannot move an object back. A deletion (`customer.deleted`, …) is
applied as a soft delete when the re-fetch no longer finds the object.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any

from sync_pipelines.defs.stripe.client import DELETES, EMBEDDED, EVENT_TYPES, StripeClient, named
from sync_pipelines.defs.stripe.entities import LOAD_ORDER, SPECS
from sync_pipelines.lib.integration.declaration import Change
from sync_pipelines.lib.load import BatchCounts, CompleteReadOutcome, LoadContext, soft_delete_ids, soft_delete_missing
from sync_pipelines.lib.webhooks import body_hash, header

SIGNATURE_HEADER = "Stripe-Signature"
TOLERANCE_SECONDS = 300  # Stripe's libraries' default
# The core column naming the parent children were read out of.
PARENT_COLUMN = {"subscription_items": "subscription_source_id", "invoice_line_items": "invoice_source_id"}


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The `v1` value Stripe computes: hex HMAC-SHA256(secret, "{t}.{body}")."""
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(
    body: bytes,
    headers: Mapping[str, str],
    secret: str,
    *,
    tolerance: int = TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    given = header(headers, SIGNATURE_HEADER)
    if not given or not secret:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for part in given.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif key == "v1":
            candidates.append(value.strip().lower())
    if timestamp is None or not candidates:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = signature(secret, body, timestamp).encode()
    matched = False
    for candidate in candidates:  # no early exit: every candidate is compared
        matched |= hmac.compare_digest(expected, candidate.encode())
    return matched


def _object(payload: Mapping[str, Any]) -> dict[str, Any]:
    data = payload.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    return obj if isinstance(obj, dict) else {}


def identify(payload: dict[str, Any], body: bytes) -> tuple[str, str | None, str | None]:
    """(event id, event type, resource key): the `evt_…` id is the dedupe key (a body without one is keyed by its
    hash), and `<object>:<id>` names what it is about."""
    event_id = payload.get("id")
    event_type = payload.get("type")
    obj = _object(payload)
    key = f"{obj.get('object')}:{obj.get('id')}" if obj.get("id") else None
    return (
        str(event_id) if isinstance(event_id, str) and event_id else body_hash(body),
        event_type if isinstance(event_type, str) else None,
        key,
    )


def changes(event_type: str | None, payload: dict[str, Any]) -> list[Change]:
    """A stored event -> the records to fetch again, per entity (the same table the delta reads: client.EVENT_TYPES).
    A deletion names its record as deleted; an invoice's deletion takes its lines with it (close_deltas does the
    same for a delta; here the apply job fetches the invoice, finds it gone, and the lines are named by the invoice
    id, which no line row has: they are closed by the next delta or backfill)."""
    kind = event_type or payload.get("type")
    if not isinstance(kind, str):
        return []
    obj = _object(payload)
    out: list[Change] = []
    for entity in LOAD_ORDER:
        if kind not in EVENT_TYPES[entity]:
            continue
        record = named(entity, kind, obj)
        if record is not None:
            out.append(Change(entity, (record,), deleted=kind in DELETES and entity not in EMBEDDED))
    return out


def departed_before(conn: Any, entity: str, account_id: Any) -> list[str]:
    return []  # nothing to remember: a delta's deletions come from the events it read


def close_deltas(
    conn: Any, client: StripeClient, ctx: LoadContext, entity: str, before: list[str], batch_ids: list[Any]
) -> BatchCounts:
    """After a delta's pages: a re-walk (the feed no longer reached the cursor) soft-deletes what the whole list no
    longer has, as a backfill does; otherwise the records whose newest event deleted them are soft-deleted, and
    for children, every child of a deleted parent."""
    spec = SPECS[entity]
    counts = BatchCounts()
    if entity in client.rewalked:
        counts.deleted = soft_delete_missing(conn, spec, ctx, period_keys=None, seen_batches=batch_ids,
                                             outcome=CompleteReadOutcome())  # fmt: skip
        return counts
    deleted = sorted(client.stats.deleted.get(entity, ()))  # type: ignore[attr-defined]
    if deleted and entity in PARENT_COLUMN:
        rows = conn.execute(
            f"SELECT source_id FROM {spec.core.schema}.{spec.core.name} WHERE account_id = %s "
            f"AND {PARENT_COLUMN[entity]} = ANY(%s) AND deleted_at IS NULL",
            (ctx.account_id, deleted),
        ).fetchall()
        deleted = [r[0] for r in rows]
    counts.deleted = soft_delete_ids(conn, spec, ctx, deleted)
    return counts
