"""The ERP's own tables on the shared warehouse metadata: staging and core tables of the four Oracle IFS
entities, and bridge.erp_sync_state (seed 000's rowversion watermark per table). lib/schema.py holds only what
every integration shares; importing this module registers these."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import UUID

from sync_pipelines.lib import schema

ERP_ENTITIES = ("customer_info", "customer_order", "customer_order_line", "inventory_transaction_hist")


def _columns() -> dict[str, tuple[Column, ...]]:
    # Typed columns besides the core_entity_table ones; the source's primary key columns and rowversion
    # keep their IFS names, so a core table can be checksummed against the source table.
    return {
        "customer_info": (
            Column("customer_id", Text),
            Column("name", Text),
            Column("association_no", Text),
            Column("country", Text),
            Column("credit_limit", Numeric(14, 2)),
            Column("rowversion", BigInteger),
        ),
        "customer_order": (
            Column("order_no", Text),
            Column("customer_no", Text),
            Column("contract", Text),
            Column("wanted_delivery_date", DateTime(timezone=True)),
            Column("currency_code", Text),
            Column("state", Text),
            Column("total_amount", Numeric(14, 2)),
            Column("rowversion", BigInteger),
        ),
        "customer_order_line": (
            Column("order_no", Text),
            Column("line_no", Integer),
            Column("rel_no", Text),
            Column("catalog_no", Text),
            Column("description", Text),
            Column("buy_qty_due", Numeric),
            Column("sale_unit_price", Numeric(14, 2)),
            Column("state", Text),
            Column("rowversion", BigInteger),
        ),
        "inventory_transaction_hist": (
            Column("transaction_id", BigInteger),
            Column("part_no", Text),
            Column("contract", Text),
            Column("transaction_code", Text),
            Column("quantity", Numeric),
            Column("cost", Numeric(14, 4)),
            Column("order_no", Text),
            Column("rowversion", BigInteger),
        ),
    }


def _sync_state() -> Table:
    name = f"{schema.BRIDGE}.erp_sync_state"
    if name in schema.metadata.tables:
        return schema.metadata.tables[name]
    return Table(
        "erp_sync_state",
        schema.metadata,
        schema._id(),
        Column("entity_name", Text, nullable=False),
        Column("source_system", Text, nullable=False),
        Column("last_sync_rowversion", BigInteger),
        Column("last_sync_timestamp", DateTime(timezone=True)),
        Column(
            "last_batch_id",
            UUID(as_uuid=True),
            ForeignKey(f"{schema.BRIDGE}.sync_batches.id", ondelete="SET NULL"),
        ),
        schema._count("rows_synced"),
        Column("status", Text, nullable=False, server_default=text("'idle'")),
        Column("error_message", Text),
        schema._created_at(),
        schema._updated_at(),
        UniqueConstraint("entity_name", "source_system"),
        CheckConstraint(schema._in("status", schema.SYNC_STATE_STATUSES), name="status"),
        Index("ix_erp_sync_state_entity", "entity_name", "source_system"),
        schema=schema.BRIDGE,
    )


erp_sync_state = _sync_state()


def _register() -> None:
    for entity, columns in _columns().items():
        name = f"erp_{entity}"
        if f"{schema.STAGING}.{name}" not in schema.metadata.tables:
            schema.staging_table(name)
        if f"{schema.CORE}.{name}" not in schema.metadata.tables:
            schema.core_entity_table(name, *columns)


_register()


def staging(entity: str) -> Table:
    return schema.metadata.tables[f"{schema.STAGING}.erp_{entity}"]


def core(entity: str) -> Table:
    return schema.metadata.tables[f"{schema.CORE}.erp_{entity}"]
