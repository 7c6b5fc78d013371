"""Staging and core tables of the Stripe entities, on the shared warehouse metadata (migration 0013).

Money is integer minor units (`bigint`, Stripe's own `amount` fields: cents for USD, yen for JPY) beside a
`currency` column: never a float, never a numeric that would hide the currency's exponent. Stripe's epoch-second
times are `timestamptz`. Ids another object names are kept as `<name>_source_id` text columns to join on; no entity
declares a parent (see entities.py).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Integer, Table, Text
from sqlalchemy.dialects.postgresql import JSONB

from sync_pipelines.lib import schema

PREFIX = "stripe_"
ENTITIES = (
    "customers",
    "products",
    "prices",
    "subscriptions",
    "subscription_items",
    "invoices",
    "invoice_line_items",
    "charges",
    "payment_intents",
    "refunds",
    "payouts",
)


def _text(*names: str) -> tuple[Column, ...]:
    return tuple(Column(name, Text) for name in names)


def _money(*names: str) -> tuple[Column, ...]:
    return tuple(Column(name, BigInteger) for name in names)


def _time(*names: str) -> tuple[Column, ...]:
    return tuple(Column(name, DateTime(timezone=True)) for name in names)


def _flag(*names: str) -> tuple[Column, ...]:
    return tuple(Column(name, Boolean) for name in names)


def _columns() -> dict[str, tuple[Column, ...]]:
    """Typed columns besides those every core entity table has (ids, created, change guard, soft delete)."""
    return {
        "customers": (
            *_text("email", "name", "phone", "description", "currency"),
            *_money("balance"),
            *_flag("delinquent", "livemode"),
            Column("metadata", JSONB),
        ),
        "products": (
            *_text("name", "description", "product_type", "default_price_source_id"),
            *_flag("active", "livemode"),
            Column("metadata", JSONB),
        ),
        "prices": (
            *_text("product_source_id", "currency", "price_type", "nickname", "recurring_interval", "lookup_key"),
            *_money("unit_amount"),
            Column("recurring_interval_count", Integer),
            *_flag("active", "livemode"),
        ),
        "subscriptions": (
            *_text("customer_source_id", "status", "latest_invoice_source_id", "collection_method"),
            *_time("current_period_start", "current_period_end", "start_date", "canceled_at", "ended_at"),
            *_time("trial_start", "trial_end"),
            *_flag("cancel_at_period_end", "livemode"),
            Column("metadata", JSONB),
        ),
        "subscription_items": (
            *_text("subscription_source_id", "price_source_id", "product_source_id", "currency"),
            *_money("unit_amount"),
            Column("quantity", BigInteger),
        ),
        "invoices": (
            *_text("customer_source_id", "subscription_source_id", "charge_source_id", "payment_intent_source_id"),
            *_text("number", "status", "billing_reason", "collection_method", "currency", "hosted_invoice_url"),
            *_money("amount_due", "amount_paid", "amount_remaining", "subtotal", "total", "tax"),
            *_time("period_start", "period_end", "due_date", "paid_at"),
            *_flag("paid", "livemode"),
        ),
        "invoice_line_items": (
            *_text("invoice_source_id", "subscription_source_id", "price_source_id", "line_type", "description"),
            *_text("currency"),
            *_money("amount"),
            Column("quantity", BigInteger),
            *_time("period_start", "period_end"),
            *_flag("proration"),
        ),
        "charges": (
            *_text("customer_source_id", "invoice_source_id", "payment_intent_source_id", "balance_transaction_id"),
            *_text("status", "currency", "description", "failure_code", "failure_message", "card_brand"),
            *_text("card_last4", "outcome_type"),
            *_money("amount", "amount_captured", "amount_refunded"),
            *_flag("paid", "captured", "refunded", "livemode"),
        ),
        "payment_intents": (
            *_text("customer_source_id", "invoice_source_id", "latest_charge_source_id", "status", "currency"),
            *_text("description", "capture_method"),
            *_money("amount", "amount_received"),
            *_flag("livemode"),
        ),
        "refunds": (
            *_text("charge_source_id", "payment_intent_source_id", "status", "reason", "currency"),
            *_money("amount"),
        ),
        "payouts": (
            *_text("status", "currency", "method", "payout_type", "description", "failure_code"),
            *_money("amount"),
            *_time("arrival_date"),
            *_flag("automatic", "livemode"),
        ),
    }


TABLES = schema.entity_tables(PREFIX, {e: _columns()[e] for e in ENTITIES})


def staging(entity: str) -> Table:
    return TABLES[entity][0]


def core(entity: str) -> Table:
    return TABLES[entity][1]
