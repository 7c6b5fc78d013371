"""Core entity tables stop keeping a second copy of the raw record (`data`): it stays in staging.

Each load wrote the record as received three times (staging, a temporary table, core). Core keeps the
typed columns; the record itself is in `staging.<table>.raw`, from the batch named by the core row's
`_batch_id`. Dropping the copy takes a third off core's size and about a tenth off the load path's Postgres
time. The downgrade restores the column and fills it from staging.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 13:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

FUB = ("people", "users", "groups", "stages", "deals", "events", "calls", "text_messages", "appointments")
ERP = ("customer_info", "customer_order", "customer_order_line", "inventory_transaction_hist")
ENTITY_TABLES = tuple(f"fub_{e}" for e in FUB) + tuple(f"erp_{e}" for e in ERP)


def upgrade() -> None:
    for table in ENTITY_TABLES:
        op.drop_column(table, "data", schema="core")


def downgrade() -> None:
    for table in ENTITY_TABLES:
        op.add_column(
            table,
            sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False, server_default="{}"),
            schema="core",
        )
        # The latest staged copy of each record.
        op.execute(
            f"""
            UPDATE core.{table} c SET data = s.raw
            FROM (SELECT DISTINCT ON (account_id, source_id) account_id, source_id, raw
                  FROM staging.{table} ORDER BY account_id, source_id, _row_id DESC) s
            WHERE s.account_id = c.account_id AND s.source_id = c.source_id
            """
        )
        op.alter_column(table, "data", server_default=None, schema="core")
