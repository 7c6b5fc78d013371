"""Staging and core tables for Follow Up Boss, and the unified core.participant and core.contact_log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 08:53:37.692728
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fub_appointments",
        sa.Column("_row_id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("_batch_id", sa.UUID(), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=True),
        sa.Column("period_key", sa.Text(), nullable=True),
        sa.Column("_fetched_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("_row_id", name=op.f("pk_fub_appointments")),
        schema="staging",
    )
    op.create_index("ix_fub_appointments_batch", "fub_appointments", ["_batch_id"], unique=False, schema="staging")
    op.create_table(
        "fub_calls",
        sa.Column("_row_id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("_batch_id", sa.UUID(), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=True),
        sa.Column("period_key", sa.Text(), nullable=True),
        sa.Column("_fetched_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("_row_id", name=op.f("pk_fub_calls")),
        schema="staging",
    )
    op.create_index("ix_fub_calls_batch", "fub_calls", ["_batch_id"], unique=False, schema="staging")
    op.create_table(
        "fub_deals",
        sa.Column("_row_id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("_batch_id", sa.UUID(), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=True),
        sa.Column("period_key", sa.Text(), nullable=True),
        sa.Column("_fetched_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("_row_id", name=op.f("pk_fub_deals")),
        schema="staging",
    )
    op.create_index("ix_fub_deals_batch", "fub_deals", ["_batch_id"], unique=False, schema="staging")
    op.create_table(
        "fub_events",
        sa.Column("_row_id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("_batch_id", sa.UUID(), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=True),
        sa.Column("period_key", sa.Text(), nullable=True),
        sa.Column("_fetched_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("_row_id", name=op.f("pk_fub_events")),
        schema="staging",
    )
    op.create_index("ix_fub_events_batch", "fub_events", ["_batch_id"], unique=False, schema="staging")
    op.create_table(
        "fub_groups",
        sa.Column("_row_id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("_batch_id", sa.UUID(), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=True),
        sa.Column("period_key", sa.Text(), nullable=True),
        sa.Column("_fetched_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("_row_id", name=op.f("pk_fub_groups")),
        schema="staging",
    )
    op.create_index("ix_fub_groups_batch", "fub_groups", ["_batch_id"], unique=False, schema="staging")
    op.create_table(
        "fub_people",
        sa.Column("_row_id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("_batch_id", sa.UUID(), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=True),
        sa.Column("period_key", sa.Text(), nullable=True),
        sa.Column("_fetched_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("_row_id", name=op.f("pk_fub_people")),
        schema="staging",
    )
    op.create_index("ix_fub_people_batch", "fub_people", ["_batch_id"], unique=False, schema="staging")
    op.create_table(
        "fub_stages",
        sa.Column("_row_id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("_batch_id", sa.UUID(), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=True),
        sa.Column("period_key", sa.Text(), nullable=True),
        sa.Column("_fetched_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("_row_id", name=op.f("pk_fub_stages")),
        schema="staging",
    )
    op.create_index("ix_fub_stages_batch", "fub_stages", ["_batch_id"], unique=False, schema="staging")
    op.create_table(
        "fub_text_messages",
        sa.Column("_row_id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("_batch_id", sa.UUID(), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=True),
        sa.Column("period_key", sa.Text(), nullable=True),
        sa.Column("_fetched_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("_row_id", name=op.f("pk_fub_text_messages")),
        schema="staging",
    )
    op.create_index("ix_fub_text_messages_batch", "fub_text_messages", ["_batch_id"], unique=False, schema="staging")
    op.create_table(
        "fub_users",
        sa.Column("_row_id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("_batch_id", sa.UUID(), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=True),
        sa.Column("period_key", sa.Text(), nullable=True),
        sa.Column("_fetched_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("_row_id", name=op.f("pk_fub_users")),
        schema="staging",
    )
    op.create_index("ix_fub_users_batch", "fub_users", ["_batch_id"], unique=False, schema="staging")
    op.create_table(
        "contact_log",
        sa.Column("id", sa.UUID(), server_default=sa.text("bridge.uuid_v7()"), nullable=False),
        sa.Column("integration", sa.Text(), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("source_entity", sa.Text(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("participant_source_id", sa.Text(), nullable=True),
        sa.Column("agent_source_id", sa.Text(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("_synced_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "kind IN ('call', 'text', 'event', 'appointment', 'email', 'note')",
            name=op.f("ck_contact_log_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["bridge.accounts.id"],
            name=op.f("fk_contact_log_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_log")),
        sa.UniqueConstraint(
            "integration",
            "account_id",
            "source_entity",
            "source_id",
            name=op.f("uq_contact_log_integration_account_id_source_entity_source_id"),
        ),
        schema="core",
    )
    op.create_index(
        "ix_contact_log_participant",
        "contact_log",
        ["integration", "account_id", "participant_source_id"],
        unique=False,
        schema="core",
    )
    op.create_table(
        "fub_appointments",
        sa.Column("id", sa.UUID(), server_default=sa.text("bridge.uuid_v7()"), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("period_key", sa.Text(), nullable=True),
        sa.Column("created_at_source", sa.DateTime(timezone=True), nullable=True),
        sa.Column("person_source_id", sa.Text(), nullable=True),
        sa.Column("user_source_id", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("location", sa.Text(), nullable=True),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("_source_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("_row_hash", sa.Text(), nullable=False),
        sa.Column("_batch_id", sa.UUID(), nullable=True),
        sa.Column("_synced_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["bridge.accounts.id"],
            name=op.f("fk_fub_appointments_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fub_appointments")),
        sa.UniqueConstraint("account_id", "source_id", name=op.f("uq_fub_appointments_account_id_source_id")),
        schema="core",
    )
    op.create_index(
        "ix_fub_appointments_period",
        "fub_appointments",
        ["account_id", "period_key"],
        unique=False,
        schema="core",
    )
    op.create_table(
        "fub_calls",
        sa.Column("id", sa.UUID(), server_default=sa.text("bridge.uuid_v7()"), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("period_key", sa.Text(), nullable=True),
        sa.Column("created_at_source", sa.DateTime(timezone=True), nullable=True),
        sa.Column("person_source_id", sa.Text(), nullable=True),
        sa.Column("user_source_id", sa.Text(), nullable=True),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("is_incoming", sa.Boolean(), nullable=True),
        sa.Column("duration_seconds", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("_source_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("_row_hash", sa.Text(), nullable=False),
        sa.Column("_batch_id", sa.UUID(), nullable=True),
        sa.Column("_synced_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["bridge.accounts.id"],
            name=op.f("fk_fub_calls_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fub_calls")),
        sa.UniqueConstraint("account_id", "source_id", name=op.f("uq_fub_calls_account_id_source_id")),
        schema="core",
    )
    op.create_index("ix_fub_calls_period", "fub_calls", ["account_id", "period_key"], unique=False, schema="core")
    op.create_table(
        "fub_deals",
        sa.Column("id", sa.UUID(), server_default=sa.text("bridge.uuid_v7()"), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("period_key", sa.Text(), nullable=True),
        sa.Column("created_at_source", sa.DateTime(timezone=True), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("stage_source_id", sa.Text(), nullable=True),
        sa.Column("price", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("person_source_id", sa.Text(), nullable=True),
        sa.Column("user_source_id", sa.Text(), nullable=True),
        sa.Column("projected_close_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("_source_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("_row_hash", sa.Text(), nullable=False),
        sa.Column("_batch_id", sa.UUID(), nullable=True),
        sa.Column("_synced_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["bridge.accounts.id"],
            name=op.f("fk_fub_deals_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fub_deals")),
        sa.UniqueConstraint("account_id", "source_id", name=op.f("uq_fub_deals_account_id_source_id")),
        schema="core",
    )
    op.create_index("ix_fub_deals_period", "fub_deals", ["account_id", "period_key"], unique=False, schema="core")
    op.create_table(
        "fub_events",
        sa.Column("id", sa.UUID(), server_default=sa.text("bridge.uuid_v7()"), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("period_key", sa.Text(), nullable=True),
        sa.Column("created_at_source", sa.DateTime(timezone=True), nullable=True),
        sa.Column("person_source_id", sa.Text(), nullable=True),
        sa.Column("type", sa.Text(), nullable=True),
        sa.Column("lead_source", sa.Text(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("_source_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("_row_hash", sa.Text(), nullable=False),
        sa.Column("_batch_id", sa.UUID(), nullable=True),
        sa.Column("_synced_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["bridge.accounts.id"],
            name=op.f("fk_fub_events_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fub_events")),
        sa.UniqueConstraint("account_id", "source_id", name=op.f("uq_fub_events_account_id_source_id")),
        schema="core",
    )
    op.create_index("ix_fub_events_period", "fub_events", ["account_id", "period_key"], unique=False, schema="core")
    op.create_table(
        "fub_groups",
        sa.Column("id", sa.UUID(), server_default=sa.text("bridge.uuid_v7()"), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("period_key", sa.Text(), nullable=True),
        sa.Column("created_at_source", sa.DateTime(timezone=True), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("type", sa.Text(), nullable=True),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("_source_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("_row_hash", sa.Text(), nullable=False),
        sa.Column("_batch_id", sa.UUID(), nullable=True),
        sa.Column("_synced_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["bridge.accounts.id"],
            name=op.f("fk_fub_groups_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fub_groups")),
        sa.UniqueConstraint("account_id", "source_id", name=op.f("uq_fub_groups_account_id_source_id")),
        schema="core",
    )
    op.create_index("ix_fub_groups_period", "fub_groups", ["account_id", "period_key"], unique=False, schema="core")
    op.create_table(
        "fub_people",
        sa.Column("id", sa.UUID(), server_default=sa.text("bridge.uuid_v7()"), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("period_key", sa.Text(), nullable=True),
        sa.Column("created_at_source", sa.DateTime(timezone=True), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("first_name", sa.Text(), nullable=True),
        sa.Column("last_name", sa.Text(), nullable=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("stage", sa.Text(), nullable=True),
        sa.Column("lead_source", sa.Text(), nullable=True),
        sa.Column("price", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("assigned_user_source_id", sa.Text(), nullable=True),
        sa.Column("tags", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("_source_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("_row_hash", sa.Text(), nullable=False),
        sa.Column("_batch_id", sa.UUID(), nullable=True),
        sa.Column("_synced_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["bridge.accounts.id"],
            name=op.f("fk_fub_people_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fub_people")),
        sa.UniqueConstraint("account_id", "source_id", name=op.f("uq_fub_people_account_id_source_id")),
        schema="core",
    )
    op.create_index("ix_fub_people_period", "fub_people", ["account_id", "period_key"], unique=False, schema="core")
    op.create_table(
        "fub_stages",
        sa.Column("id", sa.UUID(), server_default=sa.text("bridge.uuid_v7()"), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("period_key", sa.Text(), nullable=True),
        sa.Column("created_at_source", sa.DateTime(timezone=True), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("order_weight", sa.Integer(), nullable=True),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("_source_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("_row_hash", sa.Text(), nullable=False),
        sa.Column("_batch_id", sa.UUID(), nullable=True),
        sa.Column("_synced_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["bridge.accounts.id"],
            name=op.f("fk_fub_stages_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fub_stages")),
        sa.UniqueConstraint("account_id", "source_id", name=op.f("uq_fub_stages_account_id_source_id")),
        schema="core",
    )
    op.create_index("ix_fub_stages_period", "fub_stages", ["account_id", "period_key"], unique=False, schema="core")
    op.create_table(
        "fub_text_messages",
        sa.Column("id", sa.UUID(), server_default=sa.text("bridge.uuid_v7()"), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("period_key", sa.Text(), nullable=True),
        sa.Column("created_at_source", sa.DateTime(timezone=True), nullable=True),
        sa.Column("person_source_id", sa.Text(), nullable=True),
        sa.Column("user_source_id", sa.Text(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("is_incoming", sa.Boolean(), nullable=True),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("_source_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("_row_hash", sa.Text(), nullable=False),
        sa.Column("_batch_id", sa.UUID(), nullable=True),
        sa.Column("_synced_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["bridge.accounts.id"],
            name=op.f("fk_fub_text_messages_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fub_text_messages")),
        sa.UniqueConstraint("account_id", "source_id", name=op.f("uq_fub_text_messages_account_id_source_id")),
        schema="core",
    )
    op.create_index(
        "ix_fub_text_messages_period",
        "fub_text_messages",
        ["account_id", "period_key"],
        unique=False,
        schema="core",
    )
    op.create_table(
        "fub_users",
        sa.Column("id", sa.UUID(), server_default=sa.text("bridge.uuid_v7()"), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("period_key", sa.Text(), nullable=True),
        sa.Column("created_at_source", sa.DateTime(timezone=True), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("role", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("_source_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("_row_hash", sa.Text(), nullable=False),
        sa.Column("_batch_id", sa.UUID(), nullable=True),
        sa.Column("_synced_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["bridge.accounts.id"],
            name=op.f("fk_fub_users_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fub_users")),
        sa.UniqueConstraint("account_id", "source_id", name=op.f("uq_fub_users_account_id_source_id")),
        schema="core",
    )
    op.create_index("ix_fub_users_period", "fub_users", ["account_id", "period_key"], unique=False, schema="core")
    op.create_table(
        "participant",
        sa.Column("id", sa.UUID(), server_default=sa.text("bridge.uuid_v7()"), nullable=False),
        sa.Column("integration", sa.Text(), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("source_entity", sa.Text(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("_synced_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('lead', 'agent', 'client', 'vendor')", name=op.f("ck_participant_kind")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["bridge.accounts.id"],
            name=op.f("fk_participant_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_participant")),
        sa.UniqueConstraint(
            "integration",
            "account_id",
            "source_entity",
            "source_id",
            name=op.f("uq_participant_integration_account_id_source_entity_source_id"),
        ),
        schema="core",
    )


def downgrade() -> None:
    op.drop_table("participant", schema="core")
    op.drop_index("ix_fub_users_period", table_name="fub_users", schema="core")
    op.drop_table("fub_users", schema="core")
    op.drop_index("ix_fub_text_messages_period", table_name="fub_text_messages", schema="core")
    op.drop_table("fub_text_messages", schema="core")
    op.drop_index("ix_fub_stages_period", table_name="fub_stages", schema="core")
    op.drop_table("fub_stages", schema="core")
    op.drop_index("ix_fub_people_period", table_name="fub_people", schema="core")
    op.drop_table("fub_people", schema="core")
    op.drop_index("ix_fub_groups_period", table_name="fub_groups", schema="core")
    op.drop_table("fub_groups", schema="core")
    op.drop_index("ix_fub_events_period", table_name="fub_events", schema="core")
    op.drop_table("fub_events", schema="core")
    op.drop_index("ix_fub_deals_period", table_name="fub_deals", schema="core")
    op.drop_table("fub_deals", schema="core")
    op.drop_index("ix_fub_calls_period", table_name="fub_calls", schema="core")
    op.drop_table("fub_calls", schema="core")
    op.drop_index("ix_fub_appointments_period", table_name="fub_appointments", schema="core")
    op.drop_table("fub_appointments", schema="core")
    op.drop_index("ix_contact_log_participant", table_name="contact_log", schema="core")
    op.drop_table("contact_log", schema="core")
    op.drop_index("ix_fub_users_batch", table_name="fub_users", schema="staging")
    op.drop_table("fub_users", schema="staging")
    op.drop_index("ix_fub_text_messages_batch", table_name="fub_text_messages", schema="staging")
    op.drop_table("fub_text_messages", schema="staging")
    op.drop_index("ix_fub_stages_batch", table_name="fub_stages", schema="staging")
    op.drop_table("fub_stages", schema="staging")
    op.drop_index("ix_fub_people_batch", table_name="fub_people", schema="staging")
    op.drop_table("fub_people", schema="staging")
    op.drop_index("ix_fub_groups_batch", table_name="fub_groups", schema="staging")
    op.drop_table("fub_groups", schema="staging")
    op.drop_index("ix_fub_events_batch", table_name="fub_events", schema="staging")
    op.drop_table("fub_events", schema="staging")
    op.drop_index("ix_fub_deals_batch", table_name="fub_deals", schema="staging")
    op.drop_table("fub_deals", schema="staging")
    op.drop_index("ix_fub_calls_batch", table_name="fub_calls", schema="staging")
    op.drop_table("fub_calls", schema="staging")
    op.drop_index("ix_fub_appointments_batch", table_name="fub_appointments", schema="staging")
    op.drop_table("fub_appointments", schema="staging")
