"""SkySlope staging and core tables.

- staging.skyslope_<entity> / core.skyslope_<entity> for offices, users, listings and sales
  (sync_pipelines/defs/skyslope/tables.py).
- core.skyslope_sales and core.skyslope_listings are indexed on `_synced_at`: the unified core.transaction and
  core.listing are updated from the rows a sync changed, found by that index rather than by a scan.

The tables are written out here rather than built from the live metadata, so this revision keeps creating
exactly what it created when it was written.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ENTITIES = ("offices", "users", "listings", "sales")
SYNCED_INDEXED = ("sales", "listings")


def _text(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.Text(), nullable=True) for name in names]


def _integer(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.Integer(), nullable=True) for name in names]


def _money(name: str) -> sa.Column:
    return sa.Column(name, sa.Numeric(precision=14, scale=2), nullable=True)


def _percent(name: str) -> sa.Column:
    return sa.Column(name, sa.Numeric(precision=7, scale=3), nullable=True)


def _date(name: str) -> sa.Column:
    return sa.Column(name, sa.Date(), nullable=True)


def _jsonb(name: str) -> sa.Column:
    return sa.Column(name, postgresql.JSONB(astext_type=sa.Text()), nullable=True)


def _boolean(name: str) -> sa.Column:
    return sa.Column(name, sa.Boolean(), nullable=True)


def _bigint(name: str) -> sa.Column:
    return sa.Column(name, sa.BigInteger(), nullable=True)


def _file() -> list[sa.Column]:
    return [
        *_text("agent_guid", "created_by_guid", "status", "stage"),
        *_integer("stage_id"),
        *_text("checklist_type", "mls_number"),
        _bigint("office_id"),
        *_text("office_guid", "lead_source", "file_email", "agent_email", "agent_first_name", "agent_last_name"),
        *_text("street_number", "direction", "street_name", "unit", "city", "state", "zip", "county"),
        *_integer("year_built", "area_sqft"),
        _jsonb("sellers"),
        _jsonb("custom_fields"),
    ]


def _entity_columns() -> dict[str, list[sa.Column]]:
    """Fresh Column objects on each call: a Column belongs to the one table it is created in."""
    return {
        "offices": [_bigint("office_id"), *_text("name", "street_address", "city", "state", "zip", "phone")],
        "users": [
            *_text("email", "first_name", "last_name", "public_id", "user_type", "office_guid"),
            _boolean("is_active"),
            *_text("phone", "alternate_phone", "street_number", "street_name", "city", "state", "zip"),
        ],
        "listings": [
            *_file(),
            *_text("co_listing_agent_guid", "referring_agent_guid", "listing_type"),
            _money("listing_price"),
            _percent("listing_commission_percent"),
            _percent("buyer_commission_percent"),
            _date("listing_date"),
            _date("expiration_date"),
        ],
        "sales": [
            *_file(),
            *_text("listing_guid"),
            *_integer("status_id"),
            *_text("deal_type", "escrow_number"),
            _money("sale_price"),
            _money("listing_price"),
            _money("commission_amount"),
            _percent("commission_percent"),
            _boolean("is_office_lead"),
            *_text("co_broker_company"),
            _jsonb("buyers"),
            _jsonb("commission_splits"),
            _date("contract_acceptance_date"),
            _date("escrow_closing_date"),
            _date("actual_closing_date"),
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
        name = f"skyslope_{entity}"
        _create_staging(name)
        _create_core(name, columns)
        if entity in SYNCED_INDEXED:
            op.create_index(f"ix_{name}_synced_at", name, ["_synced_at"], unique=False, schema="core")


def downgrade() -> None:
    for entity in reversed(ENTITIES):
        name = f"skyslope_{entity}"
        op.drop_table(name, schema="core")  # its indexes and constraints go with it
        op.drop_table(name, schema="staging")
