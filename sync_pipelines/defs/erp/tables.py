"""Staging and core tables of the four ERP (Oracle IFS) entities, on the shared warehouse metadata.

These belong in `lib/schema.py` beside the FUB tables; until they move there, importing this module
registers them (and does nothing when they are already registered, so the move needs no change here).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Integer, Numeric, Table, Text

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
