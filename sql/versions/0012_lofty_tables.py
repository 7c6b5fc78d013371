"""Lofty staging and core tables.

- staging.lofty_<entity> / core.lofty_<entity> for users (the team's members), leads, tags (one row per tag on a
  lead, an object with its own id, name, creator and times) and activities (calls, texts and emails of a lead)
  (sync_pipelines/defs/lofty/tables.py).
- core.lofty_tags and core.lofty_activities are indexed on (account_id, lead_source_id): a lead's children are
  found without a scan.

The tables are written out here rather than built from the live metadata, so this revision keeps creating
exactly what it created when it was written.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _text(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.Text(), nullable=True) for name in names]


def _bigint(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.BigInteger(), nullable=True) for name in names]


def _integer(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.Integer(), nullable=True) for name in names]


def _boolean(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.Boolean(), nullable=True) for name in names]


def _jsonb(*names: str) -> list[sa.Column]:
    return [sa.Column(name, postgresql.JSONB(astext_type=sa.Text()), nullable=True) for name in names]


def _entity_columns() -> dict[str, list[sa.Column]]:
    """Fresh Column objects on each call: a Column belongs to the one table it is created in."""
    return {
        "users": [
            *_bigint("member_id", "team_id"),
            *_text("email", "first_name", "last_name", "phone"),
            *_integer("role"),
            *_text("role_name"),
            *_boolean("is_admin"),
            *_integer("status"),
            *_text("account_status"),
            *_bigint("group_id"),
            *_text("group_name", "time_zone"),
        ],
        "leads": [
            *_bigint("lead_user_id", "team_id"),
            *_text("first_name", "last_name", "email", "phone"),
            *_jsonb("emails", "phones"),
            *_bigint("stage_id"),
            *_text("stage"),
            *_bigint("lead_source_id"),
            *_text("lead_source", "assigned_user_source_id", "assigned_user", "lender_user_source_id"),
            *_integer("score"),
            *_text("street_address", "city", "state", "zip"),
            *_jsonb("lead_types", "lead_inquiry", "properties", "tags"),
            *_boolean("hidden", "cannot_text", "cannot_call", "cannot_email"),
            *_text("referred_by"),
            sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=True),
        ],
        "tags": [
            *_text("lead_source_id"),
            *_bigint("tag_id"),
            *_text("tag_name", "creator_user_source_id"),
            *_integer("visible_type"),
        ],
        "activities": [
            *_text("lead_source_id", "agent_source_id", "channel", "communication_type", "direction"),
            *_text("calling_outcome"),
            *_integer("duration_seconds"),
            *_text("lead_phone_number", "email_event_type", "email_subject", "note"),
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
        name = f"lofty_{entity}"
        _create_staging(name)
        _create_core(name, columns)
    for entity in ("tags", "activities"):
        op.create_index(
            f"ix_lofty_{entity}_lead", f"lofty_{entity}", ["account_id", "lead_source_id"], unique=False,
            schema="core",
        )  # fmt: skip


def downgrade() -> None:
    for entity in reversed(list(_entity_columns())):
        name = f"lofty_{entity}"
        op.drop_table(name, schema="core")  # its indexes and constraints go with it
        op.drop_table(name, schema="staging")
