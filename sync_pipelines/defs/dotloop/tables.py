"""Staging and core tables of the DotLoop entities, on the shared warehouse metadata (migration 0009).

Importing this module registers them; a second registration (the module re-imported under another name) is a
no-op.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Date, Integer, Numeric, Table, Text

from sync_pipelines.lib import schema

PREFIX = "dotloop_"
ENTITIES = ("profiles", "loops", "participants", "contacts")


def _columns() -> dict[str, tuple[Column, ...]]:
    """Typed columns besides those every core entity table has (ids, created, change guard, soft delete)."""
    return {
        "profiles": (
            Column("name", Text),
            Column("profile_type", Text),
            Column("company", Text),
            Column("phone", Text),
            Column("fax", Text),
            Column("address", Text),
            Column("city", Text),
            Column("state", Text),
            Column("zip", Text),
            Column("is_default", Boolean),
            Column("requires_template", Boolean),
        ),
        # A loop and its detail sections (read with the loop: `include_details`), flattened into typed columns.
        "loops": (
            Column("profile_source_id", Text),
            Column("name", Text),
            Column("status", Text),
            Column("transaction_type", Text),
            Column("total_task_count", Integer),
            Column("completed_task_count", Integer),
            Column("loop_url", Text),
            Column("street_number", Text),
            Column("street_name", Text),
            Column("unit_number", Text),
            Column("city", Text),
            Column("state", Text),
            Column("zip", Text),
            Column("county", Text),
            Column("country", Text),
            Column("mls_number", Text),
            Column("price", Numeric(14, 2)),
            Column("contract_agreement_date", Date),
            Column("closing_date", Date),
            Column("listing_date", Date),
            Column("expiration_date", Date),
            Column("transaction_number", Text),
            # Set when DotLoop merged this loop into another (LOOP_MERGED, or a 301 on a fetch by id); the row
            # is soft-deleted at the same time. No mapping writes it, so a reload of the survivor leaves it.
            Column("merged_into_source_id", Text),
        ),
        "participants": (
            Column("loop_source_id", Text),
            Column("profile_source_id", Text),
            Column("full_name", Text),
            Column("email", Text),
            Column("role", Text),
            Column("phone", Text),
        ),
        "contacts": (
            Column("first_name", Text),
            Column("last_name", Text),
            Column("email", Text),
            Column("home_phone", Text),
            Column("office_phone", Text),
            Column("fax", Text),
            Column("address", Text),
            Column("city", Text),
            Column("state", Text),
            Column("zip", Text),
            Column("country", Text),
        ),
    }


_COLUMNS = _columns()
TABLES = schema.entity_tables(
    PREFIX,
    {e: _COLUMNS[e] for e in ENTITIES},
    {
        # The unified core.transaction / core.listing read loops incrementally by _synced_at.
        "loops": {"synced_at": ("_synced_at",)},
        # A loop's participants: its agent for the unified rows, and the lists a delta re-read.
        "participants": {"loop": ("account_id", "loop_source_id")},
    },
)


def staging(entity: str) -> Table:
    return TABLES[entity][0]


def core(entity: str) -> Table:
    return TABLES[entity][1]
