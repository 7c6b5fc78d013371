"""The sandbox ERP database: deterministic generation, rowversion semantics, clock-step mutations."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from uuid import uuid4

import psycopg
import pytest
from sqlalchemy.engine import URL

from sync_pipelines.lib import db
from sync_pipelines.sandbox import erp
from sync_pipelines_tests.conftest import TestServer

ALL_ROWVERSIONS = " UNION ALL ".join(f"SELECT '{t}' AS tbl, rowversion FROM ifsapp.{t}" for t in erp.TABLES)


@pytest.fixture
def erp_factory(pg_server: TestServer) -> Iterator[Callable[[], URL]]:
    """Fresh, empty ERP databases on the session's server, dropped after the test."""
    names: list[str] = []

    def make() -> URL:
        name = f"erp_{uuid4().hex[:8]}"
        names.append(name)
        return pg_server.create_database(name)

    yield make
    for name in names:
        pg_server.drop_database(name)


@pytest.fixture
def erp_db(erp_factory: Callable[[], URL]) -> URL:
    return erp_factory()


def _fetch(url: URL, query: str, params: tuple[object, ...] = ()) -> list[tuple]:
    with psycopg.connect(db.libpq_uri(url)) as conn:
        return conn.execute(query, params).fetchall()


def _one(url: URL, query: str, params: tuple[object, ...] = ()) -> object:
    return _fetch(url, query, params)[0][0]


def _checksums(url: URL) -> dict[str, str]:
    return {table: erp.checksum(url, table) for table in erp.TABLES}


def _max_rowversion(url: URL) -> int:
    return int(_one(url, f"SELECT max(rowversion) FROM ({ALL_ROWVERSIONS}) AS r"))


def _changed_since(url: URL, rowversion: int) -> dict[str, int]:
    rows = _fetch(
        url,
        f"SELECT tbl, count(*) FROM ({ALL_ROWVERSIONS}) AS r WHERE rowversion > %s GROUP BY 1",
        (rowversion,),
    )
    return {table: dict(rows).get(table, 0) for table in erp.TABLES}


def _orphan_lines(url: URL) -> list[str]:
    return [
        row[0]
        for row in _fetch(
            url,
            "SELECT DISTINCT l.order_no FROM ifsapp.customer_order_line AS l "
            "WHERE NOT EXISTS (SELECT 1 FROM ifsapp.customer_order AS o WHERE o.order_no = l.order_no) "
            "ORDER BY 1",
        )
    ]


# ----------------------------------------------------------------------------------------------
# Generation
# ----------------------------------------------------------------------------------------------


def test_same_seed_gives_identical_data_and_another_seed_differs(erp_factory: Callable[[], URL]) -> None:
    first, second, other = erp_factory(), erp_factory(), erp_factory()
    erp.generate(first, seed=42, scale=5000)
    erp.generate(second, seed=42, scale=5000)
    erp.generate(other, seed=43, scale=5000)

    assert _checksums(first) == _checksums(second)
    # The checksum covers keys and rowversions only, so compare whole rows too.
    for table in erp.TABLES:
        order = ", ".join(erp.PRIMARY_KEYS[table])
        query = f"SELECT * FROM ifsapp.{table} ORDER BY {order}"
        assert _fetch(first, query) == _fetch(second, query), table
        assert _fetch(first, query) != _fetch(other, query), table


def test_generating_again_replaces_the_data_with_the_same_rows(erp_db: URL) -> None:
    erp.generate(erp_db, seed=5, scale=2000)
    before = _checksums(erp_db)
    erp.mutate(erp_db, seed=5, step=1, updates=20, inserts=20, deletes=4)
    assert _checksums(erp_db) != before

    erp.generate(erp_db, seed=5, scale=2000)
    assert _checksums(erp_db) == before
    assert _one(erp_db, "SELECT last_value FROM ifsapp.rowversion_seq") == 2000


@pytest.mark.parametrize("scale", [1, 3, 10, 101, 12345])
def test_row_counts_match_the_split_of_the_scale(erp_db: URL, scale: int) -> None:
    counts = erp.generate(erp_db, seed=1, scale=scale)

    assert erp.row_counts(erp_db) == counts == erp.split(scale)
    assert all(n >= 1 for n in counts.values())
    if scale >= 10:
        assert sum(counts.values()) == scale
    if scale == 12345:
        assert counts == {
            "customer_info": 246,
            "customer_order": 2222,
            "customer_order_line": 6174,
            "inventory_transaction_hist": 3703,
        }


def test_split_rejects_a_scale_below_one() -> None:
    with pytest.raises(ValueError, match="scale"):
        erp.split(0)


def test_rowversions_are_unique_and_increase_across_tables(erp_db: URL) -> None:
    counts = erp.generate(erp_db, seed=9, scale=3000)
    total = sum(counts.values())

    n, distinct, low, high = _fetch(
        erp_db,
        f"SELECT count(*), count(DISTINCT rowversion), min(rowversion), max(rowversion) FROM ({ALL_ROWVERSIONS}) r",
    )[0]
    assert (n, distinct, low, high) == (total, total, 1, total)
    assert _one(erp_db, "SELECT last_value FROM ifsapp.rowversion_seq") == total
    # The tables interleave in time rather than one block per table.
    first_hundred = _fetch(erp_db, f"SELECT DISTINCT tbl FROM ({ALL_ROWVERSIONS}) r WHERE rowversion <= 100")
    assert len(first_hundred) == len(erp.TABLES)
    # Parents are stamped before their children, as they would have been created.
    assert (
        _one(
            erp_db,
            "SELECT count(*) FROM ifsapp.customer_order_line l JOIN ifsapp.customer_order o USING (order_no) "
            "WHERE o.rowversion > l.rowversion",
        )
        == 0
    )
    assert (
        _one(
            erp_db,
            "SELECT count(*) FROM ifsapp.customer_order o "
            "JOIN ifsapp.customer_info c ON c.customer_id = o.customer_no WHERE c.rowversion > o.rowversion",
        )
        == 0
    )
    # Rowversion follows creation time within each table.
    assert (
        _one(
            erp_db,
            "SELECT count(*) FROM (SELECT order_date, lag(order_date) OVER (ORDER BY rowversion) AS prev "
            "FROM ifsapp.customer_order) x WHERE order_date < prev",
        )
        == 0
    )


def test_generated_values_are_consistent_and_realistic(erp_db: URL) -> None:
    erp.generate(erp_db, seed=3, scale=20000)

    assert (
        _one(
            erp_db,
            "SELECT count(*) FROM ifsapp.customer_order o JOIN (SELECT order_no, "
            "sum(round(buy_qty_due * sale_unit_price, 2)) AS total FROM ifsapp.customer_order_line "
            "GROUP BY 1) l USING (order_no) WHERE l.total <> o.total_amount",
        )
        == 0
    )
    assert _orphan_lines(erp_db) == []
    assert (
        _one(
            erp_db,
            "SELECT count(*) FROM ifsapp.customer_order o WHERE NOT EXISTS "
            "(SELECT 1 FROM ifsapp.customer_info c WHERE c.customer_id = o.customer_no)",
        )
        == 0
    )
    assert (
        _one(
            erp_db,
            "SELECT count(*) FROM ifsapp.customer_order_line l JOIN ifsapp.customer_order o USING (order_no) "
            "WHERE l.state <> o.state",
        )
        == 0
    )
    low, high = _fetch(
        erp_db,
        "SELECT least(min(order_date), min(d)), greatest(max(order_date), max(d)) "
        "FROM ifsapp.customer_order, "
        "(SELECT min(date_created) d FROM ifsapp.inventory_transaction_hist UNION ALL "
        "SELECT max(date_created) FROM ifsapp.inventory_transaction_hist UNION ALL "
        "SELECT min(creation_date) FROM ifsapp.customer_info UNION ALL "
        "SELECT max(creation_date) FROM ifsapp.customer_info) x",
    )[0]
    assert low >= erp.HISTORY_START
    assert high < erp.HISTORY_END
    assert high - low > (erp.HISTORY_END - erp.HISTORY_START) * 0.99

    states = dict(_fetch(erp_db, "SELECT state, count(*) FROM ifsapp.customer_order GROUP BY 1"))
    assert set(states) <= set(erp.ORDER_STATES)
    assert states["Invoiced"] > sum(states.values()) / 2  # old orders are invoiced
    assert {"Planned", "Released", "Cancelled"} <= set(states)
    currencies = {r[0] for r in _fetch(erp_db, "SELECT DISTINCT currency_code FROM ifsapp.customer_order")}
    assert {"SEK", "EUR", "NOK"} <= currencies
    # An order is priced in its customer's currency.
    pairs = _fetch(
        erp_db,
        "SELECT DISTINCT c.country, o.currency_code FROM ifsapp.customer_order o "
        "JOIN ifsapp.customer_info c ON c.customer_id = o.customer_no",
    )
    currency_of = {country: currency for country, currency, _, _ in erp.COUNTRIES}
    assert all(currency_of[country] == currency for country, currency in pairs)
    names = [r[0] for r in _fetch(erp_db, "SELECT name FROM ifsapp.customer_info")]
    assert len(set(names)) > 0.8 * len(names)
    assert all(name.split()[-1] in {s.split()[-1] for _, _, s, _ in erp.COUNTRIES} for name in names)
    assert (
        _one(
            erp_db,
            "SELECT count(*) FROM ifsapp.inventory_transaction_hist "
            "WHERE (transaction_code = 'OESHIP') <> (order_no IS NOT NULL) OR quantity <= 0",
        )
        == 0
    )


def test_a_hundred_thousand_rows(erp_db: URL) -> None:
    counts = erp.generate(erp_db, seed=100, scale=100_000)

    assert sum(counts.values()) == 100_000
    assert erp.row_counts(erp_db) == counts
    assert _max_rowversion(erp_db) == 100_000
    assert len(erp.checksum(erp_db, "customer_order_line")) == 32


def test_create_schema_is_idempotent_and_generate_accepts_a_connection(erp_db: URL) -> None:
    erp.create_schema(erp_db)
    erp.create_schema(erp_db)
    assert erp.row_counts(erp_db) == dict.fromkeys(erp.TABLES, 0)
    with psycopg.connect(db.libpq_uri(erp_db)) as conn:
        erp.generate(conn, seed=1, scale=100)
        assert erp.row_counts(conn)["customer_order_line"] == 50
    assert erp.row_counts(erp_db)["customer_order_line"] == 50
    indexes = {r[0] for r in _fetch(erp_db, "SELECT indexname FROM pg_indexes WHERE schemaname = 'ifsapp'")}
    assert {f"{t}_rowversion_ix" for t in erp.TABLES} | {f"{t}_pkey" for t in erp.TABLES} <= indexes


# ----------------------------------------------------------------------------------------------
# Rowversion trigger and checksum
# ----------------------------------------------------------------------------------------------


def test_an_update_bumps_rowversion_above_all_previous(erp_db: URL) -> None:
    erp.generate(erp_db, seed=2, scale=1000)
    before = _max_rowversion(erp_db)
    checksum_before = erp.checksum(erp_db, "customer_info")

    with psycopg.connect(db.libpq_uri(erp_db)) as conn:
        conn.execute("UPDATE ifsapp.customer_info SET credit_limit = credit_limit WHERE customer_id = 'C0000001'")
        conn.execute("UPDATE ifsapp.customer_order SET state = state WHERE order_no = 'O00000001'")

    bumped = dict(
        _fetch(
            erp_db,
            "SELECT 'c', rowversion FROM ifsapp.customer_info WHERE customer_id = 'C0000001' UNION ALL "
            "SELECT 'o', rowversion FROM ifsapp.customer_order WHERE order_no = 'O00000001'",
        )
    )
    assert bumped == {"c": before + 1, "o": before + 2}
    assert erp.checksum(erp_db, "customer_info") != checksum_before


def test_checksum_takes_a_qualified_name_and_rejects_unknown_tables(erp_db: URL) -> None:
    erp.generate(erp_db, seed=2, scale=100)
    assert erp.checksum(erp_db, "ifsapp.customer_order") == erp.checksum(erp_db, "customer_order")
    with psycopg.connect(db.libpq_uri(erp_db)) as conn:
        conn.execute("CREATE SCHEMA copy")
        conn.execute("CREATE TABLE copy.customer_order AS SELECT * FROM ifsapp.customer_order ORDER BY random()")
    assert erp.checksum(erp_db, "copy.customer_order") == erp.checksum(erp_db, "customer_order")
    assert erp.checksum(erp_db, "customer_order", schema="copy") == erp.checksum(erp_db, "customer_order")
    with pytest.raises(ValueError, match="unknown ERP table"):
        erp.checksum(erp_db, "customer_invoice")


# ----------------------------------------------------------------------------------------------
# Mutations
# ----------------------------------------------------------------------------------------------


def test_mutate_inserts_updates_and_deletes_what_it_says(erp_db: URL) -> None:
    erp.generate(erp_db, seed=8, scale=10_000)
    counts_before = erp.row_counts(erp_db)
    high_water = _max_rowversion(erp_db)

    result = erp.mutate(erp_db, seed=8, step=1, updates=100, inserts=200, deletes=20)

    assert result.updated == {
        "customer_info": 10,
        "customer_order": 40,
        "customer_order_line": 50,
        "inventory_transaction_hist": 0,
    }
    assert result.inserted == {
        "customer_info": 10,
        "customer_order": 50,
        "customer_order_line": 90,
        "inventory_transaction_hist": 50,
    }
    assert sum(result.inserted.values()) == 200
    assert result.deleted["customer_order"] == 10
    # Ten whole orders with their lines, plus ten single lines.
    assert result.deleted["customer_order_line"] >= 20
    assert result.withheld_orders == result.supplied_orders == []

    counts_after = erp.row_counts(erp_db)
    for table in erp.TABLES:
        assert counts_after[table] == counts_before[table] + result.inserted[table] - result.deleted[table]
    # Every updated or inserted row, and only those, sits above the old high-water mark.
    changed = _changed_since(erp_db, high_water)
    for table in erp.TABLES:
        assert changed[table] == result.updated[table] + result.inserted[table], table
    assert _max_rowversion(erp_db) == high_water + sum(result.updated.values()) + sum(result.inserted.values())
    # New orders are numbered after the old ones and stamped with the step's clock time.
    new_orders = _fetch(
        erp_db,
        "SELECT order_no, order_date, total_amount FROM ifsapp.customer_order WHERE rowversion > %s "
        "AND order_no > 'O00001800' ORDER BY order_no",
        (high_water,),
    )
    assert [r[0] for r in new_orders] == [f"O{n:08d}" for n in range(1801, 1851)]
    assert {r[1] for r in new_orders} == {erp.HISTORY_END.replace(second=1)}
    assert _orphan_lines(erp_db) == []


def test_mutate_is_deterministic_per_seed_and_step(erp_factory: Callable[[], URL]) -> None:
    first, second, third = erp_factory(), erp_factory(), erp_factory()
    for url in (first, second, third):
        erp.generate(url, seed=4, scale=5000)
    for step in (1, 2, 3):
        a = erp.mutate(first, seed=4, step=step, updates=30, inserts=40, deletes=6)
        b = erp.mutate(second, seed=4, step=step, updates=30, inserts=40, deletes=6)
        assert a == b
    for step in (1, 2, 4):
        erp.mutate(third, seed=4, step=step, updates=30, inserts=40, deletes=6)

    assert _checksums(first) == _checksums(second)
    assert _checksums(first) != _checksums(third)
    for table in erp.TABLES:
        order = ", ".join(erp.PRIMARY_KEYS[table])
        query = f"SELECT * FROM ifsapp.{table} ORDER BY {order}"
        assert _fetch(first, query) == _fetch(second, query), table


def test_mutate_with_nothing_to_do_changes_nothing(erp_db: URL) -> None:
    erp.generate(erp_db, seed=6, scale=500)
    before = _checksums(erp_db)
    result = erp.mutate(erp_db, seed=6, step=1, updates=0, inserts=0)
    assert sum(result.updated.values()) + sum(result.inserted.values()) + sum(result.deleted.values()) == 0
    assert _checksums(erp_db) == before


def test_mutate_on_a_tiny_database_does_what_the_rows_allow(erp_db: URL) -> None:
    erp.generate(erp_db, seed=6, scale=10)
    result = erp.mutate(erp_db, seed=6, step=1, updates=50, inserts=1, deletes=2)
    # One customer and one order exist; the newest order is never deleted so numbers are never reused.
    assert result.updated["customer_info"] == 1
    assert result.deleted["customer_order"] == 0
    assert result.inserted == {
        "customer_info": 0,
        "customer_order": 1,
        "customer_order_line": 0,
        "inventory_transaction_hist": 0,
    }
    with pytest.raises(ValueError):
        erp.mutate(erp_db, seed=6, step=2, updates=-1, inserts=0)


def test_child_before_parent_lines_arrive_first_and_the_next_step_supplies_the_orders(erp_db: URL) -> None:
    erp.generate(erp_db, seed=12, scale=2000)

    first = erp.mutate(erp_db, seed=12, step=1, updates=0, inserts=20, child_before_parent=True)

    assert first.inserted["customer_order"] == 0
    assert first.inserted["customer_order_line"] == 9
    assert first.withheld_orders == [f"O{n:08d}" for n in range(361, 366)]
    assert _orphan_lines(erp_db) == first.withheld_orders
    line_high = int(_one(erp_db, "SELECT max(rowversion) FROM ifsapp.customer_order_line"))

    second = erp.mutate(erp_db, seed=12, step=2, updates=10, inserts=4)

    assert second.supplied_orders == first.withheld_orders
    assert second.inserted["customer_order"] == len(first.withheld_orders) + 1
    assert _orphan_lines(erp_db) == []
    supplied = _fetch(
        erp_db,
        "SELECT o.order_no, o.rowversion, o.total_amount, "
        "(SELECT sum(round(buy_qty_due * sale_unit_price, 2)) FROM ifsapp.customer_order_line l "
        " WHERE l.order_no = o.order_no) FROM ifsapp.customer_order o WHERE o.order_no = ANY(%s)",
        (first.withheld_orders,),
    )
    assert len(supplied) == len(first.withheld_orders)
    for _order_no, rowversion, total, lines_total in supplied:
        assert rowversion > line_high  # a keyset reader sees the child before its parent
        assert total == lines_total
    customers = {r[0] for r in _fetch(erp_db, "SELECT customer_id FROM ifsapp.customer_info")}
    assert {
        r[0]
        for r in _fetch(
            erp_db,
            "SELECT customer_no FROM ifsapp.customer_order WHERE order_no = ANY(%s)",
            (first.withheld_orders,),
        )
    } <= customers


def test_child_before_parent_is_deterministic(erp_factory: Callable[[], URL]) -> None:
    first, second = erp_factory(), erp_factory()
    for url in (first, second):
        erp.generate(url, seed=13, scale=1000)
        erp.mutate(url, seed=13, step=1, updates=5, inserts=12, deletes=2, child_before_parent=True)
        erp.mutate(url, seed=13, step=2, updates=5, inserts=12, deletes=2)
    assert _checksums(first) == _checksums(second)


# ----------------------------------------------------------------------------------------------
# Where the ERP database lives
# ----------------------------------------------------------------------------------------------


def test_erp_url_defaults_to_the_warehouse_name_with_erp_suffix(
    database_url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(erp.ERP_URL_ENV, raising=False)
    url = erp.erp_url()
    assert url.database == f"{database_url.database}_erp"
    assert url.host == database_url.host and url.port == database_url.port


def test_erp_url_honours_its_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(erp.ERP_URL_ENV, "postgresql://erp:secret@erp-host:5433/ifs")
    url = erp.erp_url()
    assert (url.host, url.port, url.database, url.username) == ("erp-host", 5433, "ifs", "erp")
    monkeypatch.setenv(erp.ERP_URL_ENV, "mysql://erp@erp-host/ifs")
    with pytest.raises(db.ConfigError, match=erp.ERP_URL_ENV):
        erp.erp_url()


def test_create_database_makes_an_empty_erp_on_the_warehouse_server(database_url: URL, pg_server: TestServer) -> None:
    name = f"erp_{uuid4().hex[:8]}"
    try:
        url = erp.create_database(name)
        assert url.database == name
        assert erp.row_counts(url) == dict.fromkeys(erp.TABLES, 0)
        assert erp.create_database(name) == url  # a second call finds it
    finally:
        pg_server.drop_database(name)
