"""Load-path speed: a raw-record hash column on staging, no per-row foreign-key check on core, native UUIDv7.

- `staging.*._raw_hash`: the md5 of each raw record, computed by the loader from the bytes it COPYs, so the
  change guard no longer serialises every normalised row back to text inside Postgres.
- Core entity tables lose their foreign key to `bridge.accounts`: its trigger ran one lookup per inserted row
  (about 10% of an upsert). Only the load path writes core, always with an account it has just read, and
  accounts are never deleted (they are disabled).
- `bridge.audit_log` is indexed by `entity_id` alone (ids are unique across entity types) and by a BRIN on
  `batch_id` (a batch's rows go in together, and batch ids are UUIDv7, so in time order). The B-trees on
  (entity_type, entity_id) and on batch_id cost as much per audit row as the rest of the insert.
- `bridge.uuid_v7()` calls Postgres 18's built-in `uuidv7()` when the server has it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 11:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

FUB = ("people", "users", "groups", "stages", "deals", "events", "calls", "text_messages", "appointments")
ERP = ("customer_info", "customer_order", "customer_order_line", "inventory_transaction_hist")
ENTITY_TABLES = tuple(f"fub_{e}" for e in FUB) + tuple(f"erp_{e}" for e in ERP)

PORTABLE_UUID_V7 = """
CREATE OR REPLACE FUNCTION bridge.uuid_v7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
  SELECT encode(
    set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) PLACING
      substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
      FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
$$
"""
NATIVE_UUID_V7 = """
CREATE OR REPLACE FUNCTION bridge.uuid_v7() RETURNS uuid LANGUAGE sql VOLATILE AS $$ SELECT uuidv7() $$
"""


def upgrade() -> None:
    for table in ENTITY_TABLES:
        op.add_column(table, sa.Column("_raw_hash", sa.Text(), nullable=True), schema="staging")
        op.drop_constraint(f"fk_{table}_account_id_accounts", table, schema="core", type_="foreignkey")
    op.drop_index("ix_audit_log_entity", table_name="audit_log", schema="bridge")
    op.drop_index("ix_audit_log_batch", table_name="audit_log", schema="bridge")
    op.create_index("ix_audit_log_entity_id", "audit_log", ["entity_id"], schema="bridge")
    op.create_index("ix_audit_log_batch", "audit_log", ["batch_id"], schema="bridge", postgresql_using="brin")
    if op.get_bind().execute(sa.text("SELECT current_setting('server_version_num')::int >= 180000")).scalar():
        op.execute(NATIVE_UUID_V7)


def downgrade() -> None:
    op.execute(PORTABLE_UUID_V7)
    op.drop_index("ix_audit_log_batch", table_name="audit_log", schema="bridge")
    op.drop_index("ix_audit_log_entity_id", table_name="audit_log", schema="bridge")
    op.create_index("ix_audit_log_batch", "audit_log", ["batch_id"], schema="bridge")
    op.create_index("ix_audit_log_entity", "audit_log", ["entity_type", "entity_id"], schema="bridge")
    for table in ENTITY_TABLES:
        op.create_foreign_key(
            f"fk_{table}_account_id_accounts",
            table,
            "accounts",
            ["account_id"],
            ["id"],
            source_schema="core",
            referent_schema="bridge",
            ondelete="CASCADE",
        )
        op.drop_column(table, "_raw_hash", schema="staging")
