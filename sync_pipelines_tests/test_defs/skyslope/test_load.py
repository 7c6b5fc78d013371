"""SkySlope through the kit's syncs (lib/integration/sync.py) into core: exact against the source's own totals,
a session dying mid-backfill, .NET's "no date", the bulk feed's control bytes, deltas."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sync_pipelines.defs.skyslope.declaration import SKYSLOPE
from sync_pipelines.defs.skyslope.entities import LOAD_ORDER, SPECS
from sync_pipelines.lib import db, dlq
from sync_pipelines.lib.http import AuthError
from sync_pipelines.lib.integration import sync
from sync_pipelines.lib.load import LoadContext
from sync_pipelines_tests.test_defs.skyslope.conftest import NAMES, SkySlopeWorld


def assert_exact(skyslope: SkySlopeWorld, name: str, entity: str, periods: list[str] | None = None) -> None:
    rows = skyslope.reconcile(name, entity, periods)
    assert rows and all(r["source"] == r["warehouse"] for r in rows), (name, entity, rows)


def test_every_entity_of_both_brokerages_backfills_exactly_and_a_rerun_changes_nothing(
    skyslope: SkySlopeWorld,
) -> None:
    for name in NAMES:
        for entity in LOAD_ORDER:
            report = skyslope.backfill(name, entity)
            assert report.counts.failed == 0 and report.counts.inserted == len(skyslope.expected_ids(name, entity))
            assert skyslope.core_ids(name, entity) == skyslope.expected_ids(name, entity), (name, entity)
            assert_exact(skyslope, name, entity)
    assert skyslope.scalar("SELECT count(*) FROM bridge.failed_records") == 0
    # Typed columns came through: zone-less times as UTC, money, the property, the stage, the agent.
    typed = skyslope.scalar(
        """
        SELECT count(*) FROM core.skyslope_sales c
        JOIN staging.skyslope_sales s ON s._batch_id = c._batch_id AND s.source_id = c.source_id
        WHERE c.sale_price > 0 AND c.status IS NOT NULL AND c.stage IS NOT NULL AND c.street_name IS NOT NULL
          AND c.agent_email LIKE '%@%' AND c.escrow_closing_date IS NOT NULL
          AND c.created_at_source = ((s.raw ->> 'createdOn')::timestamp AT TIME ZONE 'UTC')
          AND c.period_key = to_char(c.created_at_source AT TIME ZONE 'UTC', 'YYYY-MM')
        """
    )
    assert typed == len(skyslope.expected_ids("harbor", "sales")) + len(skyslope.expected_ids("canyon", "sales"))
    audit = skyslope.scalar("SELECT count(*) FROM bridge.audit_log")
    for entity in LOAD_ORDER:
        again = skyslope.backfill("harbor", entity)
        assert (again.counts.inserted, again.counts.updated, again.soft_deleted) == (0, 0, 0), entity
    assert skyslope.scalar("SELECT count(*) FROM bridge.audit_log") == audit


def test_creation_months_backfill_and_reconcile_exactly_per_month(skyslope: SkySlopeWorld) -> None:
    periods = ["2023-12", "2024-01", "2024-02", "2024-06"]
    for entity in ("sales", "listings"):
        report = skyslope.backfill("harbor", entity, periods)
        expected = sum(skyslope.sim.counts("harbor", p)[entity] for p in periods)
        assert report.counts.inserted == expected > 0
        assert_exact(skyslope, "harbor", entity, periods)
    months = {p for (p,) in skyslope.rows("SELECT DISTINCT period_key FROM core.skyslope_sales")}
    assert months == set(periods)


def test_a_session_expiring_mid_backfill_is_renewed_and_the_backfill_ends_exact(skyslope: SkySlopeWorld) -> None:
    # Every session answers four requests, then expires: the backfill of a brokerage's sales outlives several.
    skyslope.sim.faults.update({"session_max_requests": 4})
    report = skyslope.backfill("harbor", "sales")
    skyslope.sim.faults.reset()
    assert report.counts.failed == 0
    assert skyslope.core_ids("harbor", "sales") == skyslope.expected_ids("harbor", "sales")
    assert_exact(skyslope, "harbor", "sales")
    refused = skyslope.scalar("SELECT count(*) FROM bridge.sync_logs WHERE status_code = 401")
    logins = skyslope.scalar("SELECT count(*) FROM bridge.sync_logs WHERE method = 'POST' AND url LIKE '%/auth/login'")
    assert refused >= 2 and logins == refused + 1  # each 401 cost one login and one repeated request
    assert skyslope.rows("SELECT status, error FROM bridge.accounts WHERE name = 'harbor'") == [("active", None)]


def test_a_revoked_key_fails_the_backfill_and_marks_only_that_account(skyslope: SkySlopeWorld) -> None:
    skyslope.sim.faults.update({"revoked_keys": [skyslope.sim.credentials()["accounts"]["harbor"]["access_key"]]})
    with pytest.raises(AuthError):
        skyslope.backfill("harbor", "offices")
    skyslope.backfill("canyon", "offices")
    states = dict(skyslope.rows("SELECT name, status FROM bridge.accounts"))
    assert states == {"harbor": "error", "canyon": "active"}


def test_dotnets_no_date_lands_as_null_and_every_other_date_as_written(skyslope: SkySlopeWorld) -> None:
    skyslope.backfill("harbor", "sales")
    no_date = skyslope.rows(
        """
        SELECT c.contract_acceptance_date FROM core.skyslope_sales c
        JOIN staging.skyslope_sales s ON s._batch_id = c._batch_id AND s.source_id = c.source_id
        WHERE s.raw ->> 'contractAcceptanceDate' = '0001-01-01T00:00:00'
        """
    )
    assert no_date and {d for (d,) in no_date} == {None}
    written = skyslope.scalar(
        """
        SELECT count(*) FROM core.skyslope_sales c
        JOIN staging.skyslope_sales s ON s._batch_id = c._batch_id AND s.source_id = c.source_id
        WHERE s.raw ->> 'contractAcceptanceDate' <> '0001-01-01T00:00:00'
          AND c.contract_acceptance_date = left(s.raw ->> 'contractAcceptanceDate', 10)::date
        """
    )
    assert written + len(no_date) == len(skyslope.expected_ids("harbor", "sales"))
    assert skyslope.scalar("SELECT count(*) FROM bridge.failed_records") == 0


def test_control_bytes_never_fail_a_batch_and_an_unreadable_file_goes_to_the_dlq_by_guid(
    skyslope: SkySlopeWorld,
) -> None:
    skyslope.sim.faults.update({"control_bytes_rate": 0.15})
    report = skyslope.backfill("harbor", "sales")
    expected = skyslope.expected_ids("harbor", "sales")
    failed = skyslope.rows(
        "SELECT source_id, error_message, raw_data ->> '_text' FROM bridge.failed_records WHERE resolved_at IS NULL"
    )
    assert 0 < report.counts.failed == len(failed) and report.counts.inserted == len(expected) - len(failed)
    assert all(guid in expected and "unreadable record: not UTF-8" in why and text for guid, why, text in failed)
    # Its GUID was read, so the file counts as seen: a later complete read soft-deletes nothing for it.
    assert report.soft_delete_skipped == [] and report.soft_deleted == 0
    assert skyslope.core_ids("harbor", "sales") == expected - {guid for guid, _, _ in failed}
    # `dlq retry` fetches each by GUID from the single-file endpoint, which serves it clean.
    client = skyslope.client_for(skyslope.accounts["harbor"])
    ctx = LoadContext(SKYSLOPE.name, skyslope.accounts["harbor"].id, registry=SKYSLOPE.specs)
    with db.raw_connection(skyslope.engine.url, autocommit=True) as conn:
        outcome = dlq.retry(conn, SPECS["sales"], ctx, fetch=sync.refetcher(SKYSLOPE, client, "sales"))
    assert outcome.resolved == len(failed) and outcome.still_failing == 0
    assert skyslope.core_ids("harbor", "sales") == expected
    skyslope.sim.faults.reset()
    assert_exact(skyslope, "harbor", "sales")


def test_malformed_files_go_to_the_dlq_with_their_reasons_while_the_rest_load(skyslope: SkySlopeWorld) -> None:
    skyslope.sim.faults.update({"malformed_rate": 0.1})
    report = skyslope.backfill("harbor", "sales")
    reasons = [why for (why,) in skyslope.rows("SELECT error_message FROM bridge.failed_records")]
    assert 0 < report.counts.failed == len(reasons)
    assert all("saleGuid: required" in r or "_created: not-a-date" in r for r in reasons), reasons
    # A file without modifiedOn is still a file: it loads, last changed when it was created.
    assert len(skyslope.core_ids("harbor", "sales")) == len(skyslope.expected_ids("harbor", "sales")) - len(reasons)


def test_a_delta_brings_what_changed_and_moves_the_cursor_to_the_newest_change(skyslope: SkySlopeWorld) -> None:
    for entity in LOAD_ORDER:
        skyslope.backfill("harbor", entity)
    skyslope.sandbox.clock.advance(3600)
    changed = skyslope.sim.mutate("harbor", "sales", creates=2, updates=3)
    skyslope.sim.mutate("harbor", "users", updates=1)
    reports = {e: sync.delta(skyslope.engine, SKYSLOPE, skyslope.client_for, skyslope.accounts["harbor"], e)
               for e in LOAD_ORDER}  # fmt: skip
    assert reports["sales"].counts.inserted == 2 and reports["sales"].counts.updated == 3
    assert (reports["users"].counts.updated, reports["offices"].counts.updated) == (1, 0)
    assert set(changed["created"]) <= skyslope.core_ids("harbor", "sales")
    for entity in LOAD_ORDER:
        assert_exact(skyslope, "harbor", entity)
    cursor = skyslope.rows("SELECT cursor FROM bridge.sync_state WHERE entity_type = 'sales@delta'")[0][0]
    newest = skyslope.rows("SELECT max(_source_updated_at) FROM core.skyslope_sales")[0][0]
    assert sync.parse_time(cursor) == newest
    # The next delta starts there (minus the overlap): the same files again at most, all unchanged.
    again = sync.delta(skyslope.engine, SKYSLOPE, skyslope.client_for, skyslope.accounts["harbor"], "sales",
                       overlap=timedelta(seconds=5))  # fmt: skip
    assert (again.counts.inserted, again.counts.updated) == (0, 0)
