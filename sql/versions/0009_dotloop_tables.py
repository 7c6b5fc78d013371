"""DotLoop staging and core tables.

- staging.dotloop_<entity> / core.dotloop_<entity> for profiles, loops, participants and contacts
  (sync_pipelines/defs/dotloop/tables.py). Loops carry their detail sections flattened into typed columns
  (address, price, contract and closing dates, MLS number) and `merged_into_source_id`, the loop DotLoop merged a
  soft-deleted one into.
- core.dotloop_loops is indexed on `_synced_at`: the unified core.transaction and core.listing are updated from the
  loops a sync changed, found by that index rather than by a scan.
- core.dotloop_participants is indexed on (account_id, loop_source_id): a loop's participants (its agent for the
  unified rows, and the lists a delta read again) are found without a scan.

The tables are written out here rather than built from the live metadata, so this revision keeps creating
exactly what it created when it was written.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 07:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _text(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.Text(), nullable=True) for name in names]


def _integer(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.Integer(), nullable=True) for name in names]


def _boolean(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.Boolean(), nullable=True) for name in names]


def _date(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.Date(), nullable=True) for name in names]


def _entity_columns() -> dict[str, list[sa.Column]]:
    """Fresh Column objects on each call: a Column belongs to the one table it is created in."""
    return {
        "profiles": [
            *_text("name", "profile_type", "company", "phone", "fax", "address", "city", "state", "zip"),
            *_boolean("is_default", "requires_template"),
        ],
        "loops": [
            *_text("profile_source_id", "name", "status", "transaction_type"),
            *_integer("total_task_count", "completed_task_count"),
            *_text("loop_url", "street_number", "street_name", "unit_number", "city", "state", "zip", "county"),
            *_text("country", "mls_number"),
            sa.Column("price", sa.Numeric(precision=14, scale=2), nullable=True),
            *_date("contract_agreement_date", "closing_date", "listing_date", "expiration_date"),
            *_text("transaction_number", "merged_into_source_id"),
        ],
        "participants": _text("loop_source_id", "profile_source_id", "full_name", "email", "role", "phone"),
        "contacts": _text("first_name", "last_name", "email", "home_phone", "office_phone", "fax", "address")
        + _text("city", "state", "zip", "country"),
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
        name = f"dotloop_{entity}"
        _create_staging(name)
        _create_core(name, columns)
    op.create_index("ix_dotloop_loops_synced_at", "dotloop_loops", ["_synced_at"], unique=False, schema="core")
    op.create_index(
        "ix_dotloop_participants_loop", "dotloop_participants", ["account_id", "loop_source_id"], unique=False,
        schema="core",
    )  # fmt: skip


def downgrade() -> None:
    for entity in reversed(list(_entity_columns())):
        name = f"dotloop_{entity}"
        op.drop_table(name, schema="core")  # its indexes and constraints go with it
        op.drop_table(name, schema="staging")
