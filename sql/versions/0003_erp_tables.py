"""Staging and core tables for the four ERP (Oracle IFS) entities of the background sync.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 09:21:11.461347
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erp_customer_info",
        sa.Column("_row_id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("_batch_id", sa.UUID(), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=True),
        sa.Column("period_key", sa.Text(), nullable=True),
        sa.Column("_fetched_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("_row_id", name=op.f("pk_erp_customer_info")),
        schema="staging",
    )
    op.create_index("ix_erp_customer_info_batch", "erp_customer_info", ["_batch_id"], unique=False, schema="staging")
    op.create_table(
        "erp_customer_order",
        sa.Column("_row_id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("_batch_id", sa.UUID(), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=True),
        sa.Column("period_key", sa.Text(), nullable=True),
        sa.Column("_fetched_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("_row_id", name=op.f("pk_erp_customer_order")),
        schema="staging",
    )
    op.create_index("ix_erp_customer_order_batch", "erp_customer_order", ["_batch_id"], unique=False, schema="staging")
    op.create_table(
        "erp_customer_order_line",
        sa.Column("_row_id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("_batch_id", sa.UUID(), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=True),
        sa.Column("period_key", sa.Text(), nullable=True),
        sa.Column("_fetched_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("_row_id", name=op.f("pk_erp_customer_order_line")),
        schema="staging",
    )
    op.create_index(
        "ix_erp_customer_order_line_batch", "erp_customer_order_line", ["_batch_id"], unique=False, schema="staging"
    )
    op.create_table(
        "erp_inventory_transaction_hist",
        sa.Column("_row_id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("_batch_id", sa.UUID(), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=True),
        sa.Column("period_key", sa.Text(), nullable=True),
        sa.Column("_fetched_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("_row_id", name=op.f("pk_erp_inventory_transaction_hist")),
        schema="staging",
    )
    op.create_index(
        "ix_erp_inventory_transaction_hist_batch",
        "erp_inventory_transaction_hist",
        ["_batch_id"],
        unique=False,
        schema="staging",
    )
    op.create_table(
        "erp_customer_info",
        sa.Column("id", sa.UUID(), server_default=sa.text("bridge.uuid_v7()"), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("period_key", sa.Text(), nullable=True),
        sa.Column("created_at_source", sa.DateTime(timezone=True), nullable=True),
        sa.Column("customer_id", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("association_no", sa.Text(), nullable=True),
        sa.Column("country", sa.Text(), nullable=True),
        sa.Column("credit_limit", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("rowversion", sa.BigInteger(), nullable=True),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("_source_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("_row_hash", sa.Text(), nullable=False),
        sa.Column("_batch_id", sa.UUID(), nullable=True),
        sa.Column("_synced_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["bridge.accounts.id"],
            name=op.f("fk_erp_customer_info_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erp_customer_info")),
        sa.UniqueConstraint("account_id", "source_id", name=op.f("uq_erp_customer_info_account_id_source_id")),
        schema="core",
    )
    op.create_index(
        "ix_erp_customer_info_period", "erp_customer_info", ["account_id", "period_key"], unique=False, schema="core"
    )
    op.create_table(
        "erp_customer_order",
        sa.Column("id", sa.UUID(), server_default=sa.text("bridge.uuid_v7()"), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("period_key", sa.Text(), nullable=True),
        sa.Column("created_at_source", sa.DateTime(timezone=True), nullable=True),
        sa.Column("order_no", sa.Text(), nullable=True),
        sa.Column("customer_no", sa.Text(), nullable=True),
        sa.Column("contract", sa.Text(), nullable=True),
        sa.Column("wanted_delivery_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("currency_code", sa.Text(), nullable=True),
        sa.Column("state", sa.Text(), nullable=True),
        sa.Column("total_amount", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("rowversion", sa.BigInteger(), nullable=True),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("_source_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("_row_hash", sa.Text(), nullable=False),
        sa.Column("_batch_id", sa.UUID(), nullable=True),
        sa.Column("_synced_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["bridge.accounts.id"],
            name=op.f("fk_erp_customer_order_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erp_customer_order")),
        sa.UniqueConstraint("account_id", "source_id", name=op.f("uq_erp_customer_order_account_id_source_id")),
        schema="core",
    )
    op.create_index(
        "ix_erp_customer_order_period", "erp_customer_order", ["account_id", "period_key"], unique=False, schema="core"
    )
    op.create_table(
        "erp_customer_order_line",
        sa.Column("id", sa.UUID(), server_default=sa.text("bridge.uuid_v7()"), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("period_key", sa.Text(), nullable=True),
        sa.Column("created_at_source", sa.DateTime(timezone=True), nullable=True),
        sa.Column("order_no", sa.Text(), nullable=True),
        sa.Column("line_no", sa.Integer(), nullable=True),
        sa.Column("rel_no", sa.Text(), nullable=True),
        sa.Column("catalog_no", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("buy_qty_due", sa.Numeric(), nullable=True),
        sa.Column("sale_unit_price", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("state", sa.Text(), nullable=True),
        sa.Column("rowversion", sa.BigInteger(), nullable=True),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("_source_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("_row_hash", sa.Text(), nullable=False),
        sa.Column("_batch_id", sa.UUID(), nullable=True),
        sa.Column("_synced_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["bridge.accounts.id"],
            name=op.f("fk_erp_customer_order_line_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erp_customer_order_line")),
        sa.UniqueConstraint("account_id", "source_id", name=op.f("uq_erp_customer_order_line_account_id_source_id")),
        schema="core",
    )
    op.create_index(
        "ix_erp_customer_order_line_period",
        "erp_customer_order_line",
        ["account_id", "period_key"],
        unique=False,
        schema="core",
    )
    op.create_table(
        "erp_inventory_transaction_hist",
        sa.Column("id", sa.UUID(), server_default=sa.text("bridge.uuid_v7()"), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("period_key", sa.Text(), nullable=True),
        sa.Column("created_at_source", sa.DateTime(timezone=True), nullable=True),
        sa.Column("transaction_id", sa.BigInteger(), nullable=True),
        sa.Column("part_no", sa.Text(), nullable=True),
        sa.Column("contract", sa.Text(), nullable=True),
        sa.Column("transaction_code", sa.Text(), nullable=True),
        sa.Column("quantity", sa.Numeric(), nullable=True),
        sa.Column("cost", sa.Numeric(precision=14, scale=4), nullable=True),
        sa.Column("order_no", sa.Text(), nullable=True),
        sa.Column("rowversion", sa.BigInteger(), nullable=True),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("_source_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("_row_hash", sa.Text(), nullable=False),
        sa.Column("_batch_id", sa.UUID(), nullable=True),
        sa.Column("_synced_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["bridge.accounts.id"],
            name=op.f("fk_erp_inventory_transaction_hist_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erp_inventory_transaction_hist")),
        sa.UniqueConstraint(
            "account_id", "source_id", name=op.f("uq_erp_inventory_transaction_hist_account_id_source_id")
        ),
        schema="core",
    )
    op.create_index(
        "ix_erp_inventory_transaction_hist_period",
        "erp_inventory_transaction_hist",
        ["account_id", "period_key"],
        unique=False,
        schema="core",
    )


def downgrade() -> None:
    op.drop_index(
        "ix_erp_inventory_transaction_hist_period", table_name="erp_inventory_transaction_hist", schema="core"
    )
    op.drop_table("erp_inventory_transaction_hist", schema="core")
    op.drop_index("ix_erp_customer_order_line_period", table_name="erp_customer_order_line", schema="core")
    op.drop_table("erp_customer_order_line", schema="core")
    op.drop_index("ix_erp_customer_order_period", table_name="erp_customer_order", schema="core")
    op.drop_table("erp_customer_order", schema="core")
    op.drop_index("ix_erp_customer_info_period", table_name="erp_customer_info", schema="core")
    op.drop_table("erp_customer_info", schema="core")
    op.drop_index(
        "ix_erp_inventory_transaction_hist_batch", table_name="erp_inventory_transaction_hist", schema="staging"
    )
    op.drop_table("erp_inventory_transaction_hist", schema="staging")
    op.drop_index("ix_erp_customer_order_line_batch", table_name="erp_customer_order_line", schema="staging")
    op.drop_table("erp_customer_order_line", schema="staging")
    op.drop_index("ix_erp_customer_order_batch", table_name="erp_customer_order", schema="staging")
    op.drop_table("erp_customer_order", schema="staging")
    op.drop_index("ix_erp_customer_info_batch", table_name="erp_customer_info", schema="staging")
    op.drop_table("erp_customer_info", schema="staging")
