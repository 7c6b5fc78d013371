"""Schemas bridge, staging and core, and every bridge table of the sync machinery.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 08:22:18.325268
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# Listed here, not imported, so this migration never changes when the code does.
SCHEMAS = ("bridge", "staging", "core")

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    for schema in SCHEMAS:
        op.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    # UUIDv7 for rows created by set-based SQL (Postgres < 18 has no uuidv7()): 48 bits of Unix
    # milliseconds, then random bits, with the version and variant bits set.
    op.execute(
        """
        CREATE OR REPLACE FUNCTION bridge.uuid_v7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
          SELECT encode(
            set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) PLACING
              substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
              FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
        $$
        """
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.UUID(), server_default=sa.text("bridge.uuid_v7()"), nullable=False),
        sa.Column("integration", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "config",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("status", sa.Text(), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "integration IN ('fub', 'rezen', 'skyslope', 'dotloop', 'lofty', 'stripe', 'erp')",
            name=op.f("ck_accounts_integration"),
        ),
        sa.CheckConstraint("status IN ('pending', 'active', 'error', 'disabled')", name=op.f("ck_accounts_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("integration", "name", name=op.f("uq_accounts_integration_name")),
        schema="bridge",
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.UUID(), server_default=sa.text("bridge.uuid_v7()"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("integration", sa.Text(), nullable=True),
        sa.Column("entity_type", sa.Text(), nullable=False),
        sa.Column("entity_id", sa.UUID(), nullable=True),
        sa.Column("source_id", sa.Text(), nullable=True),
        sa.Column("account_id", sa.UUID(), nullable=True),
        sa.Column("batch_id", sa.UUID(), nullable=True),
        sa.Column("old_value", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("new_value", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("actor", sa.Text(), server_default=sa.text("'sync'"), nullable=False),
        sa.CheckConstraint("action IN ('CREATE', 'UPDATE', 'DELETE')", name=op.f("ck_audit_log_action")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
        schema="bridge",
    )
    op.create_index("ix_audit_log_batch", "audit_log", ["batch_id"], unique=False, schema="bridge")
    op.create_index("ix_audit_log_entity", "audit_log", ["entity_type", "entity_id"], unique=False, schema="bridge")
    op.create_table(
        "background_sync_schedule",
        sa.Column("id", sa.UUID(), server_default=sa.text("bridge.uuid_v7()"), nullable=False),
        sa.Column("source_system", sa.Text(), nullable=False),
        sa.Column("entity_name", sa.Text(), nullable=False),
        sa.Column("is_enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("sync_window_start", sa.Time(), server_default=sa.text("'19:00'"), nullable=False),
        sa.Column("sync_window_end", sa.Time(), server_default=sa.text("'07:00'"), nullable=False),
        sa.Column("timezone", sa.Text(), server_default=sa.text("'UTC'"), nullable=False),
        sa.Column("days_to_complete", sa.Integer(), server_default=sa.text("7"), nullable=False),
        sa.Column("rows_per_day", sa.BigInteger(), nullable=True),
        sa.Column("chunk_size", sa.Integer(), server_default=sa.text("50000"), nullable=False),
        sa.Column("total_rows", sa.BigInteger(), nullable=True),
        sa.Column("rows_done", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("rows_done_today", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("current_offset", sa.Text(), nullable=True),
        sa.Column("night_started_on", sa.Text(), nullable=True),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.Text(), server_default=sa.text("'active'"), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'paused', 'completed', 'error')",
            name=op.f("ck_background_sync_schedule_status"),
        ),
        sa.CheckConstraint("chunk_size > 0", name=op.f("ck_background_sync_schedule_chunk_size")),
        sa.CheckConstraint("days_to_complete > 0", name=op.f("ck_background_sync_schedule_days_to_complete")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_background_sync_schedule")),
        sa.UniqueConstraint(
            "source_system", "entity_name", name=op.f("uq_background_sync_schedule_source_system_entity_name")
        ),
        schema="bridge",
    )
    op.create_table(
        "error_log",
        sa.Column("id", sa.UUID(), server_default=sa.text("bridge.uuid_v7()"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("module", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("severity", sa.Text(), server_default=sa.text("'error'"), nullable=False),
        sa.Column("integration", sa.Text(), nullable=True),
        sa.Column("account_id", sa.UUID(), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("notified", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.CheckConstraint(
            "severity IN ('debug', 'info', 'warning', 'error', 'critical')",
            name=op.f("ck_error_log_severity"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_error_log")),
        schema="bridge",
    )
    op.create_index("ix_error_log_created_at", "error_log", ["created_at"], unique=False, schema="bridge")
    op.create_table(
        "event_log",
        sa.Column("id", sa.UUID(), server_default=sa.text("bridge.uuid_v7()"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("lifecycle_group", sa.Text(), nullable=True),
        sa.Column("integration", sa.Text(), nullable=True),
        sa.Column("account_id", sa.UUID(), nullable=True),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_log")),
        schema="bridge",
    )
    op.create_index("ix_event_log_type_created", "event_log", ["type", "created_at"], unique=False, schema="bridge")
    op.create_table(
        "field_mappings",
        sa.Column("id", sa.UUID(), server_default=sa.text("bridge.uuid_v7()"), nullable=False),
        sa.Column("integration", sa.Text(), nullable=False),
        sa.Column("entity_name", sa.Text(), nullable=False),
        sa.Column("source_field", sa.Text(), nullable=False),
        sa.Column("target_field", sa.Text(), nullable=False),
        sa.Column("data_type", sa.Text(), server_default=sa.text("'text'"), nullable=False),
        sa.Column("transformation", sa.Text(), nullable=True),
        sa.Column("default_value", sa.Text(), nullable=True),
        sa.Column("is_required", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("position", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_field_mappings")),
        sa.UniqueConstraint(
            "integration",
            "entity_name",
            "source_field",
            "target_field",
            name=op.f("uq_field_mappings_integration_entity_name_source_field_target_field"),
        ),
        schema="bridge",
    )
    op.create_index(
        "ix_field_mappings_entity",
        "field_mappings",
        ["integration", "entity_name"],
        unique=False,
        schema="bridge",
    )
    op.create_table(
        "sync_logs",
        sa.Column("id", sa.UUID(), server_default=sa.text("bridge.uuid_v7()"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("integration", sa.Text(), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=True),
        sa.Column("entity_type", sa.Text(), nullable=True),
        sa.Column("entity_id", sa.Text(), nullable=True),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("request_payload", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("response_payload", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_logs")),
        schema="bridge",
    )
    op.create_index("ix_sync_logs_entity", "sync_logs", ["entity_type", "entity_id"], unique=False, schema="bridge")
    op.create_index(
        "ix_sync_logs_integration_created",
        "sync_logs",
        ["integration", "created_at"],
        unique=False,
        schema="bridge",
    )
    op.create_table(
        "credentials",
        sa.Column("id", sa.UUID(), server_default=sa.text("bridge.uuid_v7()"), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("secret_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("external_account_id", sa.Text(), nullable=True),
        sa.Column("external_user_id", sa.Text(), nullable=True),
        sa.Column("verified", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["bridge.accounts.id"],
            name=op.f("fk_credentials_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credentials")),
        sa.UniqueConstraint("account_id", "kind", name=op.f("uq_credentials_account_id_kind")),
        schema="bridge",
    )
    op.create_table(
        "job_status",
        sa.Column("id", sa.UUID(), server_default=sa.text("bridge.uuid_v7()"), nullable=False),
        sa.Column("job_id", sa.Text(), nullable=False),
        sa.Column("job_type", sa.Text(), nullable=False),
        sa.Column("integration", sa.Text(), nullable=True),
        sa.Column("account_id", sa.UUID(), nullable=True),
        sa.Column("entity_type", sa.Text(), nullable=True),
        sa.Column("period_key", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), server_default=sa.text("'PENDING'"), nullable=False),
        sa.Column("priority", sa.Text(), server_default=sa.text("'NORMAL'"), nullable=False),
        sa.Column("progress", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("records_processed", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("records_stored", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("records_remaining", sa.BigInteger(), nullable=True),
        sa.Column("workers_spawned", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("workers_completed", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("workers_failed", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("source_count", sa.BigInteger(), nullable=True),
        sa.Column("warehouse_count", sa.BigInteger(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("error_details", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("dagster_run_id", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_activity", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("priority IN ('LOW', 'NORMAL', 'HIGH')", name=op.f("ck_job_status_priority")),
        sa.CheckConstraint(
            "status IN ('PENDING', 'IN_PROGRESS', 'COMPLETED', 'ERROR')", name=op.f("ck_job_status_status")
        ),
        sa.CheckConstraint("progress BETWEEN 0 AND 100", name=op.f("ck_job_status_progress")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["bridge.accounts.id"],
            name=op.f("fk_job_status_account_id_accounts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_status")),
        sa.UniqueConstraint("job_id", name=op.f("uq_job_status_job_id")),
        schema="bridge",
    )
    op.create_index(
        "ix_job_status_scope",
        "job_status",
        ["integration", "account_id", "job_type"],
        unique=False,
        schema="bridge",
    )
    op.create_index("ix_job_status_status", "job_status", ["status"], unique=False, schema="bridge")
    op.create_table(
        "sync_batches",
        sa.Column("id", sa.UUID(), server_default=sa.text("bridge.uuid_v7()"), nullable=False),
        sa.Column("integration", sa.Text(), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=True),
        sa.Column("entity_name", sa.Text(), nullable=False),
        sa.Column("source_system", sa.Text(), nullable=False),
        sa.Column("sync_type", sa.Text(), server_default=sa.text("'realtime'"), nullable=False),
        sa.Column("status", sa.Text(), server_default=sa.text("'running'"), nullable=False),
        sa.Column("period_key", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rows_fetched", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("rows_normalized", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("rows_inserted", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("rows_updated", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("rows_unchanged", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("rows_deleted", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("rows_failed", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("rows_pending", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("pages", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("api_calls", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("rate_limited", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("cursor_before", sa.Text(), nullable=True),
        sa.Column("cursor_after", sa.Text(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("dagster_run_id", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('running', 'completed', 'failed')", name=op.f("ck_sync_batches_status")),
        sa.CheckConstraint("sync_type IN ('realtime', 'background')", name=op.f("ck_sync_batches_sync_type")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["bridge.accounts.id"],
            name=op.f("fk_sync_batches_account_id_accounts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_batches")),
        schema="bridge",
    )
    op.create_index(
        "ix_sync_batches_entity", "sync_batches", ["entity_name", "started_at"], unique=False, schema="bridge"
    )
    op.create_index("ix_sync_batches_status", "sync_batches", ["status"], unique=False, schema="bridge")
    op.create_table(
        "sync_state",
        sa.Column("id", sa.UUID(), server_default=sa.text("bridge.uuid_v7()"), nullable=False),
        sa.Column("integration", sa.Text(), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("entity_type", sa.Text(), nullable=False),
        sa.Column("last_sync_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), server_default=sa.text("'idle'"), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("records_synced", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("status IN ('idle', 'running', 'completed', 'error')", name=op.f("ck_sync_state_status")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["bridge.accounts.id"],
            name=op.f("fk_sync_state_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_state")),
        sa.UniqueConstraint(
            "integration",
            "account_id",
            "entity_type",
            name=op.f("uq_sync_state_integration_account_id_entity_type"),
        ),
        schema="bridge",
    )
    op.create_table(
        "webhook_events",
        sa.Column("id", sa.UUID(), server_default=sa.text("bridge.uuid_v7()"), nullable=False),
        sa.Column("integration", sa.Text(), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=True),
        sa.Column("resource_key", sa.Text(), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "headers",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("status", sa.Text(), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("max_attempts", sa.Integer(), server_default=sa.text("8"), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("claimed_by", sa.Text(), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'in_progress', 'completed', 'failed', 'dead')",
            name=op.f("ck_webhook_events_status"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["bridge.accounts.id"],
            name=op.f("fk_webhook_events_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_events")),
        sa.UniqueConstraint("integration", "event_id", name=op.f("uq_webhook_events_integration_event_id")),
        schema="bridge",
    )
    op.create_index("ix_webhook_events_claimed_by", "webhook_events", ["claimed_by"], unique=False, schema="bridge")
    op.create_index(
        "ix_webhook_events_ready",
        "webhook_events",
        ["integration", "next_attempt_at"],
        unique=False,
        schema="bridge",
        postgresql_where=sa.text("status IN ('pending', 'failed')"),
    )
    op.create_table(
        "erp_sync_state",
        sa.Column("id", sa.UUID(), server_default=sa.text("bridge.uuid_v7()"), nullable=False),
        sa.Column("entity_name", sa.Text(), nullable=False),
        sa.Column("source_system", sa.Text(), nullable=False),
        sa.Column("last_sync_rowversion", sa.BigInteger(), nullable=True),
        sa.Column("last_sync_timestamp", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_batch_id", sa.UUID(), nullable=True),
        sa.Column("rows_synced", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("status", sa.Text(), server_default=sa.text("'idle'"), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "status IN ('idle', 'running', 'completed', 'error')", name=op.f("ck_erp_sync_state_status")
        ),
        sa.ForeignKeyConstraint(
            ["last_batch_id"],
            ["bridge.sync_batches.id"],
            name=op.f("fk_erp_sync_state_last_batch_id_sync_batches"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erp_sync_state")),
        sa.UniqueConstraint("entity_name", "source_system", name=op.f("uq_erp_sync_state_entity_name_source_system")),
        schema="bridge",
    )
    op.create_index(
        "ix_erp_sync_state_entity",
        "erp_sync_state",
        ["entity_name", "source_system"],
        unique=False,
        schema="bridge",
    )
    op.create_table(
        "failed_records",
        sa.Column("id", sa.UUID(), server_default=sa.text("bridge.uuid_v7()"), nullable=False),
        sa.Column("batch_id", sa.UUID(), nullable=True),
        sa.Column("integration", sa.Text(), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=True),
        sa.Column("entity_name", sa.Text(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=True),
        sa.Column("raw_data", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("raw_text", sa.Text(), nullable=True),
        sa.Column("normalized_data", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("stage_failed", sa.Text(), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=False),
        sa.Column("error_details", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("status", sa.Text(), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("retry_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("max_retries", sa.Integer(), server_default=sa.text("5"), nullable=False),
        sa.Column("next_retry_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "stage_failed IN ('fetch', 'parse', 'normalization', 'validation', 'mapping', 'load', 'parent')",
            name=op.f("ck_failed_records_stage_failed"),
        ),
        sa.CheckConstraint("status IN ('pending', 'resolved', 'dead')", name=op.f("ck_failed_records_status")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["bridge.accounts.id"],
            name=op.f("fk_failed_records_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["bridge.sync_batches.id"],
            name=op.f("fk_failed_records_batch_id_sync_batches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_failed_records")),
        schema="bridge",
    )
    op.create_index("ix_failed_records_batch", "failed_records", ["batch_id"], unique=False, schema="bridge")
    op.create_index(
        "ix_failed_records_retry",
        "failed_records",
        ["next_retry_at"],
        unique=False,
        schema="bridge",
        postgresql_where=sa.text("resolved_at IS NULL"),
    )
    op.create_index(
        "ix_failed_records_scope",
        "failed_records",
        ["integration", "entity_name", "status"],
        unique=False,
        schema="bridge",
    )
    op.create_table(
        "pending_children",
        sa.Column("id", sa.UUID(), server_default=sa.text("bridge.uuid_v7()"), nullable=False),
        sa.Column("batch_id", sa.UUID(), nullable=True),
        sa.Column("integration", sa.Text(), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=True),
        sa.Column("child_entity", sa.Text(), nullable=False),
        sa.Column("child_source_id", sa.Text(), nullable=False),
        sa.Column("parent_entity", sa.Text(), nullable=False),
        sa.Column("parent_source_id", sa.Text(), nullable=False),
        sa.Column("parent_bk_hash", sa.Text(), nullable=False),
        sa.Column("child_payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.Text(), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("retry_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("max_retries", sa.Integer(), server_default=sa.text("50"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'resolved', 'expired')", name=op.f("ck_pending_children_status")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["bridge.accounts.id"],
            name=op.f("fk_pending_children_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["bridge.sync_batches.id"],
            name=op.f("fk_pending_children_batch_id_sync_batches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_children")),
        schema="bridge",
    )
    op.create_index("ix_pending_children_batch", "pending_children", ["batch_id"], unique=False, schema="bridge")
    op.create_index(
        "uq_pending_children_waiting",
        "pending_children",
        ["integration", "account_id", "child_entity", "child_source_id"],
        unique=True,
        schema="bridge",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_pending_children_parent",
        "pending_children",
        ["parent_entity", "parent_bk_hash"],
        unique=False,
        schema="bridge",
    )


def downgrade() -> None:
    op.drop_index("uq_pending_children_waiting", table_name="pending_children", schema="bridge")
    op.drop_index("ix_pending_children_parent", table_name="pending_children", schema="bridge")
    op.drop_index("ix_pending_children_batch", table_name="pending_children", schema="bridge")
    op.drop_table("pending_children", schema="bridge")
    op.drop_index("ix_failed_records_scope", table_name="failed_records", schema="bridge")
    op.drop_index(
        "ix_failed_records_retry",
        table_name="failed_records",
        schema="bridge",
        postgresql_where=sa.text("resolved_at IS NULL"),
    )
    op.drop_index("ix_failed_records_batch", table_name="failed_records", schema="bridge")
    op.drop_table("failed_records", schema="bridge")
    op.drop_index("ix_erp_sync_state_entity", table_name="erp_sync_state", schema="bridge")
    op.drop_table("erp_sync_state", schema="bridge")
    op.drop_index(
        "ix_webhook_events_ready",
        table_name="webhook_events",
        schema="bridge",
        postgresql_where=sa.text("status IN ('pending', 'failed')"),
    )
    op.drop_index("ix_webhook_events_claimed_by", table_name="webhook_events", schema="bridge")
    op.drop_table("webhook_events", schema="bridge")
    op.drop_table("sync_state", schema="bridge")
    op.drop_index("ix_sync_batches_status", table_name="sync_batches", schema="bridge")
    op.drop_index("ix_sync_batches_entity", table_name="sync_batches", schema="bridge")
    op.drop_table("sync_batches", schema="bridge")
    op.drop_index("ix_job_status_status", table_name="job_status", schema="bridge")
    op.drop_index("ix_job_status_scope", table_name="job_status", schema="bridge")
    op.drop_table("job_status", schema="bridge")
    op.drop_table("credentials", schema="bridge")
    op.drop_index("ix_sync_logs_integration_created", table_name="sync_logs", schema="bridge")
    op.drop_index("ix_sync_logs_entity", table_name="sync_logs", schema="bridge")
    op.drop_table("sync_logs", schema="bridge")
    op.drop_index("ix_field_mappings_entity", table_name="field_mappings", schema="bridge")
    op.drop_table("field_mappings", schema="bridge")
    op.drop_index("ix_event_log_type_created", table_name="event_log", schema="bridge")
    op.drop_table("event_log", schema="bridge")
    op.drop_index("ix_error_log_created_at", table_name="error_log", schema="bridge")
    op.drop_table("error_log", schema="bridge")
    op.drop_table("background_sync_schedule", schema="bridge")
    op.drop_index("ix_audit_log_entity", table_name="audit_log", schema="bridge")
    op.drop_index("ix_audit_log_batch", table_name="audit_log", schema="bridge")
    op.drop_table("audit_log", schema="bridge")
    op.drop_table("accounts", schema="bridge")
    for schema in reversed(SCHEMAS):
        op.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
