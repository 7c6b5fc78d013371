"""DotLoop through the kit's generic sync (lib/integration/sync.py) into this test's warehouse: a backfill of every
entity and account is exact and typed, a rerun changes nothing, a month backfill is exact, a delta after the
sandbox clock moved is exact, and a participant removed from a loop is soft-deleted by the delta's departures."""

from __future__ import annotations

from decimal import Decimal

from sync_pipelines.defs.dotloop.declaration import DOTLOOP
from sync_pipelines.defs.dotloop.entities import SPECS
from sync_pipelines.lib import db, dlq
from sync_pipelines.lib.integration import sync as kit_sync
from sync_pipelines.lib.load import LoadContext
from sync_pipelines_tests.test_defs.dotloop.conftest import USERS, DotLoopWorld


def backfill_all(world: DotLoopWorld) -> list:
    return [world.backfill(name, entity) for entity in DOTLOOP.load_order for name in USERS]


def test_a_backfill_through_the_kit_is_exact_typed_and_a_rerun_changes_nothing(world: DotLoopWorld) -> None:
    reports = backfill_all(world)
    for name in USERS:
        for entity in DOTLOOP.load_order:
            assert world.core_ids(name, entity) == world.expected_ids(name, entity), (name, entity)
    assert sum(r.counts.inserted for r in reports) == sum(
        len(world.expected_ids(n, e)) for n in USERS for e in DOTLOOP.load_order
    )
    assert world.scalar("SELECT count(*) FROM bridge.failed_records") == 0
    assert world.scalar("SELECT count(*) FROM bridge.pending_children") == 0
    # Loops carry their detail sections as typed columns, read in the same call as the loop.
    profile = world.sim.users["acme"].default_profile
    loop_id = profile.loops.id_base + 7
    sections = world.sim.loop_detail(profile, loop_id)
    row = world.rows(
        "SELECT street_number, street_name, city, state, zip, county, mls_number, price, closing_date, "
        "contract_agreement_date, transaction_number, profile_source_id, period_key, status "
        "FROM core.dotloop_loops WHERE source_id = :s",
        s=str(loop_id),
    )[0]
    address = sections["Property Address"]
    month, day, year = sections["Contract Dates"]["Closing Date"].split("/")
    assert row[:7] == (
        address["Street Number"], address["Street Name"], address["City"], address["State/Prov"],
        address["Zip/Postal Code"], address["County"], address["MLS Number"],
    )  # fmt: skip
    assert row[7] == Decimal(sections["Financials"]["Purchase/Sale Price"])
    assert row[8].isoformat() == f"{year}-{month}-{day}" and row[9] is not None
    assert row[10] == f"TX-{loop_id}" and row[11] == str(profile.id)
    assert row[12] == profile.loops.times(loop_id)[0].strftime("%Y-%m")  # type: ignore[index]
    # Participants point at their loop, in their loop's month.
    assert world.scalar(
        "SELECT count(*) FROM core.dotloop_participants p JOIN core.dotloop_loops l "
        "ON l.account_id = p.account_id AND l.source_id = p.loop_source_id AND l.period_key = p.period_key"
    ) == sum(len(world.expected_ids(n, "participants")) for n in USERS)

    audit = world.scalar("SELECT count(*) FROM bridge.audit_log")
    again = backfill_all(world)
    assert [(r.counts.inserted, r.counts.updated, r.soft_deleted) for r in again] == [(0, 0, 0)] * len(again)
    assert world.scalar("SELECT count(*) FROM bridge.audit_log") == audit


def test_a_backfill_of_chosen_months_holds_exactly_those_months(world: DotLoopWorld) -> None:
    world.backfill("acme", "loops")
    months = [k for (k,) in world.rows("SELECT DISTINCT period_key FROM core.dotloop_loops ORDER BY 1")]
    chosen = [months[0], months[1], months[-1]]
    with world.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM core.dotloop_loops")
        conn.exec_driver_sql("DELETE FROM bridge.sync_state")
    for entity in ("loops", "participants"):
        world.backfill("acme", entity, chosen)
        expected = set().union(*(world.expected_ids("acme", entity, m) for m in chosen))
        assert world.core_ids("acme", entity) == expected, entity


def test_a_delta_after_the_clock_moved_is_exact_and_removed_participants_are_soft_deleted(
    world: DotLoopWorld,
) -> None:
    backfill_all(world)
    world.sandbox.advance(2 * 3600)  # loops and participants created and changed in every profile, contacts too
    profile = world.sim.users["acme"].default_profile
    removed = world.sim.mutate("acme", "participants", deletes=2)["deleted"]
    changed = world.sim.mutate("acme", "loops", updates=3)["updated"]
    for name in USERS:
        for entity in DOTLOOP.load_order:
            world.delta(name, entity)
            assert world.core_ids(name, entity) == world.expected_ids(name, entity), (name, entity)
    soft_deleted = world.core_ids("acme", "participants", live=False) - world.core_ids("acme", "participants")
    assert soft_deleted == {str(i) for i in removed}  # by the participants delta's departures
    statuses = dict(world.rows("SELECT source_id, status FROM core.dotloop_loops WHERE source_id = ANY(:i)",
                               i=[str(i) for i in changed]))  # fmt: skip
    assert statuses == {str(i): profile.loops.get(i)["status"] for i in changed}  # type: ignore[index]
    # A second delta finds nothing new: every row unchanged.
    again = [world.delta(name, entity) for name in USERS for entity in DOTLOOP.load_order]
    assert sum(r.counts.inserted + r.counts.updated + r.soft_deleted for r in again) == 0


def test_dlq_refetch_finds_loops_and_participants_by_id_and_resolves_them(world: DotLoopWorld) -> None:
    """`dlq retry --refetch`: a DLQ'd participant is found in the loop its stored payload names (core has no row of
    it), a DLQ'd loop in the profile its payload names; served well again, both load and their rows resolve."""
    world.sim.faults.update({"malformed_rate": 0.2})
    for entity in ("loops", "participants"):
        world.backfill("acme", entity)
    world.sim.faults.reset()
    failed = dict(world.rows(
        "SELECT entity_name, count(*) FROM bridge.failed_records WHERE source_id IS NOT NULL GROUP BY 1"))  # fmt: skip
    assert failed.get("loops") and failed.get("participants")
    ctx = LoadContext("dotloop", world.accounts["acme"].id, registry=SPECS)
    client = world.client("acme")
    with db.raw_connection(world.engine.url, autocommit=True) as conn:
        for entity in ("loops", "participants"):
            outcome = dlq.retry(conn, SPECS[entity], ctx, fetch=kit_sync.refetcher(DOTLOOP, client, entity))
            assert outcome.resolved == failed[entity] and outcome.gone == 0, (entity, outcome)
    assert world.scalar("SELECT count(*) FROM bridge.failed_records WHERE source_id IS NOT NULL "
                        "AND resolved_at IS NULL") == 0  # fmt: skip
