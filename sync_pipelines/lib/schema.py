"""The warehouse's tables as SQLAlchemy Core metadata.

`bridge` holds the sync machinery (generalised over integrations: one table with an `integration`
column, never a copy per source), `staging` the raw records as received, `core` the typed entities.
Alembic migrations under `sql/` create exactly these tables; a test compares the two.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    Table,
    Text,
    Time,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from sync_pipelines.lib.ids import new_id

BRIDGE = "bridge"
STAGING = "staging"
CORE = "core"
SCHEMAS = (BRIDGE, STAGING, CORE)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


ACCOUNT_STATUSES = ("pending", "active", "error", "disabled")
SYNC_STATE_STATUSES = ("idle", "running", "completed", "error")
JOB_STATUSES = ("PENDING", "IN_PROGRESS", "COMPLETED", "ERROR")
JOB_PRIORITIES = ("LOW", "NORMAL", "HIGH")
BATCH_STATUSES = ("running", "completed", "failed")
BATCH_SYNC_TYPES = ("realtime", "background")
FAILED_RECORD_STAGES = ("fetch", "parse", "normalization", "validation", "mapping", "load", "parent")
FAILED_RECORD_STATUSES = ("pending", "resolved", "dead")
PENDING_CHILD_STATUSES = ("pending", "resolved", "expired")
BACKGROUND_STATUSES = ("active", "paused", "completed", "error")
WEBHOOK_STATUSES = ("pending", "in_progress", "completed", "failed", "dead")
AUDIT_ACTIONS = ("CREATE", "UPDATE", "DELETE")
SEVERITIES = ("debug", "info", "warning", "error", "critical")


def _in(column: str, values: Iterable[str]) -> str:
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


def _id() -> Column:
    return Column("id", UUID(as_uuid=True), primary_key=True, default=new_id, server_default=text("bridge.uuid_v7()"))


def _created_at() -> Column:
    return Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()"))


def _updated_at() -> Column:
    return Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()"))


def _integration() -> Column:
    return Column("integration", Text, nullable=False)


def _account_fk(nullable: bool = True, ondelete: str = "CASCADE") -> Column:
    return Column(
        "account_id",
        UUID(as_uuid=True),
        ForeignKey(f"{BRIDGE}.accounts.id", ondelete=ondelete),
        nullable=nullable,
    )


def _batch_fk(nullable: bool = True, ondelete: str = "CASCADE") -> Column:
    return Column(
        "batch_id",
        UUID(as_uuid=True),
        ForeignKey(f"{BRIDGE}.sync_batches.id", ondelete=ondelete),
        nullable=nullable,
    )


def _count(name: str) -> Column:
    return Column(name, BigInteger, nullable=False, server_default=text("0"))


accounts = Table(
    "accounts",
    metadata,
    _id(),
    _integration(),
    Column("name", Text, nullable=False),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("config", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("status", Text, nullable=False, server_default=text("'pending'")),
    Column("error", Text),
    Column("last_error_at", DateTime(timezone=True)),
    _created_at(),
    _updated_at(),
    UniqueConstraint("integration", "name"),
    CheckConstraint(_in("status", ACCOUNT_STATUSES), name="status"),
    # Which integrations exist is the registry's business (sync_pipelines/registry.py); the database's CHECK on
    # this column (migration 0001) lists the sources known when it was written, widened by a migration if needed.
    schema=BRIDGE,
)

# One row per account and secret kind; the secret itself is a Fernet token, never plain text.
credentials = Table(
    "credentials",
    metadata,
    _id(),
    _account_fk(nullable=False),
    Column("kind", Text, nullable=False),
    Column("secret_ciphertext", LargeBinary, nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("external_account_id", Text),
    Column("external_user_id", Text),
    Column("verified", Boolean, nullable=False, server_default=text("false")),
    Column("verified_at", DateTime(timezone=True)),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("expires_at", DateTime(timezone=True)),
    _created_at(),
    _updated_at(),
    UniqueConstraint("account_id", "kind"),
    schema=BRIDGE,
)

sync_state = Table(
    "sync_state",
    metadata,
    _id(),
    _integration(),
    _account_fk(nullable=False),
    Column("entity_type", Text, nullable=False),
    Column("last_sync_at", DateTime(timezone=True)),
    Column("cursor", Text),
    Column("status", Text, nullable=False, server_default=text("'idle'")),
    Column("error_message", Text),
    _count("records_synced"),
    _created_at(),
    _updated_at(),
    # When the last sync of this cursor started and finished (migration 0010).
    Column("last_started_at", DateTime(timezone=True)),
    Column("last_finished_at", DateTime(timezone=True)),
    UniqueConstraint("integration", "account_id", "entity_type"),
    CheckConstraint(_in("status", SYNC_STATE_STATUSES), name="status"),
    schema=BRIDGE,
)

job_status = Table(
    "job_status",
    metadata,
    _id(),
    Column("job_id", Text, nullable=False),
    Column("job_type", Text, nullable=False),
    Column("integration", Text),
    _account_fk(ondelete="SET NULL"),
    Column("entity_type", Text),
    Column("period_key", Text),
    Column("status", Text, nullable=False, server_default=text("'PENDING'")),
    Column("priority", Text, nullable=False, server_default=text("'NORMAL'")),
    Column("progress", Integer, nullable=False, server_default=text("0")),
    _count("records_processed"),
    _count("records_stored"),
    Column("records_remaining", BigInteger),
    Column("workers_spawned", Integer, nullable=False, server_default=text("0")),
    Column("workers_completed", Integer, nullable=False, server_default=text("0")),
    Column("workers_failed", Integer, nullable=False, server_default=text("0")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("source_count", BigInteger),
    Column("warehouse_count", BigInteger),
    Column("error_message", Text),
    Column("error_details", JSONB),
    Column("dagster_run_id", Text),
    _created_at(),
    Column("started_at", DateTime(timezone=True)),
    Column("last_activity", DateTime(timezone=True)),
    Column("completed_at", DateTime(timezone=True)),
    UniqueConstraint("job_id"),
    CheckConstraint(_in("status", JOB_STATUSES), name="status"),
    CheckConstraint(_in("priority", JOB_PRIORITIES), name="priority"),
    CheckConstraint("progress BETWEEN 0 AND 100", name="progress"),
    Index("ix_job_status_status", "status"),
    Index("ix_job_status_scope", "integration", "account_id", "job_type"),
    schema=BRIDGE,
)

sync_batches = Table(
    "sync_batches",
    metadata,
    _id(),
    _integration(),
    _account_fk(ondelete="SET NULL"),
    Column("entity_name", Text, nullable=False),
    Column("source_system", Text, nullable=False),
    Column("sync_type", Text, nullable=False, server_default=text("'realtime'")),
    Column("status", Text, nullable=False, server_default=text("'running'")),
    Column("period_key", Text),
    Column("started_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("completed_at", DateTime(timezone=True)),
    _count("rows_fetched"),
    _count("rows_normalized"),
    _count("rows_inserted"),
    _count("rows_updated"),
    _count("rows_unchanged"),
    _count("rows_deleted"),
    _count("rows_failed"),
    _count("rows_pending"),
    _count("pages"),
    _count("api_calls"),
    _count("rate_limited"),
    Column("duration_ms", BigInteger),
    Column("cursor_before", Text),
    Column("cursor_after", Text),
    Column("error_message", Text),
    Column("dagster_run_id", Text),
    CheckConstraint(_in("status", BATCH_STATUSES), name="status"),
    CheckConstraint(_in("sync_type", BATCH_SYNC_TYPES), name="sync_type"),
    Index("ix_sync_batches_entity", "entity_name", "started_at"),
    Index("ix_sync_batches_status", "status"),
    schema=BRIDGE,
)

failed_records = Table(
    "failed_records",
    metadata,
    _id(),
    _batch_fk(),
    _integration(),
    _account_fk(),
    Column("entity_name", Text, nullable=False),
    Column("source_id", Text),
    Column("raw_data", JSONB),
    Column("raw_text", Text),
    Column("normalized_data", JSONB),
    Column("stage_failed", Text, nullable=False),
    Column("error_message", Text, nullable=False),
    Column("error_details", JSONB),
    Column("status", Text, nullable=False, server_default=text("'pending'")),
    Column("retry_count", Integer, nullable=False, server_default=text("0")),
    Column("max_retries", Integer, nullable=False, server_default=text("5")),
    Column("next_retry_at", DateTime(timezone=True)),
    Column("resolved_at", DateTime(timezone=True)),
    Column("resolution", Text),
    _created_at(),
    _updated_at(),
    CheckConstraint(_in("stage_failed", FAILED_RECORD_STAGES), name="stage_failed"),
    CheckConstraint(_in("status", FAILED_RECORD_STATUSES), name="status"),
    Index("ix_failed_records_batch", "batch_id"),
    Index(
        "ix_failed_records_retry",
        "next_retry_at",
        postgresql_where=text("resolved_at IS NULL"),
    ),
    Index("ix_failed_records_scope", "integration", "entity_name", "status"),
    # One open row per record: a repeat failure refreshes it, a clean load finds it (migration 0006).
    Index(
        "ux_failed_records_open_record",
        "integration",
        "account_id",
        "entity_name",
        "source_id",
        unique=True,
        postgresql_where=text("resolved_at IS NULL"),
    ),
    schema=BRIDGE,
)

pending_children = Table(
    "pending_children",
    metadata,
    _id(),
    _batch_fk(),
    _integration(),
    _account_fk(),
    Column("child_entity", Text, nullable=False),
    Column("child_source_id", Text, nullable=False),
    Column("parent_entity", Text, nullable=False),
    Column("parent_source_id", Text, nullable=False),
    Column("parent_bk_hash", Text, nullable=False),
    Column("child_payload", JSONB, nullable=False),
    Column("status", Text, nullable=False, server_default=text("'pending'")),
    Column("retry_count", Integer, nullable=False, server_default=text("0")),
    Column("max_retries", Integer, nullable=False, server_default=text("50")),
    _created_at(),
    Column("resolved_at", DateTime(timezone=True)),
    CheckConstraint(_in("status", PENDING_CHILD_STATUSES), name="status"),
    Index("ix_pending_children_parent", "parent_entity", "parent_bk_hash"),
    Index(
        "uq_pending_children_waiting",
        "integration",
        "account_id",
        "child_entity",
        "child_source_id",
        unique=True,
        postgresql_where=text("status = 'pending'"),
    ),
    Index("ix_pending_children_batch", "batch_id"),
    schema=BRIDGE,
)

background_sync_schedule = Table(
    "background_sync_schedule",
    metadata,
    _id(),
    Column("source_system", Text, nullable=False),
    Column("entity_name", Text, nullable=False),
    Column("is_enabled", Boolean, nullable=False, server_default=text("true")),
    Column("sync_window_start", Time, nullable=False, server_default=text("'19:00'")),
    Column("sync_window_end", Time, nullable=False, server_default=text("'07:00'")),
    Column("timezone", Text, nullable=False, server_default=text("'UTC'")),
    Column("days_to_complete", Integer, nullable=False, server_default=text("7")),
    Column("rows_per_day", BigInteger),
    Column("chunk_size", Integer, nullable=False, server_default=text("50000")),
    Column("total_rows", BigInteger),
    _count("rows_done"),
    _count("rows_done_today"),
    Column("current_offset", Text),
    Column("night_started_on", Text),
    Column("next_run_at", DateTime(timezone=True)),
    Column("last_run_at", DateTime(timezone=True)),
    Column("status", Text, nullable=False, server_default=text("'active'")),
    Column("error_message", Text),
    Column("started_at", DateTime(timezone=True)),
    Column("completed_at", DateTime(timezone=True)),
    _created_at(),
    _updated_at(),
    UniqueConstraint("source_system", "entity_name"),
    CheckConstraint(_in("status", BACKGROUND_STATUSES), name="status"),
    CheckConstraint("days_to_complete > 0", name="days_to_complete"),
    CheckConstraint("chunk_size > 0", name="chunk_size"),
    schema=BRIDGE,
)


field_mappings = Table(
    "field_mappings",
    metadata,
    _id(),
    _integration(),
    Column("entity_name", Text, nullable=False),
    Column("source_field", Text, nullable=False),
    Column("target_field", Text, nullable=False),
    Column("data_type", Text, nullable=False, server_default=text("'text'")),
    Column("transformation", Text),
    Column("default_value", Text),
    Column("is_required", Boolean, nullable=False, server_default=text("false")),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    Column("position", Integer, nullable=False, server_default=text("0")),
    _created_at(),
    _updated_at(),
    UniqueConstraint("integration", "entity_name", "source_field", "target_field"),
    Index("ix_field_mappings_entity", "integration", "entity_name"),
    schema=BRIDGE,
)

webhook_events = Table(
    "webhook_events",
    metadata,
    _id(),
    _integration(),
    _account_fk(nullable=False),
    Column("event_id", Text, nullable=False),
    Column("event_type", Text),
    Column("resource_key", Text),
    Column("payload", JSONB, nullable=False),
    Column("headers", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("status", Text, nullable=False, server_default=text("'pending'")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("max_attempts", Integer, nullable=False, server_default=text("8")),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("last_error", Text),
    Column("claimed_by", Text),
    Column("claimed_at", DateTime(timezone=True)),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("processed_at", DateTime(timezone=True)),
    UniqueConstraint("integration", "event_id"),
    CheckConstraint(_in("status", WEBHOOK_STATUSES), name="status"),
    Index(
        "ix_webhook_events_ready",
        "integration",
        "next_attempt_at",
        postgresql_where=text("status IN ('pending', 'failed')"),
    ),
    Index("ix_webhook_events_claimed_by", "claimed_by"),
    schema=BRIDGE,
)

audit_log = Table(
    "audit_log",
    metadata,
    _id(),
    _created_at(),
    Column("action", Text, nullable=False),
    Column("integration", Text),
    Column("entity_type", Text, nullable=False),
    Column("entity_id", UUID(as_uuid=True)),
    Column("source_id", Text),
    Column("account_id", UUID(as_uuid=True)),
    Column("batch_id", UUID(as_uuid=True)),
    Column("old_value", JSONB),
    Column("new_value", JSONB),
    Column("actor", Text, nullable=False, server_default=text("'sync'")),
    CheckConstraint(_in("action", AUDIT_ACTIONS), name="action"),
    # Entity ids are unique across entity types; a batch's rows go in together with a time-ordered id.
    Index("ix_audit_log_entity_id", "entity_id"),
    Index("ix_audit_log_batch", "batch_id", postgresql_using="brin"),
    schema=BRIDGE,
)

error_log = Table(
    "error_log",
    metadata,
    _id(),
    _created_at(),
    Column("module", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("severity", Text, nullable=False, server_default=text("'error'")),
    Column("integration", Text),
    Column("account_id", UUID(as_uuid=True)),
    Column("payload", JSONB),
    Column("notified", Boolean, nullable=False, server_default=text("false")),
    CheckConstraint(_in("severity", SEVERITIES), name="severity"),
    Index("ix_error_log_created_at", "created_at"),
    schema=BRIDGE,
)

event_log = Table(
    "event_log",
    metadata,
    _id(),
    _created_at(),
    Column("type", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("message", Text),
    Column("lifecycle_group", Text),
    Column("integration", Text),
    Column("account_id", UUID(as_uuid=True)),
    Column("data", JSONB),
    Index("ix_event_log_type_created", "type", "created_at"),
    schema=BRIDGE,
)

# Request/response audit of outbound calls (seed 003's sync_logs); URLs and bodies are stored redacted.
sync_logs = Table(
    "sync_logs",
    metadata,
    _id(),
    _created_at(),
    _integration(),
    Column("account_id", UUID(as_uuid=True)),
    Column("entity_type", Text),
    Column("entity_id", Text),
    Column("method", Text, nullable=False),
    Column("url", Text, nullable=False),
    Column("request_payload", JSONB),
    Column("response_payload", JSONB),
    Column("status_code", Integer),
    Column("duration_ms", Integer),
    Column("error_message", Text),
    Index("ix_sync_logs_integration_created", "integration", "created_at"),
    Index("ix_sync_logs_entity", "entity_type", "entity_id"),
    schema=BRIDGE,
)


# ----------------------------------------------------------------------------------------------
# staging and core tables, built from each integration's entity list
# ----------------------------------------------------------------------------------------------


def staging_table(name: str) -> Table:
    """Raw records exactly as received: one row per record per batch."""
    return Table(
        name,
        metadata,
        Column("_row_id", BigInteger, primary_key=True, autoincrement=True),
        Column("_batch_id", UUID(as_uuid=True), nullable=False),
        Column("account_id", UUID(as_uuid=True), nullable=False),
        Column("source_id", Text),
        Column("period_key", Text),
        Column("_fetched_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
        Column("raw", JSONB, nullable=False),
        # md5 of the raw record as COPYed: with the mappings' fingerprint it is core's change-guard hash.
        Column("_raw_hash", Text),
        Index(f"ix_{name}_batch", "_batch_id"),
        schema=STAGING,
    )


def core_entity_table(name: str, *columns: Column) -> Table:
    """A typed core table: natural key (account_id, source_id), change guard, soft delete. The record as
    received stays in staging (`_batch_id` names the batch that last changed the row), not in a copy here.

    No foreign key to bridge.accounts: its trigger costs one lookup per inserted row, and only the load path
    writes here, always for an account it has just read (accounts are disabled, never deleted)."""
    return Table(
        name,
        metadata,
        _id(),
        Column("account_id", UUID(as_uuid=True), nullable=False),
        Column("source_id", Text, nullable=False),
        Column("period_key", Text),
        Column("created_at_source", DateTime(timezone=True)),
        *columns,
        Column("_source_updated_at", DateTime(timezone=True)),
        Column("_row_hash", Text, nullable=False),
        Column("_batch_id", UUID(as_uuid=True)),
        Column("_synced_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
        Column("deleted_at", DateTime(timezone=True)),
        UniqueConstraint("account_id", "source_id"),
        Index(f"ix_{name}_period", "account_id", "period_key"),
        schema=CORE,
    )


def entity_tables(
    prefix: str,
    columns: dict[str, tuple[Column, ...]],
    indexes: dict[str, dict[str, tuple[str, ...]]] | None = None,
) -> dict[str, tuple[Table, Table]]:
    """Staging and core tables (`<prefix><entity>`) of an integration's entities on the shared metadata, each with its
    typed columns; `indexes` adds, per entity, named indexes on core (`ix_<table>_<name>`). Registering twice returns
    the tables already there, so a module imported again does not redefine them."""
    tables: dict[str, tuple[Table, Table]] = {}
    for entity, typed in columns.items():
        name = prefix + entity
        staging = metadata.tables.get(f"{STAGING}.{name}")
        if staging is None:
            staging = staging_table(name)
        core = metadata.tables.get(f"{CORE}.{name}")
        if core is None:
            core = core_entity_table(name, *typed)
            for suffix, names in (indexes or {}).get(entity, {}).items():
                Index(f"ix_{name}_{suffix}", *(core.c[n] for n in names))
        tables[entity] = (staging, core)
    return tables


# Unified entities across integrations (seed 001's flow): who people are, and every touch with them.
participant = Table(
    "participant",
    metadata,
    _id(),
    _integration(),
    Column(
        "account_id",
        UUID(as_uuid=True),
        ForeignKey(f"{BRIDGE}.accounts.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("source_entity", Text, nullable=False),
    Column("source_id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("name", Text),
    Column("email", Text),
    Column("phone", Text),
    Column("_synced_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("deleted_at", DateTime(timezone=True)),
    UniqueConstraint("integration", "account_id", "source_entity", "source_id"),
    CheckConstraint("kind IN ('lead', 'agent', 'client', 'vendor')", name="kind"),
    schema=CORE,
)

contact_log = Table(
    "contact_log",
    metadata,
    _id(),
    _integration(),
    Column(
        "account_id",
        UUID(as_uuid=True),
        ForeignKey(f"{BRIDGE}.accounts.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("source_entity", Text, nullable=False),
    Column("source_id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("participant_source_id", Text),
    Column("agent_source_id", Text),
    Column("occurred_at", DateTime(timezone=True)),
    Column("summary", Text),
    Column("_synced_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("deleted_at", DateTime(timezone=True)),
    UniqueConstraint("integration", "account_id", "source_entity", "source_id"),
    CheckConstraint("kind IN ('call', 'text', 'event', 'appointment', 'email', 'note')", name="kind"),
    Index("ix_contact_log_participant", "integration", "account_id", "participant_source_id"),
    schema=CORE,
)


# ----------------------------------------------------------------------------------------------
# Unified transactions and listings across integrations (every transaction-management source)
# ----------------------------------------------------------------------------------------------

# One vocabulary for every source's lifecycle (defs/core/transactions.py maps each source's states into it);
# a state no mapping knows is 'unknown', so a new source state shows up instead of vanishing into NULL.
UNIFIED_STATUSES = ("active", "pending", "closed", "cancelled", "expired", "unknown")


def _unified_table(name: str, *columns: Column) -> Table:
    """One row per source record: (integration, account, source entity, source id), the common columns typed,
    a normalised address key that finds one property across systems, and the agent linked to core.participant."""
    return Table(
        name,
        metadata,
        _id(),
        _integration(),
        Column(
            "account_id",
            UUID(as_uuid=True),
            ForeignKey(f"{BRIDGE}.accounts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        Column("source_entity", Text, nullable=False),
        Column("source_id", Text, nullable=False),
        Column("status", Text, nullable=False),
        Column("source_status", Text),
        Column("price", Numeric(14, 2)),
        Column("currency", Text),
        Column("mls_number", Text),
        Column("street", Text),
        Column("unit", Text),
        Column("city", Text),
        Column("state", Text),
        Column("zip", Text),
        Column("address_key", Text),
        *columns,
        Column("agent_source_id", Text),
        Column("agent_email", Text),
        Column("participant_id", UUID(as_uuid=True), ForeignKey(f"{CORE}.participant.id", ondelete="SET NULL")),
        Column("created_at_source", DateTime(timezone=True)),
        Column("source_updated_at", DateTime(timezone=True)),
        Column("_synced_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
        Column("deleted_at", DateTime(timezone=True)),
        UniqueConstraint("integration", "account_id", "source_entity", "source_id"),
        CheckConstraint(_in("status", UNIFIED_STATUSES), name="status"),
        Index(f"ix_{name}_address_key", "address_key"),
        # A participant that appears later is linked by email to the rows already here.
        Index(f"ix_{name}_agent_email", "agent_email"),
        schema=CORE,
    )


transaction = _unified_table(
    "transaction",
    Column("transaction_type", Text),
    Column("contract_date", Date),
    Column("expected_close_date", Date),
    Column("closed_date", Date),
)
listing = _unified_table(
    "listing",
    Column("listed_date", Date),
    Column("expiration_date", Date),
)
# Unified rows find their agent by email: a probe per row, not a scan of every lead.
Index("ix_participant_email", participant.c.email)
# The unified update relinks only the participants that changed since its last run (migration 0011).
Index("ix_participant_synced_at", participant.c._synced_at)
