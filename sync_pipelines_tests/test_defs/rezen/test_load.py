"""reZEN pages through the shared load path into core: exact counts, no DLQ, deltas and departures."""

from __future__ import annotations

from datetime import timedelta

import psycopg

from sync_pipelines.defs.rezen import lifecycle
from sync_pipelines.defs.rezen.entities import LOAD_ORDER, SPECS
from sync_pipelines.lib.load import soft_delete_missing
from sync_pipelines_tests.test_defs.rezen.conftest import RezenWorld


def backfill(rezen: RezenWorld, conn: psycopg.Connection, name: str, entity: str) -> None:
    """A whole-list read, as the kit's account-only backfill does it: load, then soft-delete what it lacked."""
    result = rezen.load(conn, name, entity, rezen.client(name).window_pages(entity, None, None, None))
    soft_delete_missing(conn, SPECS[entity], rezen.ctx(name), period_keys=None, seen_batches=result.batch_ids)


def test_every_entity_of_both_accounts_lands_in_core_exactly(rezen: RezenWorld, conn: psycopg.Connection) -> None:
    for name in ("keystone", "meridian"):
        for entity in LOAD_ORDER:
            backfill(rezen, conn, name, entity)
            assert rezen.core_ids(name, entity) == rezen.expected_ids(name, entity), f"{name}/{entity}"
    assert rezen.scalar("SELECT count(*) FROM bridge.failed_records") == 0
    assert rezen.scalar("SELECT count(*) FROM bridge.pending_children WHERE status = 'pending'") == 0
    # Typed columns came through: epoch-ms times, money, lifecycle state, dates, members.
    row = rezen.scalar(
        """
        SELECT count(*) FROM core.rezen_transactions c JOIN staging.rezen_transactions s ON s._batch_id = c._batch_id
          AND s.source_id = c.source_id
        WHERE c.price > 0 AND c.lifecycle_state IS NOT NULL AND c.contract_acceptance_date IS NOT NULL
          AND c.created_at_source = to_timestamp((s.raw ->> 'createdAt')::bigint / 1000.0)
          AND c.period_key = to_char(c.created_at_source AT TIME ZONE 'UTC', 'YYYY-MM')
        """
    )
    assert row == 60 + 24
    assert rezen.scalar("SELECT count(*) FROM core.rezen_teams WHERE jsonb_array_length(members) > 0") == 4
    # A second read changes nothing: the change guard holds for every entity.
    audit = rezen.scalar("SELECT count(*) FROM bridge.audit_log")
    for entity in LOAD_ORDER:
        result = rezen.load(conn, "keystone", entity, rezen.client().window_pages(entity, None, None, None))
        assert result.counts.inserted == result.counts.updated == 0, entity
    assert rezen.scalar("SELECT count(*) FROM bridge.audit_log") == audit


def test_group_counts_per_agent_match_the_source_after_a_load(rezen: RezenWorld, conn: psycopg.Connection) -> None:
    for name in ("keystone", "meridian"):
        client = rezen.client(name)
        for entity, source in (("transactions", client.transaction_counts_by_group),
                               ("listings", client.listing_counts_by_group)):  # fmt: skip
            backfill(rezen, conn, name, entity)
            assert lifecycle.warehouse_counts_by_group(conn, entity, rezen.accounts[name].id) == source()


def test_a_delta_rewalks_the_open_group_and_closes_the_departures(rezen: RezenWorld, conn: psycopg.Connection) -> None:
    backfill(rezen, conn, "keystone", "transactions")
    account = rezen.accounts["keystone"].id
    since = rezen.sim.now()
    open_before = lifecycle.open_in_core(conn, "transactions", account)
    # Open transactions move on (closed, terminated or to their next open state), one open one is deleted, and
    # some closed ones change too.
    victim, moving = open_before[-1], open_before[:-1]
    created = rezen.sim.mutate("keystone", "transactions", creates=2)["created"]
    for _ in range(10):  # until one of them has left the open group (each change closes one more often than not)
        rezen.sim.mutate("keystone", "transactions", updates=len(moving), update_ids=moving)
        current = {r["id"]: r["lifecycleState"]["state"] for r in rezen.records("keystone", "transactions")}
        if any(current[i] not in lifecycle.changeable_states("transactions") for i in moving):
            break
    closed_changes = rezen.sim.mutate("keystone", "transactions", updates=3, update_ids=[])["updated"]
    acct = rezen.sim.accounts["keystone"]
    assert acct.tables["transactions"].delete(acct.codecs["transactions"].decode(victim))
    client = rezen.client()
    result = rezen.load(conn, "keystone", "transactions", client.updated_pages("transactions", since, timedelta(5)))
    departures = lifecycle.close_departures(conn, client, rezen.ctx("keystone"), "transactions", open_before,
                                            result.batch_ids)  # fmt: skip
    assert result.counts.inserted == 2
    states = {r["id"]: r["lifecycleState"]["state"] for r in rezen.records("keystone", "transactions")}
    with rezen.engine.connect() as sa_conn:
        core = dict(sa_conn.exec_driver_sql(
            "SELECT source_id, lifecycle_state FROM core.rezen_transactions WHERE deleted_at IS NULL "
            "AND account_id = %(a)s", {"a": account}).all())  # fmt: skip
    for transaction_id in created + moving:
        assert core[transaction_id] == states[transaction_id]
    left = [i for i in moving if states[i] not in lifecycle.changeable_states("transactions")]
    assert departures.updated == len(left) > 0  # fetched by id, one request each
    assert departures.deleted == 1 and victim not in core  # the 404 by id is positive evidence
    # Changes made to already-closed transactions (CLOSED -> SETTLED) come with the next full read (or a webhook).
    missed = {i: states[i] for i in closed_changes if i not in open_before and core[i] != states[i]}
    backfill(rezen, conn, "keystone", "transactions")
    with rezen.engine.connect() as sa_conn:
        after_full_read = dict(sa_conn.exec_driver_sql(
            "SELECT source_id, lifecycle_state FROM core.rezen_transactions WHERE source_id = ANY(%(ids)s)",
            {"ids": list(missed)}).all())  # fmt: skip
    assert missed and after_full_read == missed
    assert rezen.core_ids("keystone", "transactions") == set(states)
    assert rezen.scalar("SELECT count(*) FROM bridge.failed_records") == 0


def test_malformed_records_go_to_the_dlq_with_reasons_while_the_rest_load(
    rezen: RezenWorld, conn: psycopg.Connection
) -> None:
    rezen.sim.faults.update({"malformed_rate": 0.1})
    pages = list(rezen.client().window_pages("transactions", None, None, None))
    broken = [
        r
        for p in pages
        for r in p.records
        if "id" not in r or not isinstance(r["createdAt"], int) or r["updatedAt"] is None
    ]
    rezen.load(conn, "keystone", "transactions", iter(pages))
    assert len(rezen.core_ids("keystone", "transactions")) == 60 - len(broken) > 0
    with rezen.engine.connect() as sa_conn:
        reasons = [r[0] for r in sa_conn.exec_driver_sql("SELECT error_message FROM bridge.failed_records").all()]
    assert len(reasons) == len(broken)
    assert all(("id: required" in r) or ("_created: not-a-timestamp" in r) or ("_updated: required" in r)
               for r in reasons), reasons  # fmt: skip


def test_a_contribution_before_its_agent_waits_for_the_agent(rezen: RezenWorld, conn: psycopg.Connection) -> None:
    backfill(rezen, conn, "keystone", "agents")
    rezen.sim.faults.update({"child_before_parent": True})
    since = rezen.sim.now()
    contribution = rezen.sim.mutate("keystone", "contributions", creates=1)["created"][0]
    client = rezen.client()
    result = rezen.load(conn, "keystone", "revshare_contributions",
                        client.updated_pages("revshare_contributions", since, timedelta(5)))  # fmt: skip
    assert result.counts.pending == 1 and contribution not in rezen.core_ids("keystone", "revshare_contributions")
    rezen.sim.faults.reset()
    rezen.sim.mutate("keystone", "transactions", updates=1)  # the agent joins at the next step
    rezen.load(conn, "keystone", "agents", client.updated_pages("agents", since, timedelta(5)))
    assert contribution in rezen.core_ids("keystone", "revshare_contributions")
