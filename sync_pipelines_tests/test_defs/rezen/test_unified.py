"""core.transaction and core.listing from reZEN's core rows: exact, incremental, soft deletes, agent links."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import URL

from sync_pipelines.defs.core.transactions import TRANSACTION_SOURCES, update_unified
from sync_pipelines.defs.rezen.entities import SPECS
from sync_pipelines.lib import accounts, db, schema
from sync_pipelines.lib.load import soft_delete_missing
from sync_pipelines_tests.test_defs.rezen.conftest import RezenWorld


def backfill(rezen: RezenWorld, conn: psycopg.Connection, name: str, entity: str) -> None:
    result = rezen.load(conn, name, entity, rezen.client(name).window_pages(entity, None, None, None))
    soft_delete_missing(conn, SPECS[entity], rezen.ctx(name), period_keys=None, seen_batches=result.batch_ids)


def rows(rezen: RezenWorld, query: str) -> list[tuple]:
    with rezen.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(query)).all()]


def keys(rezen: RezenWorld, table: str, where: str = "deleted_at IS NULL") -> set[tuple[str, str]]:
    with rezen.engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT account_id::text, source_id FROM {table} WHERE {where}")).all()
    return {(a, s) for a, s in rows}


def test_update_unified_holds_exactly_the_live_rezen_rows_and_is_incremental(
    rezen: RezenWorld, conn: psycopg.Connection
) -> None:
    for name in ("keystone", "meridian"):
        for entity in ("agents", "transactions", "listings"):
            backfill(rezen, conn, name, entity)
    first = update_unified(rezen.engine, None)
    assert first["transaction_written"] == 60 + 24 and first["listing_written"] == 20 + 8
    assert keys(rezen, "core.transaction") == keys(rezen, "core.rezen_transactions")
    assert keys(rezen, "core.listing") == keys(rezen, "core.rezen_listings")
    unmapped = rezen.scalar(
        "SELECT count(*) FROM core.transaction WHERE status = 'unknown' OR address_key IS NULL OR price IS NULL "
        "OR agent_email IS NULL OR integration <> 'rezen' OR source_entity <> 'transactions'"
    )
    statuses = dict(rows(rezen, "SELECT r.lifecycle_state, min(t.status) FROM core.transaction t "
                                "JOIN core.rezen_transactions r USING (account_id, source_id) GROUP BY 1"))  # fmt: skip
    states = {state for (state,) in rows(rezen, "SELECT DISTINCT state FROM core.listing")}
    assert unmapped == 0
    mapping = TRANSACTION_SOURCES[0].statuses
    assert statuses == {state: mapping[state] for state in statuses} and "cancelled" in statuses.values()
    assert {len(s) for s in states} == {2}  # TEXAS -> TX
    # Nothing changed since: a later `since`, or everything again, writes nothing.
    marker = rezen.now()
    assert update_unified(rezen.engine, marker)["transaction_written"] == 0
    again = update_unified(rezen.engine, None)
    assert again["transaction_written"] == again["listing_written"] == 0

    # A delta changes a few rows and deletes one: only those are written, and the deleted one is soft-deleted.
    rezen.sim.mutate("keystone", "transactions", creates=1, updates=2)
    acct = rezen.sim.accounts["keystone"]
    victim = sorted(rezen.core_ids("keystone", "transactions"))[0]
    acct.tables["transactions"].delete(acct.codecs["transactions"].decode(victim))
    backfill(rezen, conn, "keystone", "transactions")
    changed = rezen.scalar("SELECT count(*) FROM core.rezen_transactions WHERE _synced_at > :m", m=marker)
    second = update_unified(rezen.engine, marker - timedelta(seconds=1))
    assert 1 < second["transaction_written"] == changed and second["listing_written"] == 0
    assert keys(rezen, "core.transaction") == keys(rezen, "core.rezen_transactions")
    assert keys(rezen, "core.transaction", f"deleted_at IS NOT NULL AND source_id = '{victim}'")


def test_agents_are_linked_to_the_participant_with_their_email(rezen: RezenWorld, conn: psycopg.Connection) -> None:
    for entity in ("agents", "transactions", "listings"):
        backfill(rezen, conn, "keystone", entity)
    update_unified(rezen.engine, None)
    marker = rezen.now()
    owner_email = rezen.sim.accounts["keystone"].owner["emailAddress"]
    # The same agent known to another integration (a FUB user, say), synced after the transactions were.
    fub = accounts.upsert_account(rezen.engine, "fub", "acme", {"api_key": "k"})
    with rezen.engine.begin() as sa_conn:
        participant_id = sa_conn.execute(
            sa.insert(schema.participant)
            .values(integration="fub", account_id=fub.id, source_entity="users", source_id="7", kind="agent",
                    email=owner_email.lower())
            .returning(schema.participant.c.id)
        ).scalar_one()  # fmt: skip
    linked = update_unified(rezen.engine, marker)
    assert linked["transaction_relinked"] == 60 and linked["listing_relinked"] == 20
    assert linked["transaction_written"] == 0  # no source row changed
    assert rezen.scalar("SELECT count(DISTINCT participant_id) FROM core.transaction") == 1
    assert rezen.scalar("SELECT count(*) FROM core.transaction WHERE participant_id = :p", p=participant_id) == 60
    assert update_unified(rezen.engine, rezen.now())["transaction_relinked"] == 0


def test_the_address_key_finds_one_property_however_each_system_writes_it(database_url: URL) -> None:
    same = [
        ("123 Main Street, Apt. 4B", "Austin", "TEXAS", "78701-1234"),  # reZEN: state names, a unit in the line
        ("123 main st #4b", "austin", "TX", "78701"),
        ("123 MAIN ST", "Austin ", "tx", "78701"),
    ]
    with db.get_engine(database_url).connect() as conn:
        key = sa.text("SELECT core.address_key(:street, :city, :state, :zip)")
        keys = {
            conn.execute(key, dict(zip(("street", "city", "state", "zip"), a, strict=True))).scalar_one() for a in same
        }
        other = conn.execute(key, {"street": "1600 North Pennsylvania Avenue NW Suite 200", "city": "Washington",
                                   "state": "District_of_Columbia", "zip": "20500"}).scalar_one()  # fmt: skip
        no_street = conn.execute(key, {"street": None, "city": "Austin", "state": "TX", "zip": "78701"}).scalar_one()
    assert keys == {"123 main st|austin|tx|78701"}
    assert other == "1600 n pennsylvania ave nw|washington|dc|20500"
    assert no_street is None
