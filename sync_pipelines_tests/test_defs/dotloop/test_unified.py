"""DotLoop's UnifiedSource entries (defs/dotloop/unified.py) through the unified update of defs/core/transactions.py:
listing loops fill core.listing and the others core.transaction, exactly, typed, with statuses mapped, the agent
found among the participants, incremental, and a merged loop's unified row soft-deleted."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sync_pipelines.defs.core import transactions
from sync_pipelines.defs.core.transactions import UnifiedSource, update_unified
from sync_pipelines.defs.dotloop import unified
from sync_pipelines.defs.dotloop.declaration import DOTLOOP
from sync_pipelines_tests.test_defs.dotloop.conftest import USERS, DotLoopWorld


@pytest.fixture(autouse=True)
def dotloop_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    """DotLoop's entries in the unified update, as the lead's one line in defs/core/transactions.py puts them (the
    other sources' entries stay; a DotLoop entry already there is not added twice)."""
    for table, entry in (("transaction", unified.TRANSACTIONS), ("listing", unified.LISTINGS)):
        others = [s for s in transactions.SOURCES[table] if s.integration != "dotloop"]
        monkeypatch.setitem(transactions.SOURCES, table, [*others, UnifiedSource(*entry)])


def keys(world: DotLoopWorld, query: str) -> set[tuple[str, str]]:
    return {(str(a), str(s)) for a, s in world.rows(query)}


def loops_of_kind(world: DotLoopWorld, listing: bool) -> set[tuple[str, str]]:
    test = "IN" if listing else "NOT IN"
    return keys(
        world,
        "SELECT account_id, source_id FROM core.dotloop_loops WHERE deleted_at IS NULL "
        f"AND transaction_type {test} ('LISTING_FOR_SALE', 'LISTING_FOR_LEASE')",
    )


def unified_keys(world: DotLoopWorld, table: str, live: bool = True) -> set[tuple[str, str]]:
    where = "integration = 'dotloop'" + (" AND deleted_at IS NULL" if live else "")
    return keys(world, f"SELECT account_id, source_id FROM core.{table} WHERE {where}")


def test_loops_fill_core_transaction_and_core_listing_exactly_and_incrementally(world: DotLoopWorld) -> None:
    for name in USERS:
        for entity in DOTLOOP.load_order:
            world.backfill(name, entity)
    first = update_unified(world.engine, None)
    transactions_, listings = loops_of_kind(world, listing=False), loops_of_kind(world, listing=True)
    assert transactions_ and listings
    assert unified_keys(world, "transaction") == transactions_ and unified_keys(world, "listing") == listings
    assert first["transaction:dotloop/loops"] == len(transactions_) and first["listing:dotloop/loops"] == len(listings)

    # Typed and mapped: one vocabulary, the address key, the price and dates of the detail sections, an agent.
    missing = world.scalar(
        "SELECT count(*) FROM core.transaction WHERE integration = 'dotloop' AND (address_key IS NULL OR price IS NULL "
        "OR expected_close_date IS NULL OR contract_date IS NULL OR agent_email IS NULL OR mls_number IS NULL "
        "OR source_entity <> 'loops' OR transaction_type IS NULL)"
    )
    assert missing == 0
    statuses = dict(
        world.rows("SELECT source_status, min(status) FROM core.transaction WHERE integration = 'dotloop' GROUP BY 1")
    )
    assert statuses == {s: unified.TRANSACTION_STATUSES.get(s, "unknown") for s in statuses}
    listing_statuses = dict(
        world.rows("SELECT source_status, min(status) FROM core.listing WHERE integration = 'dotloop' GROUP BY 1")
    )
    assert listing_statuses == {s: unified.LISTING_STATUSES.get(s, "unknown") for s in listing_statuses}
    assert "closed" in statuses.values() and "active" in listing_statuses.values()
    assert (
        world.scalar(
            "SELECT count(*) FROM core.transaction WHERE integration = 'dotloop' "
            "AND (closed_date IS NOT NULL) <> (source_status IN ('SOLD', 'LEASED'))"
        )
        == 0
    )
    # The agent is the loop's participant in the agent role of its side.
    profile = world.sim.users["acme"].default_profile
    loop_id, record = next(
        (i, r) for i in range(profile.loops.id_base, profile.loops.id_base + 60)
        if (r := profile.loops.get(i)) and r["transactionType"] == "PURCHASE_OFFER"
    )  # fmt: skip
    people = profile.participants.get_many(world.sim.participant_ids(profile, loop_id))
    agents = sorted((p for p in people if p["role"] in ("BUYING_AGENT", "LISTING_AGENT")),
                    key=lambda p: (p["role"] != "BUYING_AGENT", p["id"]))  # fmt: skip
    row = world.rows(
        "SELECT agent_email, agent_source_id, street, city, zip, address_key FROM core.transaction "
        "WHERE integration = 'dotloop' AND source_id = :s",
        s=str(loop_id),
    )[0]
    address = world.sim.loop_detail(profile, loop_id)["Property Address"]
    assert row[:2] == (agents[0]["email"].lower(), str(agents[0]["id"]))
    assert row[2:5] == (f"{address['Street Number']} {address['Street Name']}", address["City"],
                        address["Zip/Postal Code"])  # fmt: skip
    assert row[5].endswith(f"|{address['State/Prov'].lower()}|{address['Zip/Postal Code']}")
    assert record["status"] in unified.TRANSACTION_STATUSES or record["status"] == "ARCHIVED"

    # Nothing changed since: nothing written. A delta's changes and a merge: only those rows.
    marker = world.now()
    assert update_unified(world.engine, marker)["transaction_written"] == 0
    merged = world.sim.mutate("acme", "loops", deletes=1, updates=2)
    old, survivor = (str(i) for i in merged["merged_into"][0])
    world.backfill("acme", "loops")  # the full read soft-deletes the merged loop
    changed = world.scalar("SELECT count(*) FROM core.dotloop_loops WHERE _synced_at > :m", m=marker)
    second = update_unified(world.engine, marker - timedelta(seconds=1))
    assert 1 <= second["transaction_written"] + second["listing_written"] == changed
    assert unified_keys(world, "transaction") == loops_of_kind(world, listing=False)
    assert unified_keys(world, "listing") == loops_of_kind(world, listing=True)
    gone = [k for k in unified_keys(world, "transaction", live=False) | unified_keys(world, "listing", live=False)
            if k[1] == old]  # fmt: skip
    assert gone and all(k not in unified_keys(world, "transaction") | unified_keys(world, "listing") for k in gone)
    assert survivor in {s for _, s in unified_keys(world, "transaction") | unified_keys(world, "listing")}
