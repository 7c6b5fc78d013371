"""The ERP (Oracle IFS) entities: which source table, which columns, and how they map to core columns.

Each record the source hands over is one source row as a dict (numbers and timestamps as the text
Postgres prints, so nothing is rounded on the way); order lines carry `line_key`, their composite
primary key as one text value, because core keys every entity on one `source_id`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sync_pipelines.defs.erp import tables
from sync_pipelines.lib.load import EntitySpec, ParentRef
from sync_pipelines.lib.mappings import FieldMapping as M

INTEGRATION = "erp"
SOURCE_SYSTEM = "erp"
# The account every ERP row belongs to in core (core tables key on (account_id, source_id)).
ACCOUNT_NAME = "ifs"
SOURCE_SCHEMA = "ifsapp"
# Parents first: a night moves the orders before their lines, so few lines wait for their order.
LOAD_ORDER = tables.ERP_ENTITIES


@dataclass(frozen=True)
class SourceTable:
    entity: str
    columns: tuple[str, ...]
    id_field: str
    created_field: str | None
    # Extra computed columns: name -> SQL over the source row.
    computed: tuple[tuple[str, str], ...] = ()

    @property
    def qualified(self) -> str:
        return f"{SOURCE_SCHEMA}.{self.entity}"


SOURCES: dict[str, SourceTable] = {
    "customer_info": SourceTable(
        "customer_info",
        ("customer_id", "name", "association_no", "country", "creation_date", "credit_limit", "rowversion"),
        id_field="customer_id",
        created_field="creation_date",
    ),
    "customer_order": SourceTable(
        "customer_order",
        (
            "order_no",
            "customer_no",
            "contract",
            "order_date",
            "wanted_delivery_date",
            "currency_code",
            "state",
            "total_amount",
            "rowversion",
        ),
        id_field="order_no",
        created_field="order_date",
    ),
    "customer_order_line": SourceTable(
        "customer_order_line",
        (
            "order_no",
            "line_no",
            "rel_no",
            "catalog_no",
            "description",
            "buy_qty_due",
            "sale_unit_price",
            "state",
            "rowversion",
        ),
        id_field="line_key",
        created_field=None,
        computed=(("line_key", "order_no || '|' || line_no || '|' || rel_no"),),
    ),
    "inventory_transaction_hist": SourceTable(
        "inventory_transaction_hist",
        (
            "transaction_id",
            "part_no",
            "contract",
            "transaction_code",
            "quantity",
            "cost",
            "date_created",
            "order_no",
            "rowversion",
        ),
        id_field="transaction_id",
        created_field="date_created",
    ),
}

_ROWVERSION = M("rowversion", "rowversion", "bigint", is_required=True)
# The load path wants a source update time; IFS has none besides ROWVERSION (a number here), so this maps a
# field the source never sends: NULL, and the change guard compares row hashes only. Rows arrive in
# rowversion order, so within a batch the last copy of a row is its newest version.
_NO_UPDATE_TIME = M("updated_at", "_source_updated_at", "timestamptz")
# Order lines have no creation time of their own.
_NO_CREATION_TIME = M("created_at", "created_at_source", "timestamptz")

DEFAULT_MAPPINGS: dict[str, tuple[M, ...]] = {
    "customer_info": (
        M("customer_id", "source_id", is_required=True),
        M("creation_date", "created_at_source", "timestamptz", is_required=True),
        M("customer_id", "customer_id", is_required=True),
        M("name", "name", transformation="trim"),
        M("association_no", "association_no", transformation="trim"),
        M("country", "country", transformation="upper"),
        M("credit_limit", "credit_limit", "numeric"),
        _ROWVERSION,
        _NO_UPDATE_TIME,
    ),
    "customer_order": (
        M("order_no", "source_id", is_required=True),
        M("order_date", "created_at_source", "timestamptz", is_required=True),
        M("order_no", "order_no", is_required=True),
        M("customer_no", "customer_no"),
        M("contract", "contract"),
        M("wanted_delivery_date", "wanted_delivery_date", "timestamptz"),
        M("currency_code", "currency_code", transformation="upper"),
        M("state", "state"),
        M("total_amount", "total_amount", "numeric"),
        _ROWVERSION,
        _NO_UPDATE_TIME,
    ),
    "customer_order_line": (
        M("line_key", "source_id", is_required=True),
        _NO_CREATION_TIME,
        M("order_no", "order_no", is_required=True),
        M("line_no", "line_no", "integer", is_required=True),
        M("rel_no", "rel_no", is_required=True),
        M("catalog_no", "catalog_no"),
        M("description", "description"),
        M("buy_qty_due", "buy_qty_due", "numeric"),
        M("sale_unit_price", "sale_unit_price", "numeric"),
        M("state", "state"),
        _ROWVERSION,
        _NO_UPDATE_TIME,
    ),
    "inventory_transaction_hist": (
        M("transaction_id", "source_id", is_required=True),
        M("date_created", "created_at_source", "timestamptz", is_required=True),
        M("transaction_id", "transaction_id", "bigint", is_required=True),
        M("part_no", "part_no"),
        M("contract", "contract"),
        M("transaction_code", "transaction_code"),
        M("quantity", "quantity", "numeric"),
        M("cost", "cost", "numeric"),
        M("order_no", "order_no"),
        _ROWVERSION,
        _NO_UPDATE_TIME,
    ),
}

# Core columns that carry the source's primary key, in key order (for checksums against the source).
PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "customer_info": ("customer_id",),
    "customer_order": ("order_no",),
    "customer_order_line": ("order_no", "line_no", "rel_no"),
    "inventory_transaction_hist": ("transaction_id",),
}


def _spec(entity: str) -> EntitySpec:
    source = SOURCES[entity]
    return EntitySpec(
        integration=INTEGRATION,
        entity=entity,
        staging=tables.staging(entity),
        core=tables.core(entity),
        mappings=DEFAULT_MAPPINGS[entity],
        parent=ParentRef("customer_order", "order_no") if entity == "customer_order_line" else None,
        id_field=source.id_field,
        created_field=source.created_field or "",
    )


SPECS: dict[str, EntitySpec] = {entity: _spec(entity) for entity in LOAD_ORDER}


def entity_or_error(name: str) -> str:
    if name not in SPECS:
        raise ValueError(f"unknown ERP entity {name!r}; expected one of {', '.join(LOAD_ORDER)}")
    return name
