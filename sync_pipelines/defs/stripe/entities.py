"""What Stripe entities are, where they come from, and how their fields map to core columns.

Every record reaches the load path with what the client adds (client.py, `stamp`): `_created` and `_updated`
(Stripe's epoch `created` as ISO 8601 UTC text, absent when `created` is not an integer, which sends the record to
the DLQ), `_t` (the other epoch-second times an entity maps, as ISO text), `_livemode` (the JSON boolean, or a text
that names what came instead, which the boolean cast refuses) and, for the rows read out of a parent's embedded list
(subscription items, invoice lines), `_parent` and the parent's `created`. The record is otherwise stored as
received.

Stripe objects carry no update time. `_updated` (-> `_source_updated_at`) is the creation time: it never holds a
write back (every write of an object carries the same one), and the newest of them is where a first delta starts.
Every write is the object as the API served it at that moment (a list read or a re-fetch by id), so the newest read
wins, and the change guard skips what did not change. Events are never applied from their snapshots (client.py,
"Delta").

No entity declares a parent (EntitySpec.parent): Stripe keeps a deleted customer's canceled subscriptions, invoices
and charges, so a child whose parent was deleted before our first read would wait in pending_children forever.
The ids are kept as `<name>_source_id` columns to join on.
"""

from __future__ import annotations

from sync_pipelines.defs.stripe import tables
from sync_pipelines.lib.integration.declaration import Incremental, Partitioning
from sync_pipelines.lib.load import EntitySpec
from sync_pipelines.lib.mappings import FieldMapping as M

INTEGRATION = "stripe"
LOAD_ORDER = tables.ENTITIES
CREATED_FIELD = "_created"
# Products and prices are a catalog of a few dozen, read whole; everything else is filtered by `created`: month x
# account.
PARTITIONING = {
    entity: Partitioning.ACCOUNT if entity in ("products", "prices") else Partitioning.PERIOD_ACCOUNT
    for entity in LOAD_ORDER
}
# Every entity's delta reads the events feed (/v1/events) after its cursor.
INCREMENTAL = dict.fromkeys(LOAD_ORDER, Incremental.EVENTS)
DESCRIPTIONS = {
    "subscription_items": "Read from each subscription's embedded `items` list: no call of their own.",
    "invoice_line_items": "Read from each invoice's embedded `lines` list: no call of their own.",
    "payment_intents": "Money in minor units (`amount`) with `currency`.",
}

# Epoch-second fields mapped to timestamptz: target column -> path in the record. The client converts them into
# `_t.<target>` (Postgres does not read epoch seconds as a time).
TIMES: dict[str, dict[str, str]] = {
    "subscriptions": {
        "current_period_start": "current_period_start",
        "current_period_end": "current_period_end",
        "start_date": "start_date",
        "canceled_at": "canceled_at",
        "ended_at": "ended_at",
        "trial_start": "trial_start",
        "trial_end": "trial_end",
    },
    "invoices": {
        "period_start": "period_start",
        "period_end": "period_end",
        "due_date": "due_date",
        "paid_at": "status_transitions.paid_at",
    },
    "invoice_line_items": {"period_start": "period.start", "period_end": "period.end"},
    "payouts": {"arrival_date": "arrival_date"},
}


def _t(*targets: str) -> tuple[M, ...]:
    return tuple(M(f"_t.{target}", target, "timestamptz") for target in targets)


def _system() -> tuple[M, ...]:
    return (
        M("id", "source_id", "text", is_required=True),
        M(CREATED_FIELD, "created_at_source", "timestamptz", is_required=True),
        # Stripe objects have no update time: the client sets the creation time (module docstring).
        M("_updated", "_source_updated_at", "timestamptz"),
    )


_MAPPINGS: dict[str, tuple[M, ...]] = {
    "customers": (
        M("email", "email", transformation="trim_lower"),
        M("name", "name", transformation="trim"),
        M("phone", "phone", transformation="trim"),
        M("description", "description"),
        M("currency", "currency", transformation="lower"),
        M("balance", "balance", "bigint"),
        M("delinquent", "delinquent", "boolean"),
        M("_livemode", "livemode", "boolean"),
        M("metadata", "metadata", "jsonb"),
    ),
    "products": (
        M("name", "name", transformation="trim"),
        M("description", "description"),
        M("type", "product_type"),
        M("default_price", "default_price_source_id"),
        M("active", "active", "boolean"),
        M("_livemode", "livemode", "boolean"),
        M("metadata", "metadata", "jsonb"),
    ),
    "prices": (
        M("product", "product_source_id"),
        M("currency", "currency", transformation="lower"),
        M("type", "price_type"),
        M("nickname", "nickname"),
        M("recurring.interval", "recurring_interval"),
        M("lookup_key", "lookup_key"),
        M("unit_amount", "unit_amount", "bigint"),
        M("recurring.interval_count", "recurring_interval_count", "integer"),
        M("active", "active", "boolean"),
        M("_livemode", "livemode", "boolean"),
    ),
    "subscriptions": (
        M("customer", "customer_source_id", is_required=True),
        M("status", "status"),
        M("latest_invoice", "latest_invoice_source_id"),
        M("collection_method", "collection_method"),
        *_t(*TIMES["subscriptions"]),
        M("cancel_at_period_end", "cancel_at_period_end", "boolean"),
        M("_livemode", "livemode", "boolean"),
        M("metadata", "metadata", "jsonb"),
    ),
    "subscription_items": (
        M("_parent", "subscription_source_id", is_required=True),
        M("price.id", "price_source_id"),
        M("price.product", "product_source_id"),
        M("price.currency", "currency", transformation="lower"),
        M("price.unit_amount", "unit_amount", "bigint"),
        M("quantity", "quantity", "bigint"),
    ),
    "invoices": (
        M("customer", "customer_source_id", is_required=True),
        M("subscription", "subscription_source_id"),
        M("charge", "charge_source_id"),
        M("payment_intent", "payment_intent_source_id"),
        M("number", "number"),
        M("status", "status"),
        M("billing_reason", "billing_reason"),
        M("collection_method", "collection_method"),
        M("currency", "currency", transformation="lower", is_required=True),
        M("hosted_invoice_url", "hosted_invoice_url"),
        M("amount_due", "amount_due", "bigint"),
        M("amount_paid", "amount_paid", "bigint"),
        M("amount_remaining", "amount_remaining", "bigint"),
        M("subtotal", "subtotal", "bigint"),
        M("total", "total", "bigint"),
        M("tax", "tax", "bigint"),
        *_t(*TIMES["invoices"]),
        M("paid", "paid", "boolean"),
        M("_livemode", "livemode", "boolean"),
    ),
    "invoice_line_items": (
        M("_parent", "invoice_source_id", is_required=True),
        M("subscription", "subscription_source_id"),
        M("price.id", "price_source_id"),
        M("type", "line_type"),
        M("description", "description"),
        M("currency", "currency", transformation="lower", is_required=True),
        M("amount", "amount", "bigint"),
        M("quantity", "quantity", "bigint"),
        *_t(*TIMES["invoice_line_items"]),
        M("proration", "proration", "boolean"),
    ),
    "charges": (
        M("customer", "customer_source_id"),
        M("invoice", "invoice_source_id"),
        M("payment_intent", "payment_intent_source_id"),
        M("balance_transaction", "balance_transaction_id"),
        M("status", "status"),
        M("currency", "currency", transformation="lower", is_required=True),
        M("description", "description"),
        M("failure_code", "failure_code"),
        M("failure_message", "failure_message"),
        M("payment_method_details.card.brand", "card_brand"),
        M("payment_method_details.card.last4", "card_last4"),
        M("outcome.type", "outcome_type"),
        M("amount", "amount", "bigint", is_required=True),
        M("amount_captured", "amount_captured", "bigint"),
        M("amount_refunded", "amount_refunded", "bigint"),
        M("paid", "paid", "boolean"),
        M("captured", "captured", "boolean"),
        M("refunded", "refunded", "boolean"),
        M("_livemode", "livemode", "boolean"),
    ),
    "payment_intents": (
        M("customer", "customer_source_id"),
        M("invoice", "invoice_source_id"),
        M("latest_charge", "latest_charge_source_id"),
        M("status", "status"),
        M("currency", "currency", transformation="lower", is_required=True),
        M("description", "description"),
        M("capture_method", "capture_method"),
        M("amount", "amount", "bigint", is_required=True),
        M("amount_received", "amount_received", "bigint"),
        M("_livemode", "livemode", "boolean"),
    ),
    "refunds": (
        M("charge", "charge_source_id"),
        M("payment_intent", "payment_intent_source_id"),
        M("status", "status"),
        M("reason", "reason"),
        M("currency", "currency", transformation="lower", is_required=True),
        M("amount", "amount", "bigint", is_required=True),
    ),
    "payouts": (
        M("status", "status"),
        M("currency", "currency", transformation="lower", is_required=True),
        M("method", "method"),
        M("type", "payout_type"),
        M("description", "description"),
        M("failure_code", "failure_code"),
        M("amount", "amount", "bigint", is_required=True),
        *_t(*TIMES["payouts"]),
        M("automatic", "automatic", "boolean"),
        M("_livemode", "livemode", "boolean"),
    ),
}
DEFAULT_MAPPINGS: dict[str, tuple[M, ...]] = {entity: (*_system(), *_MAPPINGS[entity]) for entity in LOAD_ORDER}


def _spec(entity: str) -> EntitySpec:
    return EntitySpec(
        integration=INTEGRATION,
        entity=entity,
        staging=tables.staging(entity),
        core=tables.core(entity),
        mappings=DEFAULT_MAPPINGS[entity],
        id_field="id",
        created_field=CREATED_FIELD,
    )


SPECS: dict[str, EntitySpec] = {entity: _spec(entity) for entity in LOAD_ORDER}
