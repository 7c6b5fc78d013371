"""Unified transactions and listings across integrations: core.transaction and core.listing.

Every transaction-management source (reZEN now; SkySlope and DotLoop next) contributes one row per record,
keyed by (integration, account, source entity, source id), with the common columns typed: status in one
vocabulary (lib/schema.py UNIFIED_STATUSES, the source's own state kept in `source_status`), price, address
parts, dates, the agent (source id and email) and `participant_id`, the core.participant agent with that email.
A source joins by adding one `UnifiedSource` to TRANSACTION_SOURCES or LISTING_SOURCES: its core table and a SQL
expression per unified column over that table's row `s`.

**Incremental.** `update_unified(engine, since)` reads only the source rows whose `_synced_at` is after `since`
(the load path stamps `_synced_at` on every insert, change and soft delete, and the two reZEN tables are indexed
on it), upserts them, and writes nothing for a row whose unified values did not change. A soft-deleted source
row soft-deletes its unified row (and a source row that comes back revives it). Then rows whose agent email
belongs to a participant changed since `since` are linked again, so an agent synced after their transactions
is found. `since=None` takes everything (the first run, or a repair).
Pass the previous run's start minus `SINCE_OVERLAP` as `since`: `_synced_at` is the time a load transaction
*started*, so a batch that was still committing when the previous run read may carry an earlier stamp.
Reading it twice writes nothing.

**Normalised address key** (`address_key`, SQL function core.address_key from migration 0007), so the same
property sold through two systems shows as two rows with one key:
- street: lower case; a `#` and what follows it removed (`#4B`); periods and apostrophes removed (`St.` ->
  `st`); a unit designator and the token after it removed (apt, apartment, unit, suite, ste, bldg, building,
  fl, floor, rm, room: `Apt 4B`, `Suite 200`, `Unit C-2`); every other run of punctuation or spaces made one
  space; street suffixes and directionals abbreviated as USPS Publication 28 does (street -> st, avenue ->
  ave, boulevard -> blvd, north -> n, northwest -> nw, ...). A separate second address line is not part of it.
- city: lower case, periods and apostrophes removed, other punctuation and spaces collapsed to one space.
- state: the USPS code, lower case (`TEXAS`, `north_carolina`, `NC` all give `tx` / `nc`; core.state_code).
- zip: its first five digits.
- key = street | city | state | zip5, joined by `|`; NULL when there is no street.
Example: `123 Main Street, Apt. 4B`, `Austin`, `TEXAS`, `78701-1234` -> `123 main st|austin|tx|78701`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from sync_pipelines.defs.dotloop import unified as dotloop_unified
from sync_pipelines.defs.rezen.lifecycle import GROUP_STATES
from sync_pipelines.defs.skyslope import unified as skyslope_unified
from sync_pipelines.lib import schema

SINCE_OVERLAP = timedelta(minutes=15)

# Columns every unified table has, besides its keys; each source gives an expression for each (NULL if none).
COMMON_COLUMNS = (
    "price",
    "currency",
    "mls_number",
    "street",
    "unit",
    "city",
    "state",
    "zip",
    "agent_source_id",
    "agent_email",
    "created_at_source",
    "source_updated_at",
)
TABLE_COLUMNS = {
    "transaction": COMMON_COLUMNS + ("transaction_type", "contract_date", "expected_close_date", "closed_date"),
    "listing": COMMON_COLUMNS + ("listed_date", "expiration_date"),
}


@dataclass(frozen=True)
class UnifiedSource:
    """One integration entity feeding a unified table."""

    integration: str
    source_entity: str
    table: str  # its typed core table, read as `s`
    state: str  # SQL expression of the source's own state
    statuses: Mapping[str, str]  # source state -> unified status; any other state is 'unknown'
    columns: Mapping[str, str] = field(default_factory=dict)  # unified column -> SQL expression over `s`


def _statuses(entity: str, by_group: Mapping[str, str], **by_state: str) -> dict[str, str]:
    statuses = {state: by_group[group] for group, states in GROUP_STATES[entity].items() for state in states}
    statuses.update(by_state)
    return statuses


# The key owner's email comes from their agent row: a reZEN transaction names its owner by id only.
_REZEN_OWNER_EMAIL = (
    "(SELECT a.email FROM core.rezen_agents a"
    " WHERE a.account_id = s.account_id AND a.source_id = s.owner_agent_source_id)"
)
_REZEN_COMMON = {
    "price": "s.price",
    "currency": "s.currency",
    "mls_number": "s.mls_number",
    "street": "s.street",
    "unit": "s.street2",
    "city": "s.city",
    "state": "s.state",
    "zip": "s.zip",
    "agent_source_id": "s.owner_agent_source_id",
    "agent_email": _REZEN_OWNER_EMAIL,
    "created_at_source": "s.created_at_source",
    "source_updated_at": "s._source_updated_at",
}

TRANSACTION_SOURCES: list[UnifiedSource] = [
    UnifiedSource(
        "rezen",
        "transactions",
        "core.rezen_transactions",
        state="s.lifecycle_state",
        # reZEN's open states are all after contract acceptance: under contract, i.e. pending.
        statuses=_statuses("transactions", {"OPEN": "pending", "CLOSED": "closed", "TERMINATED": "cancelled"}),
        columns={
            **_REZEN_COMMON,
            "transaction_type": "s.transaction_type",
            "contract_date": "s.contract_acceptance_date",
            "expected_close_date": "s.closing_date_estimated",
            "closed_date": "s.closed_at",
        },
    ),
]
LISTING_SOURCES: list[UnifiedSource] = [
    UnifiedSource(
        "rezen",
        "listings",
        "core.rezen_listings",
        state="s.lifecycle_state",
        statuses=_statuses(
            "listings",
            {"LISTING_ACTIVE": "active", "CLOSED": "closed", "TERMINATED": "cancelled"},
            LISTING_IN_CONTRACT="pending",
            EXPIRED="expired",
        ),
        columns={**_REZEN_COMMON, "listed_date": "s.listing_date", "expiration_date": "s.listing_expiration_date"},
    ),
]
TRANSACTION_SOURCES.append(UnifiedSource(*skyslope_unified.SALES))
LISTING_SOURCES.append(UnifiedSource(*skyslope_unified.LISTINGS))
TRANSACTION_SOURCES.append(UnifiedSource(*dotloop_unified.TRANSACTIONS))
LISTING_SOURCES.append(UnifiedSource(*dotloop_unified.LISTINGS))
SOURCES = {"transaction": TRANSACTION_SOURCES, "listing": LISTING_SOURCES}


SHAPED = {"state": "core.state_code(x.state)", "agent_email": "lower(btrim(x.agent_email))"}


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _status_case(source: UnifiedSource) -> str:
    arms = " ".join(f"WHEN {_quote(state)} THEN {_quote(status)}" for state, status in sorted(source.statuses.items()))
    return f"CASE x.source_status {arms} ELSE 'unknown' END"


def _upsert_sql(table: str, source: UnifiedSource) -> str:
    columns = TABLE_COLUMNS[table]
    unknown = set(source.columns) - set(columns)
    if unknown:
        raise ValueError(f"{source.integration}/{source.source_entity}: no unified column {sorted(unknown)}")
    unified = schema.metadata.tables[f"{schema.CORE}.{table}"]
    # A column the source lacks is a NULL of the column's type (an untyped NULL would be text in the CTE).
    selected = ",\n".join(
        f"{source.columns.get(c) or f'CAST(NULL AS {unified.c[c].type.compile(dialect=postgresql.dialect())})'} AS {c}"
        for c in columns
    )
    # The state is stored as its USPS code and the email lower case (as core.participant holds it); the address
    # key is computed from the source's own parts.
    shaped = [SHAPED.get(c, f"x.{c}") for c in columns]
    written = ("status", "source_status", *columns, "address_key", "participant_id", "deleted_at")
    return f"""
        WITH changed AS (
            SELECT s.account_id, s.source_id, s.deleted_at, {source.state} AS source_status,
                   {selected}
            FROM {source.table} s
            WHERE CAST(:since AS timestamptz) IS NULL OR s._synced_at > CAST(:since AS timestamptz)
        )
        INSERT INTO core.{table} AS t (integration, account_id, source_entity, source_id, {", ".join(written)})
        SELECT :integration, x.account_id, :entity, x.source_id, {_status_case(source)}, x.source_status,
               {", ".join(shaped)},
               core.address_key(x.street, x.city, x.state, x.zip),
               (SELECT p.id FROM core.participant p
                WHERE p.kind = 'agent' AND p.deleted_at IS NULL AND p.email = lower(btrim(x.agent_email))
                ORDER BY p.id LIMIT 1),
               x.deleted_at
        FROM changed x
        ON CONFLICT (integration, account_id, source_entity, source_id) DO UPDATE
        SET {", ".join(f"{c} = EXCLUDED.{c}" for c in written)}, _synced_at = now()
        WHERE ({", ".join(f"t.{c}" for c in written)}) IS DISTINCT FROM ({", ".join(f"EXCLUDED.{c}" for c in written)})
    """


def _relink_sql(table: str) -> str:
    """Rows whose agent email belongs to a participant changed since `since`: the link is computed again by
    the rule the upsert uses (the live agent with that email and the smallest id), so it never flips."""
    return f"""
        WITH touched AS (
            SELECT DISTINCT p.email FROM core.participant p
            WHERE p.kind = 'agent' AND p.email IS NOT NULL
              AND (CAST(:since AS timestamptz) IS NULL OR p._synced_at > CAST(:since AS timestamptz))
        ), linked AS (
            SELECT e.email, (SELECT p.id FROM core.participant p
                             WHERE p.kind = 'agent' AND p.deleted_at IS NULL AND p.email = e.email
                             ORDER BY p.id LIMIT 1) AS participant_id
            FROM touched e
        )
        UPDATE core.{table} t SET participant_id = l.participant_id, _synced_at = now()
        FROM linked l
        WHERE t.agent_email = l.email AND t.participant_id IS DISTINCT FROM l.participant_id
    """


def update_unified(engine: sa.Engine, since: datetime | None) -> dict[str, int]:
    """Upsert core.transaction and core.listing from the source rows synced after `since` (None: all of them),
    in one transaction. Returns the rows written per table and source, and the rows linked again."""
    written: dict[str, int] = {}
    with engine.begin() as conn:
        for table, sources in SOURCES.items():
            total = 0
            for source in sources:
                count = conn.execute(
                    sa.text(_upsert_sql(table, source)),
                    {"since": since, "integration": source.integration, "entity": source.source_entity},
                ).rowcount
                written[f"{table}:{source.integration}/{source.source_entity}"] = count
                total += count
            written[f"{table}_written"] = total
            written[f"{table}_relinked"] = conn.execute(sa.text(_relink_sql(table)), {"since": since}).rowcount
    return written
