"""reZEN staging and core tables, and the unified core.transaction and core.listing.

- staging.rezen_<entity> / core.rezen_<entity> for agents, network down-line and front-line, teams, equity
  plans, cap info, transactions, listings and revenue-share contributions (sync_pipelines/defs/rezen/tables.py).
- core.rezen_transactions and core.rezen_listings are indexed on `_synced_at`: the unified tables are updated
  from the rows a sync changed, found by that index rather than by a scan of the whole source table.
- core.transaction and core.listing: one row per source record of every transaction-management source, the
  common columns typed, a normalised address key, the agent linked to core.participant (lib/schema.py).
- core.participant is indexed on `email`, which links unified rows to their agent.
- core.address_key(street, city, state, zip) and core.state_code(state): the normalised address key of the
  unified tables (the rule: sync_pipelines/defs/core/transactions.py), as SQL functions so that every source
  keys its rows alike and anyone can look a property up by it. Changing the rule is a migration that replaces
  them and re-keys the rows.

The tables are written out here rather than built from the live metadata, so this revision keeps creating
exactly what it created when it was written.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 03:30:00
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UNIFIED_STATUSES = ("active", "pending", "closed", "cancelled", "expired", "unknown")

# US states, DC and territories by name -> USPS code (a source that sends "TEXAS" or "North Carolina" keys
# alike with one that sends "TX" / "NC").
STATE_CODES = {
    "alabama": "AL", "alaska": "AK", "arizona": "AZ", "arkansas": "AR", "california": "CA", "colorado": "CO",
    "connecticut": "CT", "delaware": "DE", "district of columbia": "DC", "florida": "FL", "georgia": "GA",
    "hawaii": "HI", "idaho": "ID", "illinois": "IL", "indiana": "IN", "iowa": "IA", "kansas": "KS",
    "kentucky": "KY", "louisiana": "LA", "maine": "ME", "maryland": "MD", "massachusetts": "MA",
    "michigan": "MI", "minnesota": "MN", "mississippi": "MS", "missouri": "MO", "montana": "MT",
    "nebraska": "NE", "nevada": "NV", "new hampshire": "NH", "new jersey": "NJ", "new mexico": "NM",
    "new york": "NY", "north carolina": "NC", "north dakota": "ND", "ohio": "OH", "oklahoma": "OK",
    "oregon": "OR", "pennsylvania": "PA", "rhode island": "RI", "south carolina": "SC", "south dakota": "SD",
    "tennessee": "TN", "texas": "TX", "utah": "UT", "vermont": "VT", "virginia": "VA", "washington": "WA",
    "west virginia": "WV", "wisconsin": "WI", "wyoming": "WY", "puerto rico": "PR", "guam": "GU",
    "us virgin islands": "VI", "virgin islands": "VI", "american samoa": "AS", "northern mariana islands": "MP",
}  # fmt: skip
# USPS Publication 28 abbreviations of common street suffixes and of directionals.
STREET_WORDS = {
    "street": "st", "str": "st", "avenue": "ave", "av": "ave", "road": "rd", "drive": "dr", "boulevard": "blvd",
    "lane": "ln", "court": "ct", "place": "pl", "circle": "cir", "parkway": "pkwy", "terrace": "ter",
    "highway": "hwy", "trail": "trl", "square": "sq", "expressway": "expy", "freeway": "fwy", "crossing": "xing",
    "point": "pt", "heights": "hts", "mount": "mt", "north": "n", "south": "s", "east": "e", "west": "w",
    "northeast": "ne", "northwest": "nw", "southeast": "se", "southwest": "sw",
}  # fmt: skip
UNIT_DESIGNATORS = ("apt", "apartment", "unit", "suite", "ste", "bldg", "building", "fl", "floor", "rm", "room")


def _jsonb_literal(mapping: dict[str, str]) -> str:
    return "'" + json.dumps(mapping, sort_keys=True).replace("'", "''") + "'::jsonb"


def _functions() -> list[str]:
    units = "|".join(UNIT_DESIGNATORS)
    state_code = f"""
    CREATE OR REPLACE FUNCTION core.state_code(state text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
      SELECT CASE WHEN s = '' THEN NULL ELSE upper(coalesce({_jsonb_literal(STATE_CODES)} ->> s, s)) END
      FROM (SELECT btrim(regexp_replace(regexp_replace(lower(replace(state, '_', ' ')), '[^a-z ]+', '', 'g'),
                                        '\\s+', ' ', 'g')) AS s) x
    $fn$
    """
    quotes = "[.''\u2019]"  # periods and apostrophes go without a trace: "St." -> "st", "O'Neil" -> "oneil"
    address_key = f"""
    CREATE OR REPLACE FUNCTION core.address_key(street text, city text, state text, zip text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
      SELECT CASE WHEN st IS NULL THEN NULL
                  ELSE concat_ws('|', st, coalesce(ct, ''), coalesce(lower(core.state_code(state)), ''),
                                 coalesce(z, '')) END
      FROM (
        SELECT (SELECT nullif(string_agg(coalesce({_jsonb_literal(STREET_WORDS)} ->> w, w), ' ' ORDER BY n), '')
                FROM unnest(regexp_split_to_array(words, ' ')) WITH ORDINALITY AS u(w, n)
                WHERE w <> '') AS st,
               ct, z
        FROM (
          SELECT regexp_replace(regexp_replace(s, '\\m({units})\\M\\s*[a-z0-9-]*', ' ', 'g'), '[^a-z0-9]+', ' ', 'g')
                   AS words,
                 ct, z
          FROM (
            SELECT regexp_replace(regexp_replace(lower(street), '#\\s*[a-z0-9-]*', ' ', 'g'), '{quotes}', '', 'g') AS s,
                   nullif(btrim(regexp_replace(regexp_replace(lower(city), '{quotes}', '', 'g'), '[^a-z0-9]+', ' ',
                                               'g')), '') AS ct,
                   nullif(left(regexp_replace(zip, '[^0-9]', '', 'g'), 5), '') AS z
          ) a
        ) b
      ) c
    $fn$
    """
    return [state_code, address_key]


def _money(name: str) -> sa.Column:
    return sa.Column(name, sa.Numeric(precision=14, scale=2), nullable=True)


def _text(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.Text(), nullable=True) for name in names]


def _address() -> list[sa.Column]:
    return _text("street", "street2", "city", "state", "zip", "country")


def _date(name: str) -> sa.Column:
    return sa.Column(name, sa.Date(), nullable=True)


def _jsonb(name: str) -> sa.Column:
    return sa.Column(name, postgresql.JSONB(astext_type=sa.Text()), nullable=True)


def _entity_columns() -> dict[str, list[sa.Column]]:
    """Fresh Column objects on each call: a Column belongs to the one table it is created in."""
    return {
        "agents": [
            *_text("first_name", "last_name", "display_name", "email", "phone", "status", "agent_type"),
            sa.Column("tier", sa.Integer(), nullable=True),
            *_text("sponsor_source_id", "country", "license_number", "license_state", "city", "state_or_province"),
            *_text("equity_purchase_plan_id", "equity_award_plan_id"),
            _date("join_date"),
        ],
        "network_downline": [
            *_text("display_name", "email", "status"),
            sa.Column("tier", sa.Integer(), nullable=True),
            *_text("sponsor_source_id"),
            _date("join_date"),
        ],
        "network_frontline": [*_text("display_name", "email", "status", "sponsor_source_id"), _date("join_date")],
        "teams": [*_text("name", "status", "team_type", "leader_agent_source_id"), _jsonb("members")],
        "equity": [
            *_text("plan_type", "name"),
            sa.Column("min_percent", sa.Numeric(precision=7, scale=3), nullable=True),
            sa.Column("max_percent", sa.Numeric(precision=7, scale=3), nullable=True),
            _money("cap_amount"),
            sa.Column("award_shares", sa.Integer(), nullable=True),
            *_text("award_trigger"),
        ],
        "cap_info": [
            *_text("cap_status"),
            _money("cap"),
            _money("cap_paid"),
            _money("cap_remaining"),
            *_text("currency"),
            _date("anniversary_date"),
            _date("next_anniversary_date"),
        ],
        "transactions": [
            *_text("code", "transaction_type", "lifecycle_state"),
            sa.Column("is_listing", sa.Boolean(), nullable=True),
            *_text("owner_agent_source_id"),
            _jsonb("agents"),
            _money("price"),
            *_text("currency"),
            _money("gross_commission"),
            sa.Column("gross_commission_pct", sa.Numeric(precision=7, scale=3), nullable=True),
            *_text("representation_type", "mls_number"),
            *_address(),
            _date("contract_acceptance_date"),
            _date("closing_date_estimated"),
            _date("closed_at"),
        ],
        "listings": [
            *_text("code", "transaction_type", "lifecycle_state", "owner_agent_source_id"),
            _jsonb("agents"),
            _money("price"),
            *_text("currency", "mls_number"),
            *_address(),
            _date("listing_date"),
            _date("listing_expiration_date"),
        ],
        "revshare_contributions": [
            sa.Column("tier", sa.Integer(), nullable=True),
            *_text(
                "agent_source_id", "agent_first_name", "agent_last_name", "transaction_source_id", "transaction_code"
            ),
            _money("payout"),
            *_text("currency"),
            _money("gross_commission"),
            _date("closed_at"),
            sa.Column("missed", sa.Boolean(), nullable=True),
            *_text("status"),
        ],
    }


SYNCED_INDEXED = ("transactions", "listings")


def _create_staging(name: str) -> None:
    op.create_table(
        name,
        sa.Column("_row_id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("_batch_id", sa.UUID(), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=True),
        sa.Column("period_key", sa.Text(), nullable=True),
        sa.Column("_fetched_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("_raw_hash", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("_row_id", name=op.f(f"pk_{name}")),
        schema="staging",
    )
    op.create_index(f"ix_{name}_batch", name, ["_batch_id"], unique=False, schema="staging")


def _create_core(name: str, columns: list[sa.Column]) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.UUID(), server_default=sa.text("bridge.uuid_v7()"), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("period_key", sa.Text(), nullable=True),
        sa.Column("created_at_source", sa.DateTime(timezone=True), nullable=True),
        *columns,
        sa.Column("_source_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("_row_hash", sa.Text(), nullable=False),
        sa.Column("_batch_id", sa.UUID(), nullable=True),
        sa.Column("_synced_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
        sa.UniqueConstraint("account_id", "source_id", name=op.f(f"uq_{name}_account_id_source_id")),
        schema="core",
    )
    op.create_index(f"ix_{name}_period", name, ["account_id", "period_key"], unique=False, schema="core")


def _create_unified(name: str, columns: list[sa.Column]) -> None:
    statuses = ", ".join(f"'{s}'" for s in UNIFIED_STATUSES)
    op.create_table(
        name,
        sa.Column("id", sa.UUID(), server_default=sa.text("bridge.uuid_v7()"), nullable=False),
        sa.Column("integration", sa.Text(), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("source_entity", sa.Text(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        *_text("source_status"),
        _money("price"),
        *_text("currency", "mls_number", "street", "unit", "city", "state", "zip", "address_key"),
        *columns,
        *_text("agent_source_id", "agent_email"),
        sa.Column("participant_id", sa.UUID(), nullable=True),
        sa.Column("created_at_source", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("_synced_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(f"status IN ({statuses})", name=op.f(f"ck_{name}_status")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["bridge.accounts.id"], name=op.f(f"fk_{name}_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["core.participant.id"],
            name=op.f(f"fk_{name}_participant_id_participant"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
        sa.UniqueConstraint(
            "integration",
            "account_id",
            "source_entity",
            "source_id",
            name=op.f(f"uq_{name}_integration_account_id_source_entity_source_id"),
        ),
        schema="core",
    )
    op.create_index(f"ix_{name}_address_key", name, ["address_key"], unique=False, schema="core")
    op.create_index(f"ix_{name}_agent_email", name, ["agent_email"], unique=False, schema="core")


def upgrade() -> None:
    for entity, columns in _entity_columns().items():
        name = f"rezen_{entity}"
        _create_staging(name)
        _create_core(name, columns)
        if entity in SYNCED_INDEXED:
            op.create_index(f"ix_{name}_synced_at", name, ["_synced_at"], unique=False, schema="core")
    _create_unified(
        "transaction",
        [*_text("transaction_type"), _date("contract_date"), _date("expected_close_date"), _date("closed_date")],
    )
    _create_unified("listing", [_date("listed_date"), _date("expiration_date")])
    op.create_index("ix_participant_email", "participant", ["email"], unique=False, schema="core")
    for statement in _functions():
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS core.address_key(text, text, text, text)")
    op.execute("DROP FUNCTION IF EXISTS core.state_code(text)")
    op.drop_index("ix_participant_email", table_name="participant", schema="core")
    for name in ("listing", "transaction"):
        op.drop_table(name, schema="core")  # its indexes and constraints go with it
    for entity in reversed(list(_entity_columns())):
        name = f"rezen_{entity}"
        op.drop_table(name, schema="core")
        op.drop_table(name, schema="staging")
