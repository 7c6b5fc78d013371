"""Unified core.transaction and core.listing: what an incremental update costs after a small delta among 1M rows.

`defs/core/transactions.update_unified(engine, since)` reads only the source rows whose `_synced_at` is after
`since`, upserts them and writes nothing for a row whose unified values did not change; the asset passes the
previous update's start minus SINCE_OVERLAP (15 min) as `since`. This bench measures exactly that call.

A fresh database on the project's Postgres (embedded unless SYNC_DATABASE_URL says otherwise), migrated to head.
The source core tables are filled set-based (INSERT ... SELECT FROM generate_series, untimed) with BENCH_UNIFIED_ROWS
(1,000,000) rows across the three sources, by default:

- reZEN:    550,000 core.rezen_transactions + 50,000 core.rezen_listings (lifecycle states of defs/rezen/lifecycle,
            state names as reZEN spells them, `TEXAS`), 3,000 core.rezen_agents (the owner's email);
- SkySlope: 150,000 core.skyslope_sales + 50,000 core.skyslope_listings (SkySlope's statuses, some with price 0),
            3,000 core.skyslope_users (the agent's email);
- DotLoop:  200,000 core.dotloop_loops, a fifth of them LISTING_FOR_SALE/LEASE (core.listing), the rest offers
            (core.transaction), each with an agent and a client in core.dotloop_participants (400,000 rows);

plus one bridge.accounts row per source and BENCH_UNIFIED_PARTICIPANTS (200,000) core.participant rows (2,700 of the
3,000 agents, by the email the sources use; the rest are leads), realistic prices, street addresses in several
spellings (`St.`, `Street`, `Apt 4B`, a direction), cities/states/zips of the sandbox's CITIES, dates, about 0.5%
of source rows soft-deleted, and every `_synced_at` 1 to 31 days in the past. Then VACUUM ANALYZE, as autovacuum
would have done by the time the next update runs.

Timed, each a call of `update_unified` as the asset makes it:
1. the first update, since=None (everything);
2. an update with nothing changed, since = the first update's start - SINCE_OVERLAP;
3. BENCH_UNIFIED_ROUNDS (3) rounds: BENCH_UNIFIED_CHANGED (100) source rows, spread over the five source tables by
   size and different each round, get a new price and the next status and `_synced_at = now()` (untimed); then the
   update, since = the previous update's start - SINCE_OVERLAP. All updates run within 15 minutes of each other,
   so each round reads again what earlier rounds changed (the overlap) and writes only its own 100.
After the rounds (untimed): per source, the live source rows, the live unified rows, the live source rows with a
live unified row, and the unified rows whose status, source status or price differ from their source row: must be
equal, equal, equal and 0. Then another 100 rows change and EXPLAIN (ANALYZE, BUFFERS) of reZEN transactions'
upsert and of core.transaction's relink is printed (rolled back), with the scan each other source's upsert uses.

Knobs (environment): BENCH_UNIFIED_ROWS=1000000, BENCH_UNIFIED_PARTICIPANTS=200000, BENCH_UNIFIED_CHANGED=100,
BENCH_UNIFIED_ROUNDS=3, BENCH_UNIFIED_KEEP=1 (keep the bench database `bench_unified`).
"""

from __future__ import annotations

import json
import os
import platform
import random
import re
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROWS = int(os.environ.get("BENCH_UNIFIED_ROWS", "1000000"))
PARTICIPANTS = int(os.environ.get("BENCH_UNIFIED_PARTICIPANTS", "200000"))
CHANGED = int(os.environ.get("BENCH_UNIFIED_CHANGED", "100"))
ROUNDS = int(os.environ.get("BENCH_UNIFIED_ROUNDS", "3"))
KEEP = os.environ.get("BENCH_UNIFIED_KEEP") == "1"
DATABASE = "bench_unified"
SEED = 7
AGENTS = 3000

# Share of ROWS per source table; the DotLoop loops split into listings (LISTING_SHARE) and transactions.
SHARES = {
    "rezen_transactions": 0.55,
    "rezen_listings": 0.05,
    "skyslope_sales": 0.15,
    "skyslope_listings": 0.05,
    "dotloop_loops": 0.20,
}
DOTLOOP_LISTING_SHARE = 0.2
# Each source table's id prefix (source_id = prefix || n, n in 1..size); DotLoop's ids are numbers.
PREFIX = {
    "rezen_transactions": "rt-",
    "rezen_listings": "rl-",
    "skyslope_sales": "ss-",
    "skyslope_listings": "sl-",
    "dotloop_loops": "",
}
DOTLOOP_BASE = 40_000_000

# Next status of a changed row: a delta moves a deal on (the last one wraps round).
NEXT_STATE = {
    "rezen_transactions": ("lifecycle_state", ["NEW", "NEEDS_COMMISSION_VALIDATION", "COMMISSION_VALIDATED",
                                               "COMMISSION_DOCUMENT_GENERATED", "APPROVED_FOR_CLOSING", "CLOSED",
                                               "PAYMENT_ACCEPTED", "SETTLED", "TERMINATED"]),
    "rezen_listings": ("lifecycle_state", ["LISTING_ACTIVE", "LISTING_IN_CONTRACT", "LISTING_CLOSED", "EXPIRED",
                                           "TERMINATED"]),
    "skyslope_sales": ("status", ["Incomplete", "Active", "Pending", "Closed", "Canceled", "Archived"]),
    "skyslope_listings": ("status", ["Incomplete", "Active", "Pending", "Closed", "Expired", "Withdrawn",
                                     "Canceled"]),
    # A pre-offer/pre-listing/leased loop goes under contract (not in the cycle: position 0).
    "dotloop_loops": ("status", ["UNDER_CONTRACT", "SOLD", "ARCHIVED"]),
}  # fmt: skip
PRICE_COLUMN = {
    "rezen_transactions": "price",
    "rezen_listings": "price",
    "skyslope_sales": "sale_price",
    "skyslope_listings": "listing_price",
    "dotloop_loops": "price",
}


def _sizes(rows: int) -> dict[str, int]:
    sizes = {table: int(rows * share) for table, share in SHARES.items()}
    sizes["rezen_transactions"] += rows - sum(sizes.values())
    return sizes


# ----------------------------------------------------------------------------------------------
# database and data
# ----------------------------------------------------------------------------------------------


def _fresh_database(name: str) -> Any:
    from sync_pipelines.lib import db

    _drop_database(name)
    db.ensure_database(name)
    return db.server_url(name)


def _drop_database(name: str) -> None:
    from sync_pipelines.lib import db

    with db.raw_connection(db.server_url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _literal(value: str | None) -> str:
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


def _array(values: list[str] | tuple[str, ...]) -> str:
    return "ARRAY[" + ", ".join(_literal(v) for v in values) + "]::text[]"


def _pick(values: list[str] | tuple[str, ...], r: str) -> str:
    """SQL: one of `values`, chosen by the uniform [0, 1) expression `r` (repeat a value to weight it)."""
    return f"({_array(values)})[1 + floor({r} * {len(values)})::int]"


def _fill(url: Any, sizes: dict[str, int]) -> dict[str, Any]:
    """Accounts, agents, participants and the five source tables; returns the account ids per integration."""
    from sync_pipelines.lib import db
    from sync_pipelines.sandbox import gen, rezen

    cities = gen.CITIES
    city_rows = ", ".join(
        f"({i}, {_literal(city)}, {_literal(state)}, {_literal(rezen.STATE_NAMES.get(state, state))}, {_literal(z)})"
        for i, (city, state, z) in enumerate(cities)
    )
    streets = gen.STREET_NAMES
    # Suffixes as the sources spell them: abbreviated, with a period, or in full.
    kinds = ["St", "St.", "Street", "Ave", "Avenue", "Blvd", "Dr", "Drive", "Ln", "Rd", "Road", "Ct", "Way", "Pl"]
    accounts: dict[str, Any] = {}
    with db.raw_connection(url) as conn:
        conn.execute("SELECT setseed(0.7)")
        for integration in ("rezen", "skyslope", "dotloop"):
            accounts[integration] = conn.execute(
                "INSERT INTO bridge.accounts (integration, name, status) VALUES (%s, 'bench', 'active') RETURNING id",
                (integration,),
            ).fetchone()[0]  # type: ignore[index]
        conn.execute("CREATE SCHEMA bench")
        conn.execute("CREATE TABLE bench.city (i int PRIMARY KEY, city text, state text, state_name text, zip3 text)")
        conn.execute(f"INSERT INTO bench.city VALUES {city_rows}")
        # A random draw per row (r1..r10), the city, the street line and the past times every source uses.
        conn.execute(f"""
            CREATE FUNCTION bench.draws(n int) RETURNS TABLE (
                g int, r1 float8, r2 float8, r3 float8, r4 float8, r5 float8, r6 float8, r7 float8, r8 float8,
                r9 float8, r10 float8,
                city text, state text, state_name text, zip text, number text, street_name text, unit text,
                direction text, created timestamptz, synced timestamptz, agent int)
            LANGUAGE sql VOLATILE AS $fn$
              SELECT x.g, x.r1, x.r2, x.r3, x.r4, x.r5, x.r6, x.r7, x.r8, x.r9, x.r10,
                     c.city, c.state, c.state_name, c.zip3 || lpad(floor(x.r2 * 100)::int::text, 2, '0'),
                     (1 + floor(x.r3 * 9899)::int)::text,
                     {_pick(streets, "x.r4")} || ' ' || {_pick(kinds, "x.r5")},
                     CASE WHEN x.r6 < 0.05 THEN 'Apt ' || (1 + floor(x.r7 * 40)::int) || 'B'
                          WHEN x.r6 < 0.10 THEN 'Suite ' || (100 + floor(x.r7 * 400)::int) END,
                     {_pick(["N", "S", "E", "W"], "x.r7")},
                     now() - interval '31 days' - x.r8 * interval '5 years',
                     now() - interval '1 day' - x.r5 * interval '30 days',
                     1 + floor(x.r10 * {AGENTS})::int
              FROM (SELECT g, random() AS r1, random() AS r2, random() AS r3, random() AS r4, random() AS r5,
                           random() AS r6, random() AS r7, random() AS r8, random() AS r9, random() AS r10
                    FROM generate_series(1, n) g) x
              JOIN bench.city c ON c.i = floor(x.r9 * {len(cities)})::int
            $fn$
        """)  # fmt: skip
        price = "round((120000 + power(d.r2, 2) * 1880000)::numeric, -3)"
        email = "'agent' || a.n || '@brokerage.example'"
        # reZEN agents: the owner's email (mixed case, as reZEN returns it); SkySlope users: the agent's record.
        conn.execute(f"""
            INSERT INTO core.rezen_agents (account_id, source_id, first_name, last_name, display_name, email,
                                           status, _row_hash, _synced_at)
            SELECT %(a)s, 'agent-' || n, 'Agent', 'No' || n, 'Agent No' || n, 'Agent' || n || '@Brokerage.example',
                   'ACTIVE', md5(n::text), now() - interval '40 days'
            FROM generate_series(1, {AGENTS}) n
        """, {"a": accounts["rezen"]})  # fmt: skip
        conn.execute(f"""
            INSERT INTO core.skyslope_users (account_id, source_id, email, first_name, last_name, user_type,
                                             is_active, _row_hash, _synced_at)
            SELECT %(a)s, md5('user' || n)::uuid::text, 'agent' || n || '@brokerage.example', 'Agent', 'No' || n,
                   'Agent', true, md5(n::text), now() - interval '40 days'
            FROM generate_series(1, {AGENTS}) n
        """, {"a": accounts["skyslope"]})  # fmt: skip
        # core.participant: the agents (90% of them; the rest are not in core.participant yet) and leads.
        conn.execute(f"""
            INSERT INTO core.participant (integration, account_id, source_entity, source_id, kind, name, email,
                                          _synced_at)
            SELECT 'rezen', %(a)s, 'agents', 'agent-' || n, 'agent', 'Agent No' || n,
                   'agent' || n || '@brokerage.example', now() - interval '40 days'
            FROM generate_series(1, {int(AGENTS * 0.9)}) n
            UNION ALL
            SELECT 'rezen', %(a)s, 'leads', 'lead-' || n, 'lead', 'Lead No' || n, 'lead' || n || '@mail.example',
                   now() - interval '1 day' - random() * interval '300 days'
            FROM generate_series(1, {max(PARTICIPANTS - int(AGENTS * 0.9), 0)}) n
        """, {"a": accounts["rezen"]})  # fmt: skip

        tx_states = [
            "NEW", "NEEDS_COMMISSION_VALIDATION", "COMMISSION_VALIDATED", "COMMISSION_DOCUMENT_GENERATED",
            "APPROVED_FOR_CLOSING", *["CLOSED"] * 2, "PAYMENT_ACCEPTED", *["SETTLED"] * 10, "TERMINATED",
        ]  # fmt: skip
        conn.execute(f"""
            INSERT INTO core.rezen_transactions (
                account_id, source_id, period_key, created_at_source, code, transaction_type, lifecycle_state,
                is_listing, owner_agent_source_id, price, currency, gross_commission, gross_commission_pct,
                representation_type, mls_number, street, street2, city, state, zip, country,
                contract_acceptance_date, closing_date_estimated, closed_at, _source_updated_at, _row_hash,
                _synced_at, deleted_at)
            SELECT %(a)s, 'rt-' || g, to_char(created, 'YYYY-MM'), created, 'T-' || g,
                   {_pick(["SALE"] * 8 + ["LEASE", "REFERRAL"], "d.r6")}, lstate, false, 'agent-' || agent,
                   {price}, 'USD', round({price} * 0.03, 2), 3.000, {_pick(["BUYER", "SELLER", "DUAL"], "d.r7")},
                   CASE WHEN d.r6 < 0.9 THEN 'MLS' || (1000000 + g) END,
                   number || ' ' || street_name, unit, city, state_name, zip,
                   'UNITED_STATES', created::date + 5, created::date + 45,
                   CASE WHEN lstate IN ('CLOSED', 'PAYMENT_ACCEPTED', 'SETTLED') THEN created::date + 40 END,
                   synced, md5(g::text), synced, CASE WHEN d.r8 < 0.005 THEN synced END
            FROM (SELECT *, {_pick(tx_states, "r1")} AS lstate FROM bench.draws({sizes["rezen_transactions"]})) d
        """, {"a": accounts["rezen"]})  # fmt: skip
        listing_states = ["LISTING_ACTIVE", "LISTING_ACTIVE", "LISTING_IN_CONTRACT", *["LISTING_CLOSED"] * 5,
                          "EXPIRED", "TERMINATED"]  # fmt: skip
        conn.execute(f"""
            INSERT INTO core.rezen_listings (
                account_id, source_id, period_key, created_at_source, code, transaction_type, lifecycle_state,
                owner_agent_source_id, price, currency, mls_number, street, street2, city, state, zip, country,
                listing_date, listing_expiration_date, _source_updated_at, _row_hash, _synced_at, deleted_at)
            SELECT %(a)s, 'rl-' || g, to_char(created, 'YYYY-MM'), created, 'L-' || g, 'SALE',
                   {_pick(listing_states, "d.r1")}, 'agent-' || agent, {price}, 'USD', 'MLS' || (3000000 + g),
                   number || ' ' || street_name, unit, city, state_name, zip, 'UNITED_STATES',
                   created::date, created::date + 180, synced, md5(g::text), synced,
                   CASE WHEN d.r8 < 0.005 THEN synced END
            FROM bench.draws({sizes["rezen_listings"]}) d
        """, {"a": accounts["rezen"]})  # fmt: skip

        sale_statuses = ["Incomplete", "Active", "Pending", "Pending", *["Closed"] * 8, "Canceled", "Archived"]
        sky_common = """
            md5('user' || agent)::uuid::text, md5('user' || agent)::uuid::text, {status}, 'Stage', 1, 'Standard',
            CASE WHEN d.r6 < 0.8 THEN 'MLS' || (5000000 + g) ELSE '' END, 1, md5('office')::uuid::text, 'Zillow',
            'file' || g || '@skyslope.example', 'agent' || agent || '@brokerage.example', 'Agent', 'No' || agent,
            number, CASE WHEN d.r7 < 0.3 THEN direction END, street_name, unit, city, state, zip, 'County', 1990, 2100
        """
        file_columns = """
            agent_guid, created_by_guid, status, stage, stage_id, checklist_type, mls_number, office_id, office_guid,
            lead_source, file_email, agent_email, agent_first_name, agent_last_name, street_number, direction,
            street_name, unit, city, state, zip, county, year_built, area_sqft
        """
        conn.execute(f"""
            INSERT INTO core.skyslope_sales (
                account_id, source_id, period_key, created_at_source, {file_columns}, listing_guid, status_id,
                deal_type, escrow_number, sale_price, listing_price, commission_amount, commission_percent,
                is_office_lead, contract_acceptance_date, escrow_closing_date, actual_closing_date,
                _source_updated_at, _row_hash, _synced_at, deleted_at)
            SELECT %(a)s, 'ss-' || g, to_char(created, 'YYYY-MM'), created,
                   {sky_common.format(status=_pick(sale_statuses, "d.r1"))}, NULL, 1,
                   {_pick(["Purchase / Tenant", "Purchase / Tenant", "Listing / Landlord", "Dual Agent"], "d.r6")},
                   'E-' || g, CASE WHEN d.r7 < 0.03 THEN 0 ELSE {price} END, {price}, round({price} * 0.03, 2),
                   3.000, false, created::date + 5, created::date + 45,
                   CASE WHEN d.r1 >= 4.0 / 14 AND d.r1 < 12.0 / 14 THEN created::date + 44 END,
                   synced, md5(g::text), synced, CASE WHEN d.r8 < 0.005 THEN synced END
            FROM bench.draws({sizes["skyslope_sales"]}) d
        """, {"a": accounts["skyslope"]})  # fmt: skip
        sky_listing_statuses = ["Incomplete", "Active", "Active", "Pending", *["Closed"] * 4, "Expired", "Withdrawn",
                                "Canceled"]  # fmt: skip
        conn.execute(f"""
            INSERT INTO core.skyslope_listings (
                account_id, source_id, period_key, created_at_source, {file_columns}, listing_type, listing_price,
                listing_commission_percent, buyer_commission_percent, listing_date, expiration_date,
                _source_updated_at, _row_hash, _synced_at, deleted_at)
            SELECT %(a)s, 'sl-' || g, to_char(created, 'YYYY-MM'), created,
                   {sky_common.format(status=_pick(sky_listing_statuses, "d.r1"))}, 'Standard',
                   CASE WHEN d.r7 < 0.03 THEN 0 ELSE {price} END, 3.000, 2.500, created::date, created::date + 180,
                   synced, md5(g::text), synced, CASE WHEN d.r8 < 0.005 THEN synced END
            FROM bench.draws({sizes["skyslope_listings"]}) d
        """, {"a": accounts["skyslope"]})  # fmt: skip

        # DotLoop: a fifth listings; the status drawn from the kind's own (sandbox dotloop.TRANSACTION_STATUSES).
        kinds_sql = _pick(
            ["PURCHASE_OFFER"] * 12
            + ["LEASE_OFFER", "LEASE_OFFER", "REAL_ESTATE_OTHER", "REAL_ESTATE_OTHER"]
            + ["LISTING_FOR_SALE"] * 3
            + ["LISTING_FOR_LEASE"],
            "d.r6",
        )  # 16 of 20 offers: DOTLOOP_LISTING_SHARE = 0.2
        conn.execute(f"""
            INSERT INTO core.dotloop_loops (
                account_id, source_id, period_key, created_at_source, profile_source_id, name, status,
                transaction_type, total_task_count, completed_task_count, loop_url, street_number, street_name,
                unit_number, city, state, zip, county, country, mls_number, price, contract_agreement_date,
                closing_date, listing_date, expiration_date, transaction_number, _source_updated_at, _row_hash,
                _synced_at, deleted_at)
            SELECT %(a)s, ({DOTLOOP_BASE} + g)::text, to_char(created, 'YYYY-MM'), created, '100',
                   number || ' ' || street_name || ', ' || city, status, kind, 20, floor(d.r7 * 20)::int,
                   'https://www.dotloop.com/loop/' || g, number, street_name, coalesce(unit, ''), city,
                   CASE WHEN d.r4 < 0.5 THEN state ELSE initcap(replace(state_name, '_', ' ')) END, zip, 'County',
                   'US', CASE WHEN d.r5 < 0.7 THEN 'MLS' || (7000000 + g) ELSE '' END, {price},
                   CASE WHEN kind NOT LIKE 'LISTING%%' THEN created::date + 5 END, created::date + 45,
                   CASE WHEN kind LIKE 'LISTING%%' THEN created::date END,
                   CASE WHEN kind LIKE 'LISTING%%' THEN created::date + 180 END,
                   'TX-' || g, synced, md5(g::text), synced, CASE WHEN d.r8 < 0.005 THEN synced END
            FROM (SELECT d.*, k.kind,
                         CASE k.kind
                           WHEN 'PURCHASE_OFFER' THEN {_pick(["PRE_OFFER", "UNDER_CONTRACT", "SOLD", "SOLD", "SOLD",
                                                             "SOLD", "ARCHIVED"], "d.r1")}
                           WHEN 'REAL_ESTATE_OTHER' THEN {_pick(["PRE_OFFER", "UNDER_CONTRACT", "SOLD", "ARCHIVED"],
                                                               "d.r1")}
                           WHEN 'LEASE_OFFER' THEN {_pick(["PRE_OFFER", "UNDER_CONTRACT", "LEASED", "LEASED",
                                                          "ARCHIVED"], "d.r1")}
                           WHEN 'LISTING_FOR_SALE' THEN {_pick(["PRE_LISTING", "PRIVATE_LISTING", "ACTIVE_LISTING",
                                                               "UNDER_CONTRACT", "SOLD", "SOLD", "ARCHIVED"], "d.r1")}
                           ELSE {_pick(["PRE_LISTING", "ACTIVE_LISTING", "LEASED", "ARCHIVED"], "d.r1")}
                         END AS status
                  FROM bench.draws({sizes["dotloop_loops"]}) d
                  CROSS JOIN LATERAL (SELECT {kinds_sql} AS kind) k) d
        """, {"a": accounts["dotloop"]})  # fmt: skip
        # Each loop's agent (in the role of its side) and its client.
        conn.execute(f"""
            INSERT INTO core.dotloop_participants (account_id, source_id, loop_source_id, full_name, email, role,
                                                   _row_hash, _synced_at)
            SELECT l.account_id, (2 * (l.source_id::bigint - {DOTLOOP_BASE}) + p.k)::text, l.source_id,
                   CASE p.k WHEN 0 THEN 'Agent No' || a.n ELSE 'Client No' || l.source_id END,
                   CASE p.k WHEN 0 THEN {email} ELSE 'client' || l.source_id || '@mail.example' END,
                   CASE WHEN p.k = 0 AND l.transaction_type LIKE 'LISTING%' THEN 'LISTING_AGENT'
                        WHEN p.k = 0 THEN 'BUYING_AGENT'
                        WHEN l.transaction_type LIKE 'LISTING%' THEN 'SELLER' ELSE 'BUYER' END,
                   md5(l.source_id || p.k), l._synced_at
            FROM core.dotloop_loops l
            CROSS JOIN (VALUES (0), (1)) p(k)
            CROSS JOIN LATERAL (SELECT 1 + (hashtext(l.source_id) & 2147483647) % {AGENTS} AS n) a
        """)  # fmt: skip
        conn.execute("DROP SCHEMA bench CASCADE")
        conn.commit()
    with db.raw_connection(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return accounts


# ----------------------------------------------------------------------------------------------
# measurements
# ----------------------------------------------------------------------------------------------


@dataclass
class Update:
    label: str
    since: datetime | None
    started: datetime
    seconds: float
    read: int  # source rows with _synced_at after `since` (counted afterwards, untimed)
    written: dict[str, int]

    @property
    def transactions(self) -> int:
        return self.written["transaction_written"]

    @property
    def listings(self) -> int:
        return self.written["listing_written"]

    @property
    def relinked(self) -> int:
        return self.written["transaction_relinked"] + self.written["listing_relinked"]


def _source_tables() -> list[str]:
    return list(SHARES)


def _read(engine: Any, since: datetime | None) -> int:
    import sqlalchemy as sa

    with engine.connect() as conn:
        return sum(
            conn.execute(
                sa.text(
                    f"SELECT count(*) FROM core.{t} WHERE CAST(:since AS timestamptz) IS NULL OR _synced_at > :since"
                ),
                {"since": since},
            ).scalar_one()
            for t in _source_tables()
        )


def _update(engine: Any, label: str, since: datetime | None) -> Update:
    from sync_pipelines.defs.core.transactions import update_unified

    started = datetime.now(UTC)  # what the asset records as the next update's starting point
    clock = time.perf_counter()
    written = update_unified(engine, since)
    seconds = time.perf_counter() - clock
    update = Update(label, since, started, seconds, _read(engine, since), written)
    print(f"  {label:<24} {seconds:7.3f} s  read {update.read:>9,}  written transaction {update.transactions:>7,} "
          f"listing {update.listings:>7,}  relinked {update.relinked}", flush=True)  # fmt: skip
    return update


def _change(engine: Any, sizes: dict[str, int], changed: int, round_no: int, used: dict[str, set[int]]) -> int:
    """`changed` source rows, spread over the source tables by size and never one changed before: a new price,
    the next status, a new source update time and hash, `_synced_at = now()` (as the load path stamps a change)."""
    import sqlalchemy as sa

    rng = random.Random(SEED * 1000 + round_no)
    total = sum(sizes.values())
    counts = {t: round(changed * n / total) for t, n in sizes.items()}
    counts["rezen_transactions"] += changed - sum(counts.values())
    done = 0
    with engine.begin() as conn:
        for table, count in counts.items():
            picks: list[int] = []
            while len(picks) < count:
                n = rng.randint(1, sizes[table])
                if n not in used[table]:
                    used[table].add(n)
                    picks.append(n)
            ids = [str(DOTLOOP_BASE + n) if table == "dotloop_loops" else f"{PREFIX[table]}{n}" for n in picks]
            column, cycle = NEXT_STATE[table]
            price = PRICE_COLUMN[table]
            done += conn.execute(
                sa.text(f"""
                    UPDATE core.{table}
                    SET {price} = coalesce(nullif({price}, 0), 250000) + 1000,
                        {column} = (CAST(:cycle AS text[]))[
                            coalesce(array_position(CAST(:cycle AS text[]), {column}), 0)
                            % cardinality(CAST(:cycle AS text[])) + 1],
                        _source_updated_at = now(), _row_hash = md5(random()::text), _synced_at = now()
                    WHERE account_id = (SELECT id FROM bridge.accounts WHERE integration = :integration)
                      AND source_id = ANY(:ids)
                """),
                {"cycle": cycle, "ids": ids, "integration": table.split("_")[0]},
            ).rowcount
    return done


def _verify(engine: Any) -> list[dict[str, Any]]:
    """Per unified source: live source rows, live unified rows, live source rows with a live unified row, and
    unified rows whose status, source status or price differ from what their source row gives now."""
    import sqlalchemy as sa

    from sync_pipelines.defs.core import transactions as unified

    rows = []
    with engine.connect() as conn:
        for table, sources in unified.SOURCES.items():
            for source in sources:
                price = source.columns.get("price", "NULL")
                row = conn.execute(
                    sa.text(f"""
                        SELECT count(*) FILTER (WHERE s.deleted_at IS NULL),
                               count(*) FILTER (WHERE s.deleted_at IS NULL AND t.id IS NOT NULL
                                                AND t.deleted_at IS NULL),
                               count(*) FILTER (WHERE t.id IS NULL OR (t.deleted_at IS NULL) <> (s.deleted_at IS NULL)
                                                OR t.source_status IS DISTINCT FROM {source.state}
                                                OR t.status <> coalesce(CAST(:statuses AS jsonb) ->> {source.state},
                                                                        'unknown')
                                                OR t.price IS DISTINCT FROM {price})
                        FROM {source.table} s
                        LEFT JOIN core.{table} t
                          ON t.integration = :integration AND t.source_entity = :entity
                         AND t.account_id = s.account_id AND t.source_id = s.source_id
                    """),
                    {"integration": source.integration, "entity": source.source_entity,
                     "statuses": json.dumps(dict(source.statuses))},
                ).one()  # fmt: skip
                live_unified = conn.execute(
                    sa.text(f"SELECT count(*) FROM core.{table} WHERE integration = :i AND source_entity = :e "
                            "AND deleted_at IS NULL"),
                    {"i": source.integration, "e": source.source_entity},
                ).scalar_one()  # fmt: skip
                rows.append({
                    "table": f"core.{table}", "source": f"{source.integration}/{source.source_entity}",
                    "live_source": int(row[0]), "live_unified": int(live_unified), "matched": int(row[1]),
                    "differ": int(row[2]),
                })  # fmt: skip
    return rows


def _explain(engine: Any, since: datetime) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS) of each source's upsert and of core.transaction's relink, in one transaction
    that is rolled back; the full plan of reZEN transactions' upsert and the relink, the scan line of the rest."""
    import sqlalchemy as sa

    from sync_pipelines.defs.core import transactions as unified

    plans: dict[str, Any] = {"full": {}, "scans": {}}
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            for table, sources in unified.SOURCES.items():
                for source in sources:
                    lines = conn.execute(
                        sa.text("EXPLAIN (ANALYZE, BUFFERS) " + unified._upsert_sql(table, source)),
                        {"since": since, "integration": source.integration, "entity": source.source_entity},
                    ).scalars().all()  # fmt: skip
                    key = f"core.{table} <- {source.integration}/{source.source_entity}"
                    if table == "transaction" and source.integration == "rezen":
                        plans["full"][f"upsert {key}"] = lines
                    source_table = "dotloop_loops" if source.integration == "dotloop" else source.table.split(".")[-1]
                    scan = [ln.strip() for ln in lines if source_table in ln and "Scan" in ln]
                    plans["scans"][key] = (
                        scan[0] if scan else "?",
                        next((ln.strip() for ln in lines if "Execution Time" in ln), "?"),
                    )
            plans["full"]["relink core.transaction"] = conn.execute(
                sa.text("EXPLAIN (ANALYZE, BUFFERS) " + unified._relink_sql("transaction")), {"since": since}
            ).scalars().all()  # fmt: skip
        finally:
            trans.rollback()
    return plans


def _generic_scan(engine: Any) -> str:
    """The scan a generic plan (a prepared statement's, after psycopg prepares it and Postgres stops re-planning
    per value) would use for reZEN transactions' upsert: EXPLAIN (GENERIC_PLAN), Postgres 16+."""
    from sync_pipelines.defs.core import transactions as unified

    source = unified.TRANSACTION_SOURCES[0]
    text = (unified._upsert_sql("transaction", source).replace(":since", "$1").replace(":integration", "$2")
            .replace(":entity", "$3"))  # fmt: skip
    try:
        with engine.connect() as conn:
            raw = conn.connection.driver_connection
            lines = [r[0] for r in raw.execute("EXPLAIN (GENERIC_PLAN) " + text).fetchall()]
            conn.rollback()
    except Exception as exc:  # informative only
        return f"not available ({type(exc).__name__})"
    scan = [ln.strip() for ln in lines if "rezen_transactions" in ln and "Scan" in ln]
    return scan[0] if scan else "?"


# ----------------------------------------------------------------------------------------------
# report
# ----------------------------------------------------------------------------------------------


def _machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        total_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
        mem = f"{total_kb / 2**20:.1f} GiB"
    except (OSError, AttributeError):
        pass
    return f"{platform.node()}: {os.cpu_count()} cores ({cpu}), {mem} RAM, Python {platform.python_version()}"


def _postgres() -> str:
    from sync_pipelines.lib import db

    with db.raw_connection(db.server_url("postgres")) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    return f"Postgres {version} ({'embedded' if db.is_embedded() else 'SYNC_DATABASE_URL'})"


def _fmt_since(since: datetime | None) -> str:
    return "None (everything)" if since is None else "previous start - 15 min"


def main() -> None:
    from sync_pipelines.defs.core.transactions import SINCE_OVERLAP
    from sync_pipelines.lib import db, migrations

    began = time.perf_counter()
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {_machine()}")
    print(_postgres())
    sizes = _sizes(ROWS)
    print(f"source rows: {sum(sizes.values()):,} ({', '.join(f'{t} {n:,}' for t, n in sizes.items())}); "
          f"{PARTICIPANTS:,} core.participant rows; {CHANGED} rows changed per round, {ROUNDS} rounds")  # fmt: skip
    url = _fresh_database(DATABASE)
    engine = None
    try:
        migrations.upgrade(url)
        engine = db.get_engine(url)
        clock = time.perf_counter()
        _fill(url, sizes)
        print(f"  filled and analyzed in {time.perf_counter() - clock:.1f} s (untimed setup)", flush=True)

        updates = [_update(engine, "first (since=None)", None)]
        with db.raw_connection(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE core.transaction")  # what autovacuum does after ~1M inserted rows
            conn.execute("VACUUM ANALYZE core.listing")
        updates.append(_update(engine, "nothing changed", updates[-1].started - SINCE_OVERLAP))
        used: dict[str, set[int]] = {t: set() for t in sizes}
        changed_per_round = []
        for round_no in range(1, ROUNDS + 1):
            changed_per_round.append(_change(engine, sizes, CHANGED, round_no, used))
            updates.append(_update(engine, f"delta round {round_no}", updates[-1].started - SINCE_OVERLAP))
        checks = _verify(engine)
        _change(engine, sizes, CHANGED, ROUNDS + 1, used)
        plans = _explain(engine, updates[-1].started - SINCE_OVERLAP)
        generic = _generic_scan(engine)
    finally:
        if engine is not None:
            engine.dispose()
        if not KEEP:
            _drop_database(DATABASE)

    deltas = updates[2:]
    print()
    print("| update | since | source rows read | written: transaction | written: listing | relinked | seconds |")
    print("|---|---|--:|--:|--:|--:|--:|")
    for u in updates:
        print(f"| {u.label} | {_fmt_since(u.since)} | {u.read:,} | {u.transactions:,} | {u.listings:,} "
              f"| {u.relinked} | {u.seconds:.3f} |")  # fmt: skip
    if deltas:
        median = statistics.median(d.seconds for d in deltas)
        print(f"| **delta, median of {len(deltas)}** | | | | | | **{median:.3f}** |")
        print()
        print(f"rows changed per round: {changed_per_round}; delta update seconds: "
              f"{', '.join(f'{d.seconds:.3f}' for d in deltas)} (median {median:.3f})")  # fmt: skip
    first_update = updates[0]
    print(f"first update: {first_update.seconds:.1f} s for {first_update.read:,} source rows "
          f"({first_update.read / first_update.seconds:,.0f} rows/s)")  # fmt: skip
    print()
    print("| unified table | source | live source rows | live unified rows | live source rows with a live unified "
          "row | rows differing from source |")  # fmt: skip
    print("|---|---|--:|--:|--:|--:|")
    ok = True
    for c in checks:
        ok &= c["live_source"] == c["matched"] and c["differ"] == 0
        print(f"| {c['table']} | {c['source']} | {c['live_source']:,} | {c['live_unified']:,} | {c['matched']:,} "
              f"| {c['differ']} |")  # fmt: skip
    print(f"one live unified row per live source row, values equal: {'yes' if ok else 'NO'} (DotLoop's loops are "
          "split by kind: offers against core.transaction, listings against core.listing)")  # fmt: skip
    print()
    print("scan each upsert uses for a delta (EXPLAIN ANALYZE, rolled back):")
    for key, (scan, took) in plans["scans"].items():
        print(f"  {key}: {scan}  [{took}]")
    print(f"  a generic plan of reZEN transactions' upsert would use: {generic}")
    for key, lines in plans["full"].items():
        print()
        print(f"EXPLAIN (ANALYZE, BUFFERS) {key}:")
        print("```")
        print("\n".join(lines))
        print("```")
    print(f"\nwhole run: {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
