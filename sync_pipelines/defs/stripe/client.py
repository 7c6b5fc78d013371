"""Stripe API client: secret-key auth, `starting_after` lists, the events feed for deltas, children read out of
their parents' embedded lists. It implements the kit's source-client protocol (lib/integration/declaration.py,
`SourceClient`), keyed by the entities' names (entities.py).

**Auth and version.** `Authorization: Bearer sk_…` and a pinned `Stripe-Version` (API_VERSION): the shapes the
mappings read (`invoice.subscription`, `charge.invoice`, `subscription.current_period_*`) are the classic ones, which
Basil (2025-03-31) moved. Stripe sends no rate-limit headers; a 429 waits its `Retry-After` (lib/http.py).

**Backfill.** Every list is newest first and paged with `starting_after=<last id>` (paging.starting_after, 100 a
page), filtered by `created[gt]`/`created[lt]` (epoch seconds, strict, so a month is exact). The cursor saved with
a page is its last id: a run that stops resumes after it. Subscriptions are listed with `status=all` (the default
leaves canceled ones out). Subscription items and invoice lines come embedded in their parents' list pages, so they
cost no call of their own (an embedded list that says `has_more` is read on from its own list URL). `expand[]` is
not used: every object the warehouse keeps is either embedded already or has a list of its own filtered by
`created`, and expanding would fetch copies of objects read anyway.

**Totals.** Stripe reports no counts: `total` walks the list (one call per 100 records) and counts what it served.

**Delta.** `GET /v1/events` (kept 30 days) with `types[]` of the entity and `created[gte]` the cursor minus the
overlap, newest first. The newest event per object decides: a deletion (`customer.deleted`, `invoice.deleted`,
`product.deleted`, `price.deleted`) is recorded for a soft delete (webhooks.close_deltas); everything else is
fetched again by id (the source has the truth, and an event's snapshot is rendered in the account's default API
version, which need not be ours). Pages carry the old cursor but the last, which carries the newest event's time.
A cursor the feed no longer reaches back to (no retained event at or before it: events expire after 30 days) falls
back to a re-walk of the whole list, which soft-deletes what the source no longer lists; the run's metadata says so
(`events_feed`); so does one the feed cannot vouch for (module `_feed_lost`). A first delta starts at the newest
creation time in core (the load path's `_source_updated_at`: Stripe objects have no update time), or, with nothing
in core, reads the whole retained feed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sync_pipelines.defs.stripe.entities import TIMES
from sync_pipelines.lib.http import ApiClient, ApiError, CallStats
from sync_pipelines.lib.integration import paging
from sync_pipelines.lib.sync import Page

BASE_URL_ENV = "SYNC_STRIPE_BASE_URL"
DEFAULT_BASE_URL = "http://127.0.0.1:8900/stripe"  # the sandbox (sync-pipelines sandbox serve)
PRODUCTION_BASE_URL = "https://api.stripe.com"
API_VERSION = "2024-06-20"
PAGE_SIZE = 100
FETCH_PAGE = 100  # records re-fetched by id per Page handed to the load path
EVENT_RETENTION = timedelta(days=30)
# The feed's oldest end moves while a delta reads it: a cursor this close to it counts as lost already.
FEED_EDGE = timedelta(days=1)
# A cursor before this is no cursor: nothing in core carries an update time (Stripe objects have none).
NO_CURSOR = datetime(2000, 1, 1, tzinfo=UTC)

# Our entity -> the list it is read from.
LISTS = {
    "customers": "v1/customers",
    "products": "v1/products",
    "prices": "v1/prices",
    "subscriptions": "v1/subscriptions",
    "subscription_items": "v1/subscriptions",
    "invoices": "v1/invoices",
    "invoice_line_items": "v1/invoices",
    "charges": "v1/charges",
    "payment_intents": "v1/payment_intents",
    "refunds": "v1/refunds",
    "payouts": "v1/payouts",
}
# Children read out of an embedded list of their parent: entity -> the parent's field.
EMBEDDED = {"subscription_items": "items", "invoice_line_items": "lines"}
LIST_PARAMS: dict[str, dict[str, str]] = {"subscriptions": {"status": "all"}, "subscription_items": {"status": "all"}}
ID_PREFIX = {"subscriptions": "sub_", "invoices": "in_", "charges": "ch_"}

_CHARGE_EVENTS = tuple(
    f"charge.{kind}" for kind in ("captured", "expired", "failed", "pending", "refunded", "succeeded", "updated")
)
_SUBSCRIPTION_EVENTS = tuple(
    f"customer.subscription.{kind}"
    for kind in ("created", "updated", "deleted", "paused", "resumed", "pending_update_applied",
                 "pending_update_expired", "trial_will_end")
)  # fmt: skip
_INVOICE_EVENTS = tuple(
    f"invoice.{kind}"
    for kind in ("created", "updated", "deleted", "finalized", "paid", "payment_succeeded", "payment_failed",
                 "payment_action_required", "voided", "marked_uncollectible", "sent", "overdue")
)  # fmt: skip

# Which event types name a record of each entity; see `named` for the id each one names.
EVENT_TYPES: dict[str, tuple[str, ...]] = {
    "customers": ("customer.created", "customer.updated", "customer.deleted"),
    "products": ("product.created", "product.updated", "product.deleted"),
    "prices": ("price.created", "price.updated", "price.deleted"),
    "subscriptions": _SUBSCRIPTION_EVENTS,
    "subscription_items": _SUBSCRIPTION_EVENTS,
    "invoices": _INVOICE_EVENTS,
    "invoice_line_items": _INVOICE_EVENTS,
    "charges": _CHARGE_EVENTS,
    "payment_intents": (
        "payment_intent.created",
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.processing",
        "payment_intent.canceled",
        "payment_intent.requires_action",
        "payment_intent.amount_capturable_updated",
        "payment_intent.partially_funded",
        *_CHARGE_EVENTS,
    ),
    "refunds": ("refund.created", "refund.updated", "refund.failed", "charge.refund.updated", "charge.refunded"),
    "payouts": (
        "payout.created",
        "payout.updated",
        "payout.paid",
        "payout.failed",
        "payout.canceled",
        "payout.reconciliation_completed",
    ),
}
# Event types that delete the object they name (customer.subscription.deleted cancels: the object stays).
DELETES = frozenset({"customer.deleted", "invoice.deleted", "product.deleted", "price.deleted"})


def named(entity: str, event_type: str, obj: Mapping[str, Any]) -> str | None:
    """The id of the `entity` record an event of `event_type` about `obj` (its data.object) names: a parent's id for
    children read out of it (subscription items: the subscription; invoice lines: the invoice), a charge's payment
    intent, and for a refund named through its charge (charge.refunded) the charge, whose refunds are listed."""
    value: Any
    if entity == "payment_intents" and event_type.startswith("charge."):
        value = obj.get("payment_intent")
    else:
        value = obj.get("id")
    return str(value) if isinstance(value, str) and value else None


def epoch_iso(value: Any) -> str | None:
    """Stripe's epoch seconds as ISO 8601 UTC text; None for anything else (a malformed record's ISO `created`)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _at(record: Mapping[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def stamp(entity: str, record: dict) -> dict:
    """The fields the mappings read besides Stripe's own (entities.py): `_created`, `_t`, `_livemode`."""
    if not isinstance(record, dict):
        return record
    created = epoch_iso(record.get("created"))
    if created is not None:
        # Stripe objects carry no update time: the creation time stands in (entities.py).
        record["_created"] = record["_updated"] = created
    times = TIMES.get(entity)
    if times:
        record["_t"] = {target: epoch_iso(_at(record, path)) for target, path in times.items()}
    if "livemode" in record:
        live = record["livemode"]
        # A boolean cast would take the text "false": anything but a JSON boolean is named, and refused by the cast.
        record["_livemode"] = live if isinstance(live, bool) else f"not a JSON boolean: {live!r}"[:80]
    return record


def time_text(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class StripeCallStats(CallStats):
    """The calls' counters, plus what the events feed did, which a delta's metadata shows (`events_feed`). The extra
    two live in slots, out of the instance's `__dict__`: the kit adds up stats field by field (`vars`), numbers
    only."""

    __slots__ = ("deleted", "events_feed")

    def __init__(self) -> None:
        super().__init__()
        self.events_feed = "not read"
        self.deleted: dict[str, set[str]] = {}  # entity -> ids whose newest event deleted them (last delta)

    def as_metadata(self) -> dict[str, int | float]:
        out: dict[str, Any] = dict(super().as_metadata())
        out["events_feed"] = self.events_feed
        return out


class StripeClient(ApiClient):
    integration = "stripe"

    def __init__(self, base_url: str, api_key: str, *, api_version: str = API_VERSION, **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        self._api_key = api_key
        self.api_version = api_version
        self.stats = StripeCallStats()
        self.page_size = PAGE_SIZE
        # Entities whose last delta fell back to a re-walk (the feed no longer reached its cursor).
        self.rewalked: set[str] = set()

    def authorize(self, headers: dict[str, str]) -> None:
        headers["Authorization"] = f"Bearer {self._api_key}"
        headers["Stripe-Version"] = self.api_version

    def __repr__(self) -> str:  # never the key
        return f"StripeClient({self.base_url!r})"

    # -- lists -----------------------------------------------------------------------------------

    def _check(self, entity: str) -> str:
        if entity not in LISTS:
            raise ValueError(f"stripe has no entity {entity!r}; known: {', '.join(LISTS)}")
        return LISTS[entity]

    def _raw_pages(
        self, entity: str, created_after: datetime | None, created_before: datetime | None, resume: str | None
    ) -> Iterator[Page]:
        path = self._check(entity)
        params: dict[str, Any] = dict(LIST_PARAMS.get(entity, {}))
        if created_after is not None:
            params["created[gt]"] = int(created_after.timestamp())
        if created_before is not None:
            params["created[lt]"] = int(created_before.timestamp())
        yield from paging.starting_after(self.get_json, path, params, limit=self.page_size, resume=resume)

    def window_pages(
        self, entity: str, created_after: datetime | None, created_before: datetime | None, resume: str | None
    ) -> Iterator[Page]:
        """Every record of `entity` created strictly inside the bounds, resumable from each page's cursor."""
        for page in self._raw_pages(entity, created_after, created_before, resume):
            yield Page(self._records(entity, page.records), page.cursor)

    def _records(self, entity: str, records: list[dict]) -> list[dict]:
        if entity not in EMBEDDED:
            return [stamp(entity, r) for r in records]
        return [stamp(entity, child) for parent in records for child in self._children(entity, parent)]

    def _children(self, entity: str, parent: dict) -> list[dict]:
        """A subscription's items or an invoice's lines, each with `_parent` and, lacking its own, the parent's
        `created` (period_key is the parent's month: a line is created with its invoice)."""
        if not isinstance(parent, dict):
            return []
        embedded = parent.get(EMBEDDED[entity])
        if not isinstance(embedded, dict):
            return []
        children = list(embedded.get("data") or [])
        if embedded.get("has_more") and children and isinstance(embedded.get("url"), str):
            # More than the embedded page: read on from the list's own URL (/v1/invoices/{id}/lines, ...).
            url = str(embedded["url"]).lstrip("/")
            more = paging.starting_after(self.get_json, url, {"starting_after": children[-1].get("id")},
                                         limit=self.page_size)  # fmt: skip
            for page in more:
                children.extend(page.records)
        out = []
        for child in children:
            if not isinstance(child, dict):
                continue
            child = dict(child)
            child["_parent"] = parent.get("id")
            if not isinstance(child.get("created"), int):
                child["created"] = parent.get("created")
            out.append(child)
        return out

    def total(self, entity: str, created_after: datetime | None, created_before: datetime | None) -> int | None:
        """Stripe reports no counts: the list is walked and what it served is counted (children: what their
        parents embed)."""
        total = 0
        for page in self._raw_pages(entity, created_after, created_before, None):
            if entity in EMBEDDED:
                total += sum(len(self._children(entity, parent)) for parent in page.records)
            else:
                total += len(page.records)
        return total

    # -- by id -----------------------------------------------------------------------------------

    def _retrieve(self, path: str) -> dict | None:
        """One object; None when Stripe answers 404 or says it is deleted (a deleted customer still answers)."""
        try:
            body, _ = self.get_json(path)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        if not isinstance(body, dict) or body.get("deleted") is True:
            return None
        return body

    def fetch_ids(self, entity: str, ids: list[str]) -> list[dict]:
        """Records by id, one request each; an id Stripe no longer has (404, `deleted: true`) is absent. Children are
        fetched through their parent's id (the ids an event names) or, for a subscription item, its own; a refund
        may be named by its charge (charge.refunded), whose refunds are listed."""
        path = self._check(entity)
        out: list[dict] = []
        for record_id in dict.fromkeys(str(i) for i in ids):
            if entity in EMBEDDED:
                parent_prefix = ID_PREFIX["subscriptions" if entity == "subscription_items" else "invoices"]
                if record_id.startswith(parent_prefix):
                    parent = self._retrieve(f"{path}/{record_id}")
                    out.extend(self._records(entity, [parent]) if parent else [])
                elif entity == "subscription_items":
                    item = self._retrieve(f"v1/subscription_items/{record_id}")
                    out.extend([stamp(entity, {**item, "_parent": item.get("subscription")})] if item else [])
                # An invoice line has no endpoint of its own: it is read again through its invoice.
                continue
            if entity == "refunds" and record_id.startswith(ID_PREFIX["charges"]):
                for page in paging.starting_after(self.get_json, path, {"charge": record_id}, limit=self.page_size):
                    out.extend(stamp(entity, r) for r in page.records)
                continue
            found = self._retrieve(f"{path}/{record_id}")
            if found is not None:
                out.append(stamp(entity, found))
        return out

    # -- the events feed -------------------------------------------------------------------------

    def _feed_lost(self, since: datetime) -> bool:
        """Whether events after `since` may have left the feed. Not when the feed still holds an event at or before
        `since`; otherwise when `since` is older than the retention before the source's now, which is the newest
        event's time (the source's clock, not ours), or ours when the feed is empty (an account silent for 30
        days: nothing says how old the cursor is, so it is re-walked)."""
        body, _ = self.get_json("v1/events", {"limit": 1, "created[lte]": int(since.timestamp())})
        if paging.records_at(body, "data"):
            return False
        now = self._newest_event() or datetime.now(UTC)
        return since < now - EVENT_RETENTION + FEED_EDGE

    def changed_since(self, entity: str, since: datetime) -> tuple[list[str], list[str], datetime | None]:
        """(ids to fetch again, ids deleted, the newest event's time) from the events after `since` (inclusive),
        the newest event per object deciding. For children the ids are their parents' (a deleted invoice's lines go
        with it: webhooks.close_deltas)."""
        params: dict[str, Any] = {"types[]": list(EVENT_TYPES[entity]), "created[gte]": int(since.timestamp())}
        decided: dict[str, bool] = {}  # object id -> deleted; first seen is newest (the feed is newest first)
        newest: int | None = None
        for page in paging.starting_after(self.get_json, "v1/events", params, limit=self.page_size):
            for event in page.records:
                created = event.get("created")
                if isinstance(created, int) and (newest is None or created > newest):
                    newest = created
                obj = (event.get("data") or {}).get("object")
                event_type = event.get("type")
                if not isinstance(obj, dict) or not isinstance(event_type, str):
                    continue
                record = named(entity, event_type, obj)
                if record is not None and record not in decided:
                    decided[record] = event_type in DELETES
        fetch = [i for i, gone in decided.items() if not gone]
        deleted = [i for i, gone in decided.items() if gone]
        return fetch, deleted, None if newest is None else datetime.fromtimestamp(newest, UTC)

    def updated_pages(self, entity: str, since: datetime, overlap: timedelta) -> Iterator[Page]:
        """What changed after `since` minus `overlap`, from the events feed (module docstring, "Delta"). Every page
        carries `since` as its cursor but the last, which carries the newest event seen."""
        self._check(entity)
        self.stats.deleted.pop(entity, None)
        self.rewalked.discard(entity)
        cursor = time_text(since)
        known = since >= NO_CURSOR
        if known and self._feed_lost(since):
            self.stats.events_feed = (
                f"cursor {cursor} is older than the events feed reaches (Stripe keeps {EVENT_RETENTION.days} days): "
                f"{entity} re-walked whole"
            )
            self.rewalked.add(entity)
            newest = self._newest_event()
            for page in self.window_pages(entity, None, None, None):
                yield Page(page.records, cursor)
            yield Page([], time_text(newest) if newest and newest > since else cursor)
            return
        start = since - overlap if known else datetime(1970, 1, 1, tzinfo=UTC)
        fetch, deleted, newest = self.changed_since(entity, start)
        self.stats.events_feed = (
            f"{len(fetch) + len(deleted)} {entity} named by events after {cursor if known else 'the feed start'}"
            f" ({len(deleted)} deleted)"
        )
        self.stats.deleted[entity] = set(deleted)
        for start in range(0, len(fetch), FETCH_PAGE):
            yield Page(self.fetch_ids(entity, fetch[start : start + FETCH_PAGE]), cursor)
        yield Page([], time_text(newest) if newest is not None and newest > since else cursor)

    def _newest_event(self) -> datetime | None:
        body, _ = self.get_json("v1/events", {"limit": 1})
        events = paging.records_at(body, "data")
        created = events[0].get("created") if events else None
        return datetime.fromtimestamp(created, UTC) if isinstance(created, int) else None
