"""Staging and core tables of the SkySlope entities, on the shared warehouse metadata (migration 0008).

Importing this module registers them; a second registration (the module re-imported under another name) is a
no-op.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Date, Integer, Numeric, Table, Text
from sqlalchemy.dialects.postgresql import JSONB

from sync_pipelines.lib import schema

PREFIX = "skyslope_"
ENTITIES = ("offices", "users", "listings", "sales")


def _money(name: str) -> Column:
    return Column(name, Numeric(14, 2))


def _percent(name: str) -> Column:
    return Column(name, Numeric(7, 3))


def _file() -> tuple[Column, ...]:
    """What sales and listings share: the agent, the office, the stage and the property."""
    return (
        Column("agent_guid", Text),
        Column("created_by_guid", Text),
        Column("status", Text),
        Column("stage", Text),
        Column("stage_id", Integer),
        Column("checklist_type", Text),
        Column("mls_number", Text),
        Column("office_id", BigInteger),
        Column("office_guid", Text),
        Column("lead_source", Text),
        Column("file_email", Text),
        Column("agent_email", Text),
        Column("agent_first_name", Text),
        Column("agent_last_name", Text),
        Column("street_number", Text),
        Column("direction", Text),
        Column("street_name", Text),
        Column("unit", Text),
        Column("city", Text),
        Column("state", Text),
        Column("zip", Text),
        Column("county", Text),
        Column("year_built", Integer),
        Column("area_sqft", Integer),
        Column("sellers", JSONB),
        Column("custom_fields", JSONB),
    )


def _columns() -> dict[str, tuple[Column, ...]]:
    """Typed columns besides those every core entity table has (ids, created, change guard, soft delete)."""
    return {
        "offices": (
            Column("office_id", BigInteger),
            Column("name", Text),
            Column("street_address", Text),
            Column("city", Text),
            Column("state", Text),
            Column("zip", Text),
            Column("phone", Text),
        ),
        "users": (
            Column("email", Text),
            Column("first_name", Text),
            Column("last_name", Text),
            Column("public_id", Text),
            Column("user_type", Text),
            Column("office_guid", Text),
            Column("is_active", Boolean),
            Column("phone", Text),
            Column("alternate_phone", Text),
            Column("street_number", Text),
            Column("street_name", Text),
            Column("city", Text),
            Column("state", Text),
            Column("zip", Text),
        ),
        "listings": (
            *_file(),
            Column("co_listing_agent_guid", Text),
            Column("referring_agent_guid", Text),
            Column("listing_type", Text),
            _money("listing_price"),
            _percent("listing_commission_percent"),
            _percent("buyer_commission_percent"),
            Column("listing_date", Date),
            Column("expiration_date", Date),
        ),
        "sales": (
            *_file(),
            Column("listing_guid", Text),
            Column("status_id", Integer),
            Column("deal_type", Text),
            Column("escrow_number", Text),
            _money("sale_price"),
            _money("listing_price"),
            _money("commission_amount"),
            _percent("commission_percent"),
            Column("is_office_lead", Boolean),
            Column("co_broker_company", Text),
            Column("buyers", JSONB),
            Column("commission_splits", JSONB),
            Column("contract_acceptance_date", Date),
            Column("escrow_closing_date", Date),
            Column("actual_closing_date", Date),
        ),
    }


# The unified core.transaction / core.listing read these two incrementally by _synced_at (unified.py): without an
# index each update would scan the whole source table to find the few rows a delta changed.
SYNCED_INDEXED = ("sales", "listings")


TABLES = schema.entity_tables(
    PREFIX, {e: _columns()[e] for e in ENTITIES}, {e: {"synced_at": ("_synced_at",)} for e in SYNCED_INDEXED}
)


def staging(entity: str) -> Table:
    return TABLES[entity][0]


def core(entity: str) -> Table:
    return TABLES[entity][1]
