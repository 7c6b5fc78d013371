"""Staging and core tables of the reZEN entities, on the shared warehouse metadata (migration 0007).

Importing this module registers them; a second registration (the module re-imported under another name, or
the tables moved into lib/schema.py later) is a no-op, so the move needs no change here.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Date, Integer, Numeric, Table, Text
from sqlalchemy.dialects.postgresql import JSONB

from sync_pipelines.lib import schema

PREFIX = "rezen_"
ENTITIES = (
    "agents",
    "network_downline",
    "network_frontline",
    "teams",
    "equity",
    "cap_info",
    "transactions",
    "listings",
    "revshare_contributions",
)


def _money(name: str) -> Column:
    return Column(name, Numeric(14, 2))


def _address() -> tuple[Column, ...]:
    return (
        Column("street", Text),
        Column("street2", Text),
        Column("city", Text),
        Column("state", Text),
        Column("zip", Text),
        Column("country", Text),
    )


def _columns() -> dict[str, tuple[Column, ...]]:
    """Typed columns besides those every core entity table has (ids, created, change guard, soft delete)."""
    return {
        "agents": (
            Column("first_name", Text),
            Column("last_name", Text),
            Column("display_name", Text),
            Column("email", Text),
            Column("phone", Text),
            Column("status", Text),
            Column("agent_type", Text),
            Column("tier", Integer),
            Column("sponsor_source_id", Text),
            Column("country", Text),
            Column("license_number", Text),
            Column("license_state", Text),
            Column("city", Text),
            Column("state_or_province", Text),
            Column("equity_purchase_plan_id", Text),
            Column("equity_award_plan_id", Text),
            Column("join_date", Date),
        ),
        "network_downline": (
            Column("display_name", Text),
            Column("email", Text),
            Column("status", Text),
            Column("tier", Integer),
            Column("sponsor_source_id", Text),
            Column("join_date", Date),
        ),
        "network_frontline": (
            Column("display_name", Text),
            Column("email", Text),
            Column("status", Text),
            Column("sponsor_source_id", Text),
            Column("join_date", Date),
        ),
        "teams": (
            Column("name", Text),
            Column("status", Text),
            Column("team_type", Text),
            Column("leader_agent_source_id", Text),
            Column("members", JSONB),
        ),
        "equity": (
            Column("plan_type", Text),
            Column("name", Text),
            Column("min_percent", Numeric(7, 3)),
            Column("max_percent", Numeric(7, 3)),
            _money("cap_amount"),
            Column("award_shares", Integer),
            Column("award_trigger", Text),
        ),
        "cap_info": (
            Column("cap_status", Text),
            _money("cap"),
            _money("cap_paid"),
            _money("cap_remaining"),
            Column("currency", Text),
            Column("anniversary_date", Date),
            Column("next_anniversary_date", Date),
        ),
        "transactions": (
            Column("code", Text),
            Column("transaction_type", Text),
            Column("lifecycle_state", Text),
            Column("is_listing", Boolean),
            Column("owner_agent_source_id", Text),
            Column("agents", JSONB),
            _money("price"),
            Column("currency", Text),
            _money("gross_commission"),
            Column("gross_commission_pct", Numeric(7, 3)),
            Column("representation_type", Text),
            Column("mls_number", Text),
            *_address(),
            Column("contract_acceptance_date", Date),
            Column("closing_date_estimated", Date),
            Column("closed_at", Date),
        ),
        "listings": (
            Column("code", Text),
            Column("transaction_type", Text),
            Column("lifecycle_state", Text),
            Column("owner_agent_source_id", Text),
            Column("agents", JSONB),
            _money("price"),
            Column("currency", Text),
            Column("mls_number", Text),
            *_address(),
            Column("listing_date", Date),
            Column("listing_expiration_date", Date),
        ),
        "revshare_contributions": (
            Column("tier", Integer),
            Column("agent_source_id", Text),
            Column("agent_first_name", Text),
            Column("agent_last_name", Text),
            Column("transaction_source_id", Text),
            Column("transaction_code", Text),
            _money("payout"),
            Column("currency", Text),
            _money("gross_commission"),
            Column("closed_at", Date),
            Column("missed", Boolean),
            Column("status", Text),
        ),
    }


# The unified core.transaction / core.listing read these two incrementally by _synced_at (defs/core/transactions.py):
# without an index each update would scan the whole source table to find the few rows a delta changed.
SYNCED_INDEXED = ("transactions", "listings")


TABLES = schema.entity_tables(
    PREFIX, {e: _columns()[e] for e in ENTITIES}, {e: {"synced_at": ("_synced_at",)} for e in SYNCED_INDEXED}
)


def staging(entity: str) -> Table:
    return TABLES[entity][0]


def core(entity: str) -> Table:
    return TABLES[entity][1]
