"""core.transaction and core.listing from SkySlope's core rows (unified.py), wired in as defs/core/transactions.py
will wire them: exactly the live SkySlope rows, statuses in the shared vocabulary, incremental."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from sync_pipelines.defs.core import transactions
from sync_pipelines.defs.core.transactions import UnifiedSource, update_unified
from sync_pipelines.defs.skyslope import unified
from sync_pipelines.defs.skyslope.entities import SPECS
from sync_pipelines_tests.test_defs.skyslope.conftest import NAMES, SkySlopeWorld


@pytest.fixture
def wired(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """SkySlope's entries in the unified tables' sources for this test (unless the lead's wiring already has them)."""
    for table, entry in (("transaction", unified.SALES), ("listing", unified.LISTINGS)):
        sources = transactions.SOURCES[table]
        if not any((s.integration, s.source_entity) == (entry.integration, entry.source_entity) for s in sources):
            monkeypatch.setitem(transactions.SOURCES, table, [*sources, UnifiedSource(*entry)])
    yield


def keys(skyslope: SkySlopeWorld, table: str, where: str = "deleted_at IS NULL") -> set[tuple[str, str]]:
    return {(a, s) for a, s in skyslope.rows(f"SELECT account_id::text, source_id FROM {table} WHERE {where}")}


def test_update_unified_holds_exactly_the_live_skyslope_rows_and_is_incremental(
    skyslope: SkySlopeWorld, wired: None
) -> None:
    for name in NAMES:
        for entity in ("users", "sales", "listings"):
            skyslope.backfill(name, entity)
    first = update_unified(skyslope.engine, None)
    sales, listings = (len(keys(skyslope, f"core.skyslope_{e}")) for e in ("sales", "listings"))
    assert first["transaction:skyslope/sales"] == sales == 300 + 120
    assert first["listing:skyslope/listings"] == listings == 150 + 60
    assert keys(skyslope, "core.transaction", "integration = 'skyslope' AND deleted_at IS NULL") == keys(
        skyslope, "core.skyslope_sales"
    )
    assert keys(skyslope, "core.listing", "integration = 'skyslope' AND deleted_at IS NULL") == keys(
        skyslope, "core.skyslope_listings"
    )
    for table in ("transaction", "listing"):
        incomplete = skyslope.scalar(
            f"SELECT count(*) FROM core.{table} WHERE status = 'unknown' OR address_key IS NULL OR price IS NULL "
            "OR agent_email IS NULL OR agent_source_id IS NULL OR created_at_source IS NULL"
        )
        assert incomplete == 0, table
    statuses = dict(skyslope.rows("SELECT source_status, min(status) FROM core.transaction GROUP BY 1"))
    assert statuses == {s: unified.SALE_STATUSES[s] for s in statuses} and {"active", "closed"} <= set(
        statuses.values()
    )
    listed = dict(skyslope.rows("SELECT source_status, min(status) FROM core.listing GROUP BY 1"))
    assert listed == {s: unified.LISTING_STATUSES[s] for s in listed} and "expired" in listed.values()
    # The agent's email is the SkySlope user's; the no-date acceptance is NULL in the unified row too.
    mismatched = skyslope.scalar(
        "SELECT count(*) FROM core.transaction t JOIN core.skyslope_sales s USING (account_id, source_id) "
        "JOIN core.skyslope_users u ON u.account_id = s.account_id AND u.source_id = s.agent_guid "
        "WHERE t.agent_email <> u.email OR t.contract_date IS DISTINCT FROM s.contract_acceptance_date"
    )
    assert mismatched == 0 and skyslope.scalar("SELECT count(*) FROM core.transaction WHERE contract_date IS NULL")
    # Nothing changed since: a later `since`, or everything again, writes nothing.
    marker = skyslope.now()
    assert update_unified(skyslope.engine, marker)["transaction_written"] == 0
    again = update_unified(skyslope.engine, None)
    assert again["transaction_written"] == again["listing_written"] == 0

    # A delta changes a few sales, and a re-read finds one gone: only those are written, the gone one soft-deleted.
    skyslope.sandbox.clock.advance(3600)
    changed = skyslope.sim.mutate("harbor", "sales", creates=1, updates=2)
    victim = sorted(skyslope.core_ids("harbor", "sales") - set(changed["updated"]))[0]
    acct = skyslope.sim.accounts["harbor"]
    acct.tables["sales"].delete(acct.codecs["sales"].decode(victim))
    skyslope.backfill("harbor", "sales")
    touched = skyslope.scalar("SELECT count(*) FROM core.skyslope_sales WHERE _synced_at > :m", m=marker)
    second = update_unified(skyslope.engine, marker - timedelta(seconds=1))
    assert second["transaction_written"] == touched == 1 + 2 + 1 and second["listing_written"] == 0
    assert keys(skyslope, "core.transaction", "integration = 'skyslope' AND deleted_at IS NULL") == keys(
        skyslope, "core.skyslope_sales"
    )
    assert keys(skyslope, "core.transaction", f"deleted_at IS NOT NULL AND source_id = '{victim}'")


def test_the_entries_name_only_unified_columns_and_real_core_columns(skyslope: SkySlopeWorld) -> None:
    for table, entry, entity in (("transaction", unified.SALES, "sales"), ("listing", unified.LISTINGS, "listings")):
        assert set(entry.columns) <= set(transactions.TABLE_COLUMNS[table])
        assert entry.table == f"{SPECS[entity].core.schema}.{SPECS[entity].core.name}"
        transactions._upsert_sql(table, UnifiedSource(*entry))  # raises on a column the unified table lacks
