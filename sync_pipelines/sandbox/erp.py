"""The sandbox ERP: a Postgres database shaped like Oracle IFS's `ifsapp` schema, for the keyset sync.

IFS stamps every row with ROWVERSION and bumps it on each change; the sync reads each table with
`WHERE rowversion > :cursor ORDER BY rowversion LIMIT :n`. Here one global sequence feeds every table, so
rowversions are unique and increase across tables, and a BEFORE UPDATE trigger bumps them.

Everything is a pure function of (seed, row index): values come from `hashint8extended(index, key)`, a
hash Postgres keeps stable across releases because hash partitioning depends on it, with `key` derived
from the seed in Python. Generation is set-based (`INSERT ... SELECT ... FROM generate_series`), so the
same seed gives the same rows at 10 rows or 10 million, and a million rows load in seconds.

docs/integrations/erp.md describes the simulation and its assumptions.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg
from sqlalchemy.engine import URL, make_url

from sync_pipelines.defs.erp import source
from sync_pipelines.defs.erp.source import ERP_URL_ENV, erp_url
from sync_pipelines.lib import db

SCHEMA = "ifsapp"
SEQUENCE = f"{SCHEMA}.rowversion_seq"

# The same five-year window as the SaaS simulators (sandbox.gen.HISTORY_*), so the sources line up.
HISTORY_START = datetime(2021, 11, 1, tzinfo=UTC)
HISTORY_END = datetime(2026, 11, 1, tzinfo=UTC)
_START_EPOCH = int(HISTORY_START.timestamp())
_SPAN = int((HISTORY_END - HISTORY_START).total_seconds())
_DAY = 86400

# Order matters: it is the tie-break of the generated rowversion order, parents before children.
TABLES: tuple[str, ...] = (
    "customer_info",
    "customer_order",
    "customer_order_line",
    "inventory_transaction_hist",
)
PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "customer_info": ("customer_id",),
    "customer_order": ("order_no",),
    "customer_order_line": ("order_no", "line_no", "rel_no"),
    "inventory_transaction_hist": ("transaction_id",),
}
# Share of `scale` per table, in percent; the order lines take what is left so the total is exact.
SPLIT_PERCENT: dict[str, int] = {
    "customer_info": 2,
    "customer_order": 18,
    "customer_order_line": 50,
    "inventory_transaction_hist": 30,
}
ORDER_STATES = ("Planned", "Released", "Reserved", "Delivered", "Invoiced", "Cancelled")

# Identifiers are fixed-width so text order is number order and max(pk) finds the newest.
_CUSTOMER_DIGITS = 7
_ORDER_DIGITS = 8
_PARTS = 2000

# (ISO country, currency, legal-form suffix, weight): a Nordic manufacturer selling mostly at home.
COUNTRIES: tuple[tuple[str, str, str, int], ...] = (
    ("SE", "SEK", "AB", 30),
    ("NO", "NOK", "AS", 12),
    ("FI", "EUR", "Oy", 10),
    ("DK", "DKK", "A/S", 10),
    ("DE", "EUR", "GmbH", 12),
    ("GB", "GBP", "Ltd", 8),
    ("NL", "EUR", "B.V.", 5),
    ("PL", "PLN", "Sp. z o.o.", 5),
    ("FR", "EUR", "SA", 4),
    ("US", "USD", "Inc.", 4),
)
# IFS "contract" is the site that owns the order or the stock.
SITES: tuple[tuple[str, int], ...] = (("SE01", 45), ("SE02", 20), ("NO01", 12), ("FI01", 12), ("DE01", 11))
NAME_PREFIXES = (
    "Nordic", "Atlas", "Baltic", "Summit", "Pioneer", "Crown", "Delta", "Granite", "Harbor", "Iron",
    "Maple", "Northern", "Polar", "Royal", "Silver", "Union", "Vector", "Western", "Alpine", "Coastal",
    "Fjord", "Aurora", "Viking", "Hansa", "Scandic", "Lakeside", "Eastern", "Central", "Meridian", "Orion",
    "Falcon", "Birch", "Copper", "Evergreen", "Frontier", "Keystone", "Oak", "Pinnacle", "Stellar", "Tundra",
)  # fmt: skip
NAME_CORES = (
    "Steel", "Logistics", "Machinery", "Foods", "Timber", "Energy", "Pharma", "Textiles", "Marine",
    "Electronics", "Packaging", "Plastics", "Automotive", "Chemicals", "Construction", "Paper", "Tools",
    "Hydraulics", "Instruments", "Components", "Mining", "Robotics", "Agri", "Fasteners", "Pumps",
    "Bearings", "Cables", "Coatings", "Optics", "Freight",
)  # fmt: skip
NAME_TAILS = ("", "", "", " Group", " Industries", " Trading", " Nordic", " International", " & Co")
PART_ADJECTIVES = (
    "Steel", "Brass", "Galvanised", "Stainless", "Heavy-duty", "Compact", "Hydraulic", "Pneumatic",
    "Threaded", "Flanged", "Insulated", "Reinforced", "Precision", "Industrial", "Sealed", "Modular",
    "Aluminium", "Coated", "Welded", "Spring-loaded",
)  # fmt: skip
PART_NOUNS = (
    "Bracket", "Valve", "Bearing", "Gasket", "Coupling", "Flange", "Hinge", "Bolt Kit", "Pump Housing",
    "Shaft", "Gear", "Sprocket", "Filter", "Hose", "Clamp", "Seal Ring", "Motor Mount", "Bushing",
    "Pulley", "Nozzle", "Actuator", "Manifold", "Sensor", "Cable Gland", "Cover Plate",
)  # fmt: skip
PART_SIZES = ("10 mm", "16 mm", "25 mm", "40 mm", "63 mm", "DN50", "DN80", "DN100")
# IFS inventory transaction codes with their share of the history (percent).
TRANSACTION_CODES: tuple[tuple[str, int], ...] = (
    ("OESHIP", 50),  # customer order delivery: the only code that carries an order_no
    ("ARRIVAL", 25),  # purchase order receipt
    ("NREC", 5),  # non-order receipt
    ("NISS", 5),  # non-order issue
    ("COUNT-IN", 5),
    ("COUNT-OUT", 5),
    ("INVM-IN", 5),  # move between locations
)

ConnOrUrl = psycopg.Connection | URL | str


# ----------------------------------------------------------------------------------------------
# URLs and connections
# ----------------------------------------------------------------------------------------------


def create_database(name: str | None = None) -> URL:
    """Create the ERP database (default: the one `erp_url()` names) if missing, with the ERP schema in it."""
    if name is None:
        target = erp_url()
        if os.environ.get(ERP_URL_ENV, "").strip():
            create_schema(target)  # a server we were pointed at: use it as it is
            return target
        name = target.database
    db.ensure_database(name)
    url = db.server_url(name)
    create_schema(url)
    return url


@contextmanager
def _connect(conn_or_url: ConnOrUrl) -> Iterator[psycopg.Connection]:
    # A caller's connection stays theirs: we work inside it (conn.transaction() nests as a savepoint when
    # they already have a transaction open) and never close it.
    if isinstance(conn_or_url, psycopg.Connection):
        yield conn_or_url
        return
    url = make_url(conn_or_url) if isinstance(conn_or_url, str) else conn_or_url
    with psycopg.connect(db.libpq_uri(url), connect_timeout=db.CONNECT_TIMEOUT_SECONDS) as conn:
        yield conn


# ----------------------------------------------------------------------------------------------
# Schema
# ----------------------------------------------------------------------------------------------

_DDL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE SEQUENCE IF NOT EXISTS {SEQUENCE} AS bigint;

CREATE TABLE IF NOT EXISTS {SCHEMA}.customer_info (
    customer_id     text PRIMARY KEY,
    name            text NOT NULL,
    association_no  text,
    country         text NOT NULL,
    creation_date   timestamptz NOT NULL,
    credit_limit    numeric(14,2),
    rowversion      bigint NOT NULL DEFAULT nextval('{SEQUENCE}')
);

-- customer_no has no foreign key on purpose: an ERP extract can hand over a child before its parent.
CREATE TABLE IF NOT EXISTS {SCHEMA}.customer_order (
    order_no              text PRIMARY KEY,
    customer_no           text NOT NULL,
    contract              text NOT NULL,
    order_date            timestamptz NOT NULL,
    wanted_delivery_date  timestamptz,
    currency_code         text NOT NULL,
    state                 text NOT NULL,
    total_amount          numeric(14,2) NOT NULL DEFAULT 0,
    rowversion            bigint NOT NULL DEFAULT nextval('{SEQUENCE}')
);

CREATE TABLE IF NOT EXISTS {SCHEMA}.customer_order_line (
    order_no         text NOT NULL,
    line_no          integer NOT NULL,
    rel_no           text NOT NULL,
    catalog_no       text NOT NULL,
    description      text,
    buy_qty_due      numeric NOT NULL,
    sale_unit_price  numeric(14,2),
    state            text NOT NULL,
    rowversion       bigint NOT NULL DEFAULT nextval('{SEQUENCE}'),
    PRIMARY KEY (order_no, line_no, rel_no)
);

CREATE TABLE IF NOT EXISTS {SCHEMA}.inventory_transaction_hist (
    transaction_id    bigint PRIMARY KEY,
    part_no           text NOT NULL,
    contract          text NOT NULL,
    transaction_code  text NOT NULL,
    quantity          numeric NOT NULL,
    cost              numeric(14,4),
    date_created      timestamptz NOT NULL,
    order_no          text,
    rowversion        bigint NOT NULL DEFAULT nextval('{SEQUENCE}')
);

CREATE OR REPLACE FUNCTION {SCHEMA}.bump_rowversion() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    -- As in IFS, any update moves the row to the end of the change order, even one that changes nothing.
    NEW.rowversion := nextval('{SEQUENCE}');
    RETURN NEW;
END
$fn$;
"""


def _table_ddl(table: str) -> str:
    return (
        f"CREATE INDEX IF NOT EXISTS {table}_rowversion_ix ON {SCHEMA}.{table} (rowversion);\n"
        f"CREATE OR REPLACE TRIGGER {table}_rowversion BEFORE UPDATE ON {SCHEMA}.{table} "
        f"FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.bump_rowversion();\n"
    )


def create_schema(conn_or_url: ConnOrUrl) -> None:
    """Create the `ifsapp` schema, sequence, tables, indexes and triggers; safe to run again."""
    with _connect(conn_or_url) as conn, conn.transaction():
        # Two processes creating the schema at once would race on the catalog despite IF NOT EXISTS.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('sync_pipelines.sandbox.erp'))")
        conn.execute(_DDL)
        for table in TABLES:
            conn.execute(_table_ddl(table))


# ----------------------------------------------------------------------------------------------
# Deterministic SQL expressions
# ----------------------------------------------------------------------------------------------


def _key(seed: int, *parts: object) -> int:
    """A signed 64-bit hash key for one stream of values, so streams of one seed are independent."""
    digest = hashlib.blake2b(repr((seed, *parts)).encode(), digest_size=8).digest()
    # Two bits of headroom so `key + 1`, the stream's second hash, stays a valid bigint.
    return int.from_bytes(digest, "big", signed=True) >> 2


def _hash(index_sql: str, key: int) -> str:
    return f"hashint8extended(({index_sql})::bigint, {key}::bigint)"


def _bits(h: str, slot: int) -> str:
    """16 bits of a 64-bit hash: four independent small draws from one hash call."""
    return f"(({h} >> {16 * slot}) & 65535)"


def _bits32(h: str, high: bool = False) -> str:
    return f"(({h} >> 32) & 4294967295)" if high else f"({h} & 4294967295)"


def _aliased(cols: dict[str, str]) -> str:
    return ", ".join(f"{expr} AS {name}" for name, expr in cols.items())


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _pick(values: Sequence[str], draw: str) -> str:
    array = ",".join(_lit(v) for v in values)
    return f"(ARRAY[{array}]::text[])[1 + mod({draw}, {len(values)})]"


def _pick_weighted(choices: Sequence[tuple[str, int]], draw: str) -> str:
    return _pick([value for value, weight in choices for _ in range(weight)], draw)


def _weighted_index(weights: Sequence[int], draw: str) -> str:
    """1-based index into `weights`, drawn in proportion to them."""
    slots = ",".join(str(i + 1) for i, w in enumerate(weights) for _ in range(w))
    return f"(ARRAY[{slots}])[1 + mod({draw}, {sum(weights)})]"


def _by_index(values: Sequence[str], index_sql: str) -> str:
    array = ",".join(_lit(v) for v in values)
    return f"(ARRAY[{array}]::text[])[{index_sql}]"


def _code(prefix: str, digits: int, number_sql: str) -> str:
    return f"'{prefix}' || lpad(({number_sql})::text, {digits}, '0')"


def _customer_no(index_sql: str) -> str:
    return _code("C", _CUSTOMER_DIGITS, f"({index_sql}) + 1")


def _order_no(index_sql: str) -> str:
    return _code("O", _ORDER_DIGITS, f"({index_sql}) + 1")


def _part_no(part_sql: str) -> str:
    return _code("P", 6, f"({part_sql}) + 1")


def _ts(epoch_sql: str) -> str:
    return f"to_timestamp(({epoch_sql})::double precision)"


def _customer_country_index(seed: int, customer_sql: str) -> str:
    """The customer's country, recomputable from its index: orders take their currency from it."""
    h = _hash(customer_sql, _key(seed, "customer", "country"))
    return _weighted_index([c[3] for c in COUNTRIES], _bits(h, 0))


def _customer_columns(seed: int, i: str, h: str, epoch_sql: str) -> dict[str, str]:
    country = _customer_country_index(seed, i)
    tails = _pick(NAME_TAILS, _bits(h, 2))
    return {
        "customer_id": _customer_no(i),
        "name": (
            f"{_pick(NAME_PREFIXES, _bits(h, 0))} || ' ' || {_pick(NAME_CORES, _bits(h, 1))} || {tails}"
            f" || ' ' || {_by_index([c[2] for c in COUNTRIES], country)}"
        ),
        "association_no": (
            f"lpad(mod({_bits32(h, True)}, 1000000)::text, 6, '0') || '-' || "
            f"lpad(mod({_bits(h, 3)}, 10000)::text, 4, '0')"
        ),
        "country": _by_index([c[0] for c in COUNTRIES], country),
        "creation_date": _ts(epoch_sql),
        # Credit limits in whole thousands, most customers small, a few large.
        "credit_limit": (f"(1000 * (10 + mod({_bits(h, 3)}, 491)) * (1 + 4 * (mod({_bits(h, 2)}, 10) = 0)::int))"),
    }


def _order_state(age_sql: str, draw_sql: str) -> str:
    """Old orders are invoiced; the last weeks hold the open ones, as in a live ERP."""
    d = f"mod({draw_sql}, 100)"
    return f"""(CASE
        WHEN {d} < 3 THEN 'Cancelled'
        WHEN {age_sql} > 60 * {_DAY} THEN 'Invoiced'
        WHEN {age_sql} > 30 * {_DAY} THEN CASE WHEN {d} < 60 THEN 'Invoiced' ELSE 'Delivered' END
        WHEN {age_sql} > 10 * {_DAY} THEN CASE WHEN {d} < 50 THEN 'Delivered' ELSE 'Reserved' END
        WHEN {d} < 35 THEN 'Planned'
        WHEN {d} < 75 THEN 'Released'
        ELSE 'Reserved' END)"""


def _part_description(part_sql: str) -> str:
    n_adj, n_noun = len(PART_ADJECTIVES), len(PART_NOUNS)
    return (
        f"{_pick(PART_ADJECTIVES, part_sql)} || ' ' || "
        f"{_pick(PART_NOUNS, f'({part_sql}) / {n_adj}')} || ' ' || "
        f"{_pick(PART_SIZES, f'({part_sql}) / {n_adj * n_noun}')}"
    )


def _part_price(part_sql: str) -> str:
    """List price of a part, 5.00 to 2000.99, fixed per part so lines and stock costs agree."""
    return f"(5 + mod(({part_sql}) * 7919, 1996) + mod(({part_sql}) * 31, 100) / 100.0)"


def _line_values(h: str) -> dict[str, str]:
    part = f"mod({_bits(h, 0)}, {_PARTS})"
    multiplier = "(ARRAY[1,1,1,1,2,5,10,25])[1 + mod(" + _bits(h, 3) + ", 8)]"
    return {
        "part": part,
        "price": f"round({_part_price(part)} * (85 + mod({_bits(h, 1)}, 31)) / 100.0, 2)",
        "qty": f"((1 + mod({_bits(h, 2)}, 20)) * {multiplier})::numeric",
    }


# ----------------------------------------------------------------------------------------------
# Generation
# ----------------------------------------------------------------------------------------------


def split(scale: int) -> dict[str, int]:
    """Rows per table for a total of `scale`; every table gets at least one row."""
    if scale < 1:
        raise ValueError(f"scale must be at least 1, got {scale}")
    counts = {t: max(1, scale * SPLIT_PERCENT[t] // 100) for t in TABLES if t != "customer_order_line"}
    counts["customer_order_line"] = max(1, scale - sum(counts.values()))
    if counts["customer_info"] >= 10**_CUSTOMER_DIGITS or counts["customer_order"] >= 10**_ORDER_DIGITS:
        raise ValueError(f"scale {scale} overflows the fixed-width customer or order numbers")
    return {t: counts[t] for t in TABLES}


def _rowversion_sql(table: str, counts: dict[str, int], i: str) -> str:
    """Rank of row `i` of `table` when all rows of all tables are ordered by (i / n, table, i).

    Every table's history is spread evenly over the same five years, so this interleaves the tables the
    way a live ERP would have stamped them: rowversion follows time, not the order we load the tables.
    The count of rows of table j before row i of table k is ceil(i*n_j/n_k) (floor + 1 when j sorts
    before k and ties go to it), so each row's rank is closed-form and the load needs no global sort.
    """
    k = TABLES.index(table)
    n_k = counts[table]
    terms = [f"({i})"]
    for j, other in enumerate(TABLES):
        n_j = counts[other]
        if j < k:
            terms.append(f"(({i}) * {n_j} / {n_k} + 1)")
        elif j > k:
            terms.append(f"(({i}) * {n_j} + {n_k - 1}) / {n_k}")
    return "(1 + " + " + ".join(terms) + ")"


def _slot_epoch(i: str, n: int, jitter_draw: str) -> str:
    """Row i of n gets a time in its own 1/n slice of the history: dates rise with the index."""
    return f"({_START_EPOCH} + ({i}) * {_SPAN}::bigint / {n} + mod({jitter_draw}, {max(1, _SPAN // n)}))"


def _generate_customers(seed: int, counts: dict[str, int]) -> str:
    n = counts["customer_info"]
    key = _key(seed, "customer")
    cols = _customer_columns(seed, "i", "h", _slot_epoch("i", n, _bits32("h2")))
    return f"""
        INSERT INTO {SCHEMA}.customer_info ({", ".join(cols)}, rowversion)
        SELECT {", ".join(cols.values())}, {_rowversion_sql("customer_info", counts, "i")}
        FROM (SELECT i, {_hash("i", key)} AS h, {_hash("i", key + 1)} AS h2
              FROM generate_series(0::bigint, {n - 1}) AS i OFFSET 0) AS s"""


def _generate_orders(seed: int, counts: dict[str, int]) -> str:
    """Runs after the lines, so each order's total is the sum of its lines as stored."""
    n_c, n_o = counts["customer_info"], counts["customer_order"]
    key = _key(seed, "order")
    # A customer created before the order (a lower index sits earlier in the history).
    customer = f"mod({_bits32('h')}, greatest(1, o * {n_c} / {n_o}))"
    currency = _by_index([c[1] for c in COUNTRIES], _customer_country_index(seed, "customer"))
    return f"""
        INSERT INTO {SCHEMA}.customer_order (order_no, customer_no, contract, order_date,
            wanted_delivery_date, currency_code, state, total_amount, rowversion)
        SELECT s.order_no, {_customer_no("customer")}, {_pick_weighted(SITES, _bits("h2", 2))},
            {_ts("epoch")}, {_ts(f"epoch + (3 + mod({_bits('h2', 1)}, 58)) * {_DAY}")},
            {currency}, {_order_state(f"({_START_EPOCH + _SPAN} - epoch)", _bits("h2", 0))},
            coalesce(totals.total, 0), {_rowversion_sql("customer_order", counts, "o")}
        FROM (SELECT o, h, h2, {_order_no("o")} AS order_no, {customer} AS customer,
                     {_slot_epoch("o", n_o, _bits32("h", True))} AS epoch
              FROM (SELECT o, {_hash("o", key)} AS h, {_hash("o", key + 1)} AS h2
                    FROM generate_series(0::bigint, {n_o - 1}) AS o OFFSET 0) AS hashed OFFSET 0) AS s
        LEFT JOIN (SELECT order_no, sum(round(buy_qty_due * sale_unit_price, 2)) AS total
                   FROM {SCHEMA}.customer_order_line GROUP BY order_no) AS totals
            ON totals.order_no = s.order_no"""


def _generate_lines(seed: int, counts: dict[str, int]) -> str:
    n_o, n_l = counts["customer_order"], counts["customer_order_line"]
    key, order_key = _key(seed, "line"), _key(seed, "order")
    values = _line_values("h")
    # The line's order, and its state, recomputed from the order's index and hash rather than joined.
    order = f"(l * {n_o} / {n_l})"
    order_epoch = _slot_epoch("o", n_o, _bits32("oh", True))
    return f"""
        INSERT INTO {SCHEMA}.customer_order_line (order_no, line_no, rel_no, catalog_no, description,
            buy_qty_due, sale_unit_price, state, rowversion)
        SELECT {_order_no("o")}, l - (o * {n_l} + {n_o - 1}) / {n_o} + 1, '1', {_part_no("part")},
            {_part_description("part")}, {values["qty"]}, {values["price"]},
            {_order_state(f"({_START_EPOCH + _SPAN} - {order_epoch})", _bits("oh2", 0))},
            {_rowversion_sql("customer_order_line", counts, "l")}
        FROM (SELECT l, o, h, {values["part"]} AS part, {_hash("o", order_key)} AS oh,
                     {_hash("o", order_key + 1)} AS oh2
              FROM (SELECT l, {order} AS o, {_hash("l", key)} AS h
                    FROM generate_series(0::bigint, {n_l - 1}) AS l OFFSET 0) AS hashed OFFSET 0) AS s"""


def _inventory_code(h: str) -> str:
    return _pick_weighted(TRANSACTION_CODES, _bits(h, 1))


def _inventory_columns(h: str, part: str, code: str, order_no_sql: str) -> dict[str, str]:
    """Columns over `h`, `part` and `code`, which the subquery computes once per row."""
    return {
        "part_no": _part_no(part),
        "contract": _pick_weighted(SITES, _bits(h, 2)),
        "transaction_code": code,
        # IFS keeps quantities positive; the transaction code says which way the stock moved.
        "quantity": f"""(CASE {code}
            WHEN 'ARRIVAL' THEN 10 * (1 + mod({_bits(h, 3)}, 50))
            WHEN 'OESHIP' THEN 1 + mod({_bits(h, 3)}, 60)
            ELSE 1 + mod({_bits(h, 3)}, 8) END)::numeric""",
        "cost": f"round({_part_price(part)} * (55 + mod({_bits(h, 0)}, 11)) / 100.0, 4)",
        "order_no": f"CASE WHEN {code} = 'OESHIP' THEN {order_no_sql} END",
    }


def _generate_inventory(seed: int, counts: dict[str, int]) -> str:
    n_o, n_t = counts["customer_order"], counts["inventory_transaction_hist"]
    key = _key(seed, "inventory")
    cols = _inventory_columns("h", "part", "code", _order_no(f"t * {n_o} / {n_t}"))
    return f"""
        INSERT INTO {SCHEMA}.inventory_transaction_hist (transaction_id, {", ".join(cols)}, date_created,
            rowversion)
        SELECT t + 1, {", ".join(cols.values())}, {_ts(_slot_epoch("t", n_t, _bits32("h2")))},
            {_rowversion_sql("inventory_transaction_hist", counts, "t")}
        FROM (SELECT t, h, h2, mod({_bits32("h2", True)}, {_PARTS}) AS part, {_inventory_code("h")} AS code
              FROM (SELECT t, {_hash("t", key)} AS h, {_hash("t", key + 1)} AS h2
                    FROM generate_series(0::bigint, {n_t - 1}) AS t OFFSET 0) AS hashed OFFSET 0) AS s"""


def generate(conn_or_url: ConnOrUrl, *, seed: int, scale: int) -> dict[str, int]:
    """Replace the ERP's rows with `scale` rows made from `seed`; returns the rows per table.

    Rowversions run 1..scale in history order across the tables, and the sequence continues after them.
    """
    counts = split(scale)
    create_schema(conn_or_url)
    with _connect(conn_or_url) as conn, conn.transaction():
        conn.execute("SET LOCAL synchronous_commit = off")
        conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
        conn.execute("SET LOCAL work_mem = '64MB'")
        conn.execute(f"TRUNCATE {', '.join(f'{SCHEMA}.{t}' for t in TABLES)}")
        # Indexes built once over the loaded table cost far less than maintaining them row by row.
        index_names = [f"{SCHEMA}.{t}_rowversion_ix" for t in TABLES]
        conn.execute(f"DROP INDEX IF EXISTS {', '.join(index_names)}")
        for table in TABLES:
            conn.execute(f"ALTER TABLE {SCHEMA}.{table} DROP CONSTRAINT IF EXISTS {table}_pkey")
        conn.execute(_generate_customers(seed, counts))
        conn.execute(_generate_lines(seed, counts))
        conn.execute(_generate_orders(seed, counts))
        conn.execute(_generate_inventory(seed, counts))
        for table in TABLES:
            conn.execute(
                f"ALTER TABLE {SCHEMA}.{table} ADD CONSTRAINT {table}_pkey "
                f"PRIMARY KEY ({', '.join(PRIMARY_KEYS[table])})"
            )
            conn.execute(_table_ddl(table))
        conn.execute("SELECT setval(%s, %s)", (SEQUENCE, sum(counts.values())))
        for table in TABLES:
            conn.execute(f"ANALYZE {SCHEMA}.{table}")
    return counts


# ----------------------------------------------------------------------------------------------
# Mutations
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MutationResult:
    """What one `mutate` step did, per table."""

    step: int
    updated: dict[str, int] = field(default_factory=dict)
    inserted: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)
    # Orders whose lines this step inserted without them; the next step inserts these orders.
    withheld_orders: list[str] = field(default_factory=list)
    # Orders this step inserted because an earlier step had already inserted their lines.
    supplied_orders: list[str] = field(default_factory=list)


def _number(code: str | None) -> int:
    return int(code[1:]) if code else 0


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _new_order_rows(seed: int, max_customer: int) -> dict[str, str]:
    """Columns of an order created by a mutation, as SQL over `o` (index), `h`, `h2` and `now_epoch`."""
    customer = f"mod({_bits32('h')}, {max(1, max_customer)})"
    currency = _by_index([c[1] for c in COUNTRIES], _customer_country_index(seed, customer))
    return {
        "order_no": _order_no("o"),
        "customer_no": _customer_no(customer),
        "contract": _pick_weighted(SITES, _bits("h2", 2)),
        "order_date": _ts("now_epoch"),
        "wanted_delivery_date": _ts(f"now_epoch + (3 + mod({_bits('h2', 1)}, 58)) * {_DAY}"),
        "currency_code": currency,
        "state": _new_order_state("h2"),
    }


def _new_order_state(h2: str) -> str:
    return f"(CASE WHEN mod({_bits(h2, 0)}, 10) < 3 THEN 'Planned' ELSE 'Released' END)"


def _insert_orders(
    conn: psycopg.Connection,
    seed: int,
    indexes: list[int],
    now_epoch: int,
    max_customer: int,
    lines_from: str,
) -> None:
    if not indexes:
        return
    key = _key(seed, "mutation-order")
    cols = _new_order_rows(seed, max_customer)
    conn.execute(
        f"""
        INSERT INTO {SCHEMA}.customer_order ({", ".join(cols)}, total_amount, rowversion)
        SELECT *, nextval('{SEQUENCE}') FROM (
            SELECT {_aliased(cols)},
                coalesce((SELECT sum(round(x.buy_qty_due * x.sale_unit_price, 2)) FROM {lines_from} AS x
                          WHERE x.order_no = {_order_no("o")}), 0) AS total_amount
            FROM (SELECT o, {_hash("o", key)} AS h, {_hash("o", key + 1)} AS h2, %(now)s::bigint AS now_epoch
                  FROM unnest(%(indexes)s::bigint[]) AS o OFFSET 0) AS s
            ORDER BY o OFFSET 0) AS ordered""",
        {"indexes": indexes, "now": now_epoch},
    )


def _pick_keys(
    conn: psycopg.Connection, table: str, count: int, key: int, max_number: int, code: str
) -> list[tuple[object, ...]]:
    """`count` distinct existing rows of `table`, chosen by hash: deterministic for a given state.

    Probing hashed key numbers by index avoids sorting the whole table each step; only when too many
    probes miss (a small or heavily deleted table) does it fall back to ordering every row by hash.
    """
    if count <= 0 or max_number <= 0:
        return []
    pk = PRIMARY_KEYS[table]
    probe_column = "customer_id" if table == "customer_info" else "order_no"
    digits = _CUSTOMER_DIGITS if table == "customer_info" else _ORDER_DIGITS
    probe = _code(code, digits, f"1 + mod({_hash('j', key)} & 9223372036854775807, {max_number})")
    row_hash = f"hashtextextended(concat_ws('|', {', '.join(f't.{c}' for c in pk)}), {key})"
    cols = ", ".join(f"t.{c}" for c in pk)
    rows = conn.execute(
        f"""
        SELECT {", ".join(pk)} FROM (
            SELECT DISTINCT ON ({", ".join(pk)}) {", ".join(pk)}, j FROM (
                SELECT DISTINCT ON (p.j) {cols}, p.j
                FROM (SELECT j, {probe} AS probe FROM generate_series(0::bigint, {4 * count + 16}) AS j) AS p
                JOIN {SCHEMA}.{table} AS t ON t.{probe_column} = p.probe
                ORDER BY p.j, {row_hash}) AS hit
            ORDER BY {", ".join(pk)}, j) AS first_hit
        ORDER BY j LIMIT {count}"""
    ).fetchall()
    if len(rows) < count:
        top = _code(code, digits, str(max_number))
        rows = conn.execute(
            f"SELECT {cols} FROM {SCHEMA}.{table} AS t WHERE t.{probe_column} <= {top} "
            f"ORDER BY {row_hash}, {cols} LIMIT {count}"
        ).fetchall()
    return rows


def _allocate(total: int, weights: dict[str, int]) -> dict[str, int]:
    """Split `total` by integer weights; the last table takes the rounding remainder."""
    names = list(weights)
    out = {name: total * weights[name] // sum(weights.values()) for name in names[:-1]}
    out[names[-1]] = total - sum(out.values())
    return out


_ADVANCE_STATE = """(CASE {col} WHEN 'Planned' THEN 'Released' WHEN 'Released' THEN 'Reserved'
    WHEN 'Reserved' THEN 'Delivered' WHEN 'Delivered' THEN 'Invoiced' ELSE {col} END)"""

_UPDATES: dict[str, str] = {
    "customer_info": f"""UPDATE {SCHEMA}.customer_info
        SET credit_limit = 1000 * (10 + mod(hashtextextended(customer_id, %(key)s) & 65535, 491))
        WHERE customer_id = %(k0)s""",
    # Open orders move one state on; closed ones get a new wanted date, which still bumps rowversion.
    "customer_order": f"""UPDATE {SCHEMA}.customer_order
        SET state = {_ADVANCE_STATE.format(col="state")},
            wanted_delivery_date = CASE WHEN state IN ('Invoiced', 'Cancelled')
                THEN wanted_delivery_date + (1 + mod(hashtextextended(order_no, %(key)s) & 65535, 7))
                    * interval '1 day'
                ELSE wanted_delivery_date END
        WHERE order_no = %(k0)s""",
    "customer_order_line": f"""UPDATE {SCHEMA}.customer_order_line
        SET state = {_ADVANCE_STATE.format(col="state")},
            buy_qty_due = CASE WHEN state IN ('Planned', 'Released')
                THEN buy_qty_due + 1 + mod(hashtextextended(order_no || line_no, %(key)s) & 65535, 5)
                ELSE buy_qty_due END
        WHERE order_no = %(k0)s AND line_no = %(k1)s AND rel_no = %(k2)s""",
}


def mutate(
    conn_or_url: ConnOrUrl,
    *,
    seed: int,
    step: int,
    updates: int,
    inserts: int,
    deletes: int = 0,
    child_before_parent: bool = False,
    now: datetime | None = None,
) -> MutationResult:
    """One clock step of ERP activity in one transaction; same (seed, step) on the same data, same result.

    In order: supply the orders whose lines an earlier step inserted first; delete `deletes` rows (half
    whole orders with their lines, half single lines); update `updates` rows (10% customers, 40% orders,
    50% lines; inventory history is append-only); insert `inserts` rows (5% customers, 25% orders with at
    least one, 25% inventory transactions, the rest lines of the new orders). With `child_before_parent`
    the new orders are held back and only their lines land; the next step inserts the orders.
    `now` stamps new rows; by default one second per step after the history ends, like SandboxClock.tick.
    """
    if min(updates, inserts, deletes) < 0:
        raise ValueError("updates, inserts and deletes must not be negative")
    now_epoch = _epoch(now if now is not None else HISTORY_END + timedelta(seconds=step))
    updated = dict.fromkeys(TABLES, 0)
    inserted = dict.fromkeys(TABLES, 0)
    deleted = dict.fromkeys(TABLES, 0)
    with _connect(conn_or_url) as conn, conn.transaction():
        max_customer = _number(conn.execute(f"SELECT max(customer_id) FROM {SCHEMA}.customer_info").fetchone()[0])
        max_order = _number(conn.execute(f"SELECT max(order_no) FROM {SCHEMA}.customer_order").fetchone()[0])

        # Earlier steps' withheld orders are the only line parents numbered above every existing order.
        orphans = [
            row[0]
            for row in conn.execute(
                f"SELECT DISTINCT order_no FROM {SCHEMA}.customer_order_line WHERE order_no > %s ORDER BY order_no",
                (_order_no_text(max_order),),
            )
        ]
        _insert_orders(
            conn,
            seed,
            [_number(o) - 1 for o in orphans],
            now_epoch,
            max_customer,
            f"{SCHEMA}.customer_order_line",
        )
        inserted["customer_order"] += len(orphans)
        max_order = max([max_order, *(_number(o) for o in orphans)])

        if deletes:
            whole_orders = deletes // 2
            plan = {"customer_order": whole_orders, "customer_order_line": deletes - whole_orders}
            for table, count in plan.items():
                # The newest order survives, so max(order_no) never falls and numbers are never reused.
                top = max_order - 1 if table == "customer_order" else max_order
                keys = _pick_keys(conn, table, count, _key(seed, "delete", table, step), top, "O")
                if table == "customer_order":
                    numbers = [k[0] for k in keys]
                    cur = conn.execute(f"DELETE FROM {SCHEMA}.customer_order_line WHERE order_no = ANY(%s)", (numbers,))
                    deleted["customer_order_line"] += cur.rowcount
                    cur = conn.execute(f"DELETE FROM {SCHEMA}.customer_order WHERE order_no = ANY(%s)", (numbers,))
                    deleted["customer_order"] += cur.rowcount
                else:
                    with conn.cursor() as cur:
                        cur.executemany(
                            f"DELETE FROM {SCHEMA}.customer_order_line "
                            f"WHERE order_no = %s AND line_no = %s AND rel_no = %s",
                            keys,
                        )
                    deleted["customer_order_line"] += len(keys)

        if updates:
            plan = _allocate(updates, {"customer_info": 1, "customer_order": 4, "customer_order_line": 5})
            for table, count in plan.items():
                key = _key(seed, "update", table, step)
                code, top = ("C", max_customer) if table == "customer_info" else ("O", max_order)
                keys = _pick_keys(conn, table, count, key, top, code)
                # Row by row, in the chosen order, so the trigger hands out rowversions deterministically.
                with conn.cursor() as cur:
                    cur.executemany(
                        _UPDATES[table],
                        [{"key": key, **{f"k{i}": v for i, v in enumerate(k)}} for k in keys],
                    )
                updated[table] += len(keys)

        if inserts:
            withheld = _insert_new(
                conn, seed, step, inserts, now_epoch, max_customer, max_order, child_before_parent, inserted
            )
        else:
            withheld = []
    return MutationResult(
        step=step,
        updated=updated,
        inserted=inserted,
        deleted=deleted,
        withheld_orders=withheld,
        supplied_orders=orphans,
    )


def _order_no_text(number: int) -> str:
    return f"O{number:0{_ORDER_DIGITS}d}"


def _insert_new(
    conn: psycopg.Connection,
    seed: int,
    step: int,
    inserts: int,
    now_epoch: int,
    max_customer: int,
    max_order: int,
    child_before_parent: bool,
    inserted: dict[str, int],
) -> list[str]:
    """Insert this step's new rows, parents first; returns the orders held back for the next step."""
    n_c = inserts // 20
    n_o = min(max(1, inserts // 4), inserts - n_c)
    n_t = min(inserts // 4, inserts - n_c - n_o)
    n_l = inserts - n_c - n_o - n_t
    first_order = max_order  # 0-based index of the first new order
    now = f"{now_epoch}::bigint"

    if n_c:
        key = _key(seed, "customer")
        cols = _customer_columns(seed, "i", "h", now)
        conn.execute(
            f"""
            INSERT INTO {SCHEMA}.customer_info ({", ".join(cols)}, rowversion)
            SELECT *, nextval('{SEQUENCE}') FROM (
                SELECT {_aliased(cols)}
                FROM (SELECT i, {_hash("i", key)} AS h
                      FROM generate_series({max_customer}::bigint, {max_customer + n_c - 1}) AS i
                      OFFSET 0) AS s
                ORDER BY i OFFSET 0) AS ordered"""
        )
        inserted["customer_info"] += n_c

    order_key = _key(seed, "mutation-order")
    line_key = _key(seed, "mutation-line", step)
    values = _line_values("h")
    # Lines go to a scratch table first so the orders can carry their totals and still precede them.
    conn.execute(
        f"""
        CREATE TEMP TABLE erp_new_lines ON COMMIT DROP AS
        SELECT {_order_no("o")} AS order_no, j - (r * {n_l} + {n_o - 1}) / {n_o} + 1 AS line_no,
            '1'::text AS rel_no,
            {_part_no("part")} AS catalog_no, {_part_description("part")} AS description,
            {values["qty"]} AS buy_qty_due, {values["price"]}::numeric(14,2) AS sale_unit_price,
            {_new_order_state("oh2")} AS state, j
        FROM (SELECT j, r, {first_order} + r AS o, h, {values["part"]} AS part,
                     {_hash(f"{first_order} + r", order_key + 1)} AS oh2
              FROM (SELECT j, j * {n_o} / greatest({n_l}, 1) AS r, {_hash("j", line_key)} AS h
                    FROM generate_series(0::bigint, {n_l - 1}) AS j OFFSET 0) AS hashed OFFSET 0) AS s"""
    )
    new_orders = list(range(first_order, first_order + n_o))
    withheld: list[str] = []
    if child_before_parent:
        withheld = [_order_no_text(o + 1) for o in new_orders]
    else:
        _insert_orders(conn, seed, new_orders, now_epoch, max_customer + n_c, "erp_new_lines")
        inserted["customer_order"] += n_o
    conn.execute(
        f"""
        INSERT INTO {SCHEMA}.customer_order_line (order_no, line_no, rel_no, catalog_no, description,
            buy_qty_due, sale_unit_price, state, rowversion)
        SELECT order_no, line_no, rel_no, catalog_no, description, buy_qty_due, sale_unit_price, state,
            nextval('{SEQUENCE}')
        FROM (SELECT * FROM erp_new_lines ORDER BY j OFFSET 0) AS ordered"""
    )
    inserted["customer_order_line"] += n_l
    conn.execute("DROP TABLE erp_new_lines")

    if n_t:
        key = _key(seed, "mutation-inventory", step)
        max_tx = conn.execute(
            f"SELECT coalesce(max(transaction_id), 0) FROM {SCHEMA}.inventory_transaction_hist"
        ).fetchone()[0]
        # Shipments are against orders that already existed, not the ones being entered right now.
        shipped = _order_no(f"mod({_bits32('h2', True)}, {max(1, max_order)})") if max_order else "NULL"
        cols = _inventory_columns("h", "part", "code", shipped)
        conn.execute(
            f"""
            INSERT INTO {SCHEMA}.inventory_transaction_hist (transaction_id, {", ".join(cols)}, date_created,
                rowversion)
            SELECT *, nextval('{SEQUENCE}') FROM (
                SELECT {max_tx} + 1 + t AS transaction_id, {_aliased(cols)}, {_ts(now)} AS date_created
                FROM (SELECT t, h, h2, mod({_bits32("h2")}, {_PARTS}) AS part, {_inventory_code("h")} AS code
                      FROM (SELECT t, {_hash("t", key)} AS h, {_hash("t", key + 1)} AS h2
                            FROM generate_series(0::bigint, {n_t - 1}) AS t OFFSET 0) AS hashed OFFSET 0) AS s
                ORDER BY t OFFSET 0) AS ordered"""
        )
        inserted["inventory_transaction_hist"] += n_t
    return withheld


# ----------------------------------------------------------------------------------------------
# Inspection
# ----------------------------------------------------------------------------------------------


def row_counts(conn_or_url: ConnOrUrl) -> dict[str, int]:
    """Exact rows per table (count(*), not the planner's estimate)."""
    query = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM {SCHEMA}.{t}" for t in TABLES)
    with _connect(conn_or_url) as conn:
        return {name: count for name, count in conn.execute(query)}


def checksum(conn_or_url: ConnOrUrl, table: str, *, schema: str = SCHEMA) -> str:
    """md5 over (primary key, rowversion) of every row in primary-key order: `source.checksum`, the one the
    warehouse side uses too, so a sandbox table and its synced copy are compared by the same SQL."""
    with _connect(conn_or_url) as conn:
        return source.checksum(conn, table, schema=schema)
