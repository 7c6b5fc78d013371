"""Stripe staging and core tables.

- staging.stripe_<entity> / core.stripe_<entity> for customers, products, prices, subscriptions, subscription_items,
  invoices, invoice_line_items, charges, payment_intents, refunds and payouts (sync_pipelines/defs/stripe/tables.py).
- Money is bigint minor units beside a `currency` column; Stripe's epoch times are timestamptz.

The tables are written out here rather than built from the live metadata, so this revision keeps creating
exactly what it created when it was written.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def _text(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.Text(), nullable=True) for name in names]


def _money(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.BigInteger(), nullable=True) for name in names]


def _time(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.DateTime(timezone=True), nullable=True) for name in names]


def _flag(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.Boolean(), nullable=True) for name in names]


def _jsonb(name: str) -> sa.Column:
    return sa.Column(name, postgresql.JSONB(astext_type=sa.Text()), nullable=True)


def _entity_columns() -> dict[str, list[sa.Column]]:
    """Fresh Column objects on each call: a Column belongs to the one table it is created in."""
    return {
        "customers": [
            *_text("email", "name", "phone", "description", "currency"),
            *_money("balance"),
            *_flag("delinquent", "livemode"),
            _jsonb("metadata"),
        ],
        "products": [
            *_text("name", "description", "product_type", "default_price_source_id"),
            *_flag("active", "livemode"),
            _jsonb("metadata"),
        ],
        "prices": [
            *_text("product_source_id", "currency", "price_type", "nickname", "recurring_interval", "lookup_key"),
            *_money("unit_amount"),
            sa.Column("recurring_interval_count", sa.Integer(), nullable=True),
            *_flag("active", "livemode"),
        ],
        "subscriptions": [
            *_text("customer_source_id", "status", "latest_invoice_source_id", "collection_method"),
            *_time("current_period_start", "current_period_end", "start_date", "canceled_at", "ended_at"),
            *_time("trial_start", "trial_end"),
            *_flag("cancel_at_period_end", "livemode"),
            _jsonb("metadata"),
        ],
        "subscription_items": [
            *_text("subscription_source_id", "price_source_id", "product_source_id", "currency"),
            *_money("unit_amount", "quantity"),
        ],
        "invoices": [
            *_text("customer_source_id", "subscription_source_id", "charge_source_id", "payment_intent_source_id"),
            *_text("number", "status", "billing_reason", "collection_method", "currency", "hosted_invoice_url"),
            *_money("amount_due", "amount_paid", "amount_remaining", "subtotal", "total", "tax"),
            *_time("period_start", "period_end", "due_date", "paid_at"),
            *_flag("paid", "livemode"),
        ],
        "invoice_line_items": [
            *_text("invoice_source_id", "subscription_source_id", "price_source_id", "line_type", "description"),
            *_text("currency"),
            *_money("amount", "quantity"),
            *_time("period_start", "period_end"),
            *_flag("proration"),
        ],
        "charges": [
            *_text("customer_source_id", "invoice_source_id", "payment_intent_source_id", "balance_transaction_id"),
            *_text("status", "currency", "description", "failure_code", "failure_message", "card_brand"),
            *_text("card_last4", "outcome_type"),
            *_money("amount", "amount_captured", "amount_refunded"),
            *_flag("paid", "captured", "refunded", "livemode"),
        ],
        "payment_intents": [
            *_text("customer_source_id", "invoice_source_id", "latest_charge_source_id", "status", "currency"),
            *_text("description", "capture_method"),
            *_money("amount", "amount_received"),
            *_flag("livemode"),
        ],
        "refunds": [
            *_text("charge_source_id", "payment_intent_source_id", "status", "reason", "currency"),
            *_money("amount"),
        ],
        "payouts": [
            *_text("status", "currency", "method", "payout_type", "description", "failure_code"),
            *_money("amount"),
            *_time("arrival_date"),
            *_flag("automatic", "livemode"),
        ],
    }


def _create_staging(name: str) -> None:
    op.create_table(
        name,
        sa.Column("_row_id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("_batch_id", sa.UUID(), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=True),
        sa.Column("period_key", sa.Text(), nullable=True),
        sa.Column("_fetched_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("_raw_hash", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("_row_id", name=op.f(f"pk_{name}")),
        schema="staging",
    )
    op.create_index(f"ix_{name}_batch", name, ["_batch_id"], unique=False, schema="staging")


def _create_core(name: str, columns: list[sa.Column]) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.UUID(), server_default=sa.text("bridge.uuid_v7()"), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("period_key", sa.Text(), nullable=True),
        sa.Column("created_at_source", sa.DateTime(timezone=True), nullable=True),
        *columns,
        sa.Column("_source_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("_row_hash", sa.Text(), nullable=False),
        sa.Column("_batch_id", sa.UUID(), nullable=True),
        sa.Column("_synced_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
        sa.UniqueConstraint("account_id", "source_id", name=op.f(f"uq_{name}_account_id_source_id")),
        schema="core",
    )
    op.create_index(f"ix_{name}_period", name, ["account_id", "period_key"], unique=False, schema="core")


def upgrade() -> None:
    for entity, columns in _entity_columns().items():
        name = f"stripe_{entity}"
        _create_staging(name)
        _create_core(name, columns)


def downgrade() -> None:
    for entity in reversed(list(_entity_columns())):
        name = f"stripe_{entity}"
        op.drop_table(name, schema="core")  # its indexes and constraints go with it
        op.drop_table(name, schema="staging")
