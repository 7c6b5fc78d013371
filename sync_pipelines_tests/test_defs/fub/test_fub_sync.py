"""Follow Up Boss end to end through the engine: sandbox over HTTP -> real Postgres."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from sync_pipelines.defs.fub.client import FubClient
from sync_pipelines.defs.fub.declaration import FUB
from sync_pipelines.defs.fub.entities import COLLECTIONS, LOAD_ORDER
from sync_pipelines.lib import accounts, db
from sync_pipelines.lib.accounts import Account
from sync_pipelines.lib.http import AuthError, TransientError
from sync_pipelines.lib.integration import sync as fub_sync
from sync_pipelines.sandbox.app import Sandbox, SandboxServer

PERIODS = ["2023-12", "2024-01", "2024-02", "2024-03"]


@dataclass
class FubWorld:
    sandbox: Sandbox
    url: str
    engine: sa.Engine
    acme: Account
    summit: Account

    def client_for(self, account: Account) -> FubClient:
        key = accounts.secrets_for(self.engine, account.id)["api_key"]
        return FubClient(self.url, key, "SyncPipelines", "fub_sandbox_system_key", timeout=2.0,
                         backoff_initial=0.01, backoff_max=0.05, max_attempts=8)  # fmt: skip

    def backfill(self, account: Account, entity: str = "people", periods: list[str] | str | None = "default"):  # type: ignore[no-untyped-def]
        chosen = PERIODS if periods == "default" else periods
        return fub_sync.backfill(self.engine, FUB, self.client_for, account, entity, chosen)  # type: ignore[arg-type]

    def delta(self, account: Account, entity: str = "people"):  # type: ignore[no-untyped-def]
        return fub_sync.delta(self.engine, FUB, self.client_for, account, entity)

    def core_ids(self, account: Account, entity: str = "people", period: str | None = None) -> list[str]:
        query = f"SELECT source_id FROM core.fub_{entity} WHERE account_id = :a AND deleted_at IS NULL"
        params: dict = {"a": account.id}
        if period:
            query += " AND period_key = :p"
            params["p"] = period
        with self.engine.connect() as conn:
            return sorted(conn.execute(sa.text(query), params).scalars())

    def source_ids(self, account: str, period: str, collection: str = "people") -> list[str]:
        table = self.sandbox["fub"].accounts[account].tables[collection]
        after, before = fub_sync.month_window(period)
        from sync_pipelines.sandbox.store import Window

        view = table.query(Window(created_after=after, created_before=before))
        return sorted(str(r["id"]) for r in view.page(0, len(view)))

    def scalar(self, query: str, **params: object) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.text(query), params).scalar_one())


@pytest.fixture
def fub(database_url: URL) -> Iterator[FubWorld]:
    sandbox = Sandbox(seed=99, scale=600, sources=["fub"], webhook_speed=10_000)
    sandbox["fub"].rate_limits.update({"global": (0, 10.0), "events": (0, 10.0)})
    with SandboxServer(sandbox) as server:
        engine = db.get_engine(database_url)
        acme = accounts.upsert_account(engine, "fub", "acme", {"api_key": "fub_sandbox_key_acme"})
        summit = accounts.upsert_account(engine, "fub", "summit", {"api_key": "fub_sandbox_key_summit"})
        yield FubWorld(sandbox, f"{server.url}/fub", engine, acme, summit)


def test_backfill_of_several_periods_and_two_accounts_lands_exactly_the_sandbox_records(fub: FubWorld) -> None:
    for account in (fub.acme, fub.summit):
        for entity in LOAD_ORDER:
            # Children of these months may point at people of any earlier month: load every person.
            fub.backfill(account, entity, periods=None if entity == "people" else PERIODS)
    for name, account in (("acme", fub.acme), ("summit", fub.summit)):
        for period in PERIODS:
            assert fub.core_ids(account, "people", period) == fub.source_ids(name, period)
            assert fub.core_ids(account, "calls", period) == fub.source_ids(name, period, "calls")
        # Reference entities are read whole.
        assert len(fub.core_ids(account, "users")) == fub.sandbox["fub"].counts(name)["users"]
    assert fub.scalar("SELECT count(*) FROM bridge.failed_records") == 0
    assert fub.scalar("SELECT count(*) FROM bridge.pending_children WHERE status = 'pending'") == 0


def test_rerun_changes_nothing(fub: FubWorld) -> None:
    first = fub.backfill(fub.acme)
    assert first.counts.inserted > 0
    audit_rows = fub.scalar("SELECT count(*) FROM bridge.audit_log")
    second = fub.backfill(fub.acme)
    assert second.counts.inserted == second.counts.updated == second.counts.deleted == 0
    assert second.counts.unchanged == first.counts.inserted
    assert fub.scalar("SELECT count(*) FROM bridge.audit_log") == audit_rows


def test_every_batch_records_metrics_audit_rows_and_the_cursor(fub: FubWorld) -> None:
    report = fub.backfill(fub.acme)
    with fub.engine.connect() as conn:
        batch = (
            conn.execute(sa.text("SELECT * FROM bridge.sync_batches WHERE id = :id"), {"id": report.batch_ids[0]})
            .mappings()
            .one()
        )
        cursor = conn.execute(
            sa.text("SELECT cursor FROM bridge.sync_state WHERE entity_type LIKE 'people@backfill:%'")
        ).scalar_one()
        created = conn.execute(sa.text("SELECT count(*) FROM bridge.audit_log WHERE action = 'CREATE'")).scalar_one()
        logged_calls = conn.execute(sa.text("SELECT count(*) FROM bridge.sync_logs")).scalar_one()
    assert batch["status"] == "completed" and batch["rows_fetched"] > 0 and batch["api_calls"] > 0
    assert cursor == "done"
    assert created == report.counts.inserted
    assert logged_calls == report.stats.api_calls


@pytest.mark.parametrize(
    "fault",
    [
        {"rate_limit_storm": 6, "retry_after_seconds": 1},
        {"server_errors": 4},
        {"slow_requests": 2, "slow_seconds": 3.0},
        {"truncated_pages": 3},
        {"server_error_rate": 0.5},
    ],
    ids=["429-storm", "5xx", "timeouts", "truncated-json", "random-5xx"],
)
def test_faults_still_finish_with_exact_counts(fub: FubWorld, fault: dict) -> None:
    fub.sandbox["fub"].faults.update(fault)
    report = fub.backfill(fub.acme, periods=None)
    assert fub.core_ids(fub.acme) == sorted(str(i) for i in range(1, 601))
    if "rate_limit_storm" in fault:
        assert report.stats.rate_limited >= 6
    else:
        assert report.stats.retries > 0


def test_malformed_records_land_in_the_dlq_with_reasons_while_the_rest_load(fub: FubWorld) -> None:
    fub.sandbox["fub"].faults.update({"malformed_rate": 0.1})
    report = fub.backfill(fub.acme)
    assert report.counts.failed > 0
    with fub.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT source_id, raw_data, error_message, stage_failed FROM bridge.failed_records")
        ).all()
    assert len(rows) == report.counts.failed
    reasons = " ".join(r.error_message for r in rows)
    assert "required but missing" in reasons or "is not a valid timestamptz" in reasons
    assert all(r.raw_data is not None and r.stage_failed == "validation" for r in rows)
    loaded = sum(len(fub.core_ids(fub.acme, "people", p)) for p in PERIODS)
    expected = sum(len(fub.source_ids("acme", p)) for p in PERIODS)
    # Records with a bad `created` cannot be placed in a period: they are failed, not loaded anywhere.
    assert loaded + report.counts.failed >= expected > loaded


def test_dlq_records_are_retried_and_resolve_once_the_mapping_is_fixed(fub: FubWorld) -> None:
    fub.sandbox["fub"].faults.update({"malformed_rate": 0.1})
    fub.backfill(fub.acme)
    bad_updated = fub.scalar("SELECT count(*) FROM bridge.failed_records WHERE error_message LIKE 'updated:%'")
    assert bad_updated > 0
    # An operator decides: when `updated` is unusable, take `created` (no code change, the next run uses it).
    with fub.engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE bridge.field_mappings SET source_field = 'created', updated_at = now() "
                "WHERE integration = 'fub' AND entity_name = 'people' AND target_field = '_source_updated_at'"
            )
        )
        conn.execute(sa.text("UPDATE bridge.failed_records SET next_retry_at = now()"))
    fub.sandbox["fub"].faults.reset()
    report = fub.backfill(fub.acme, periods=PERIODS[:1])
    assert report.dlq_resolved >= bad_updated
    assert fub.scalar("SELECT count(*) FROM bridge.failed_records WHERE error_message LIKE 'updated:%' "
                      "AND resolved_at IS NULL") == 0  # fmt: skip


def test_records_inserted_between_pages_are_not_lost(fub: FubWorld) -> None:
    fub.sandbox["fub"].faults.update({"insert_between_pages": 2, "change_between_pages": 2})
    fub.backfill(fub.acme, periods=None)
    fub.sandbox["fub"].faults.reset()
    fub.delta(fub.acme)
    live = fub.sandbox["fub"].counts("acme")["people"]
    assert len(fub.core_ids(fub.acme)) == live


def test_equal_timestamp_ties_at_page_boundaries_are_not_lost_by_delta(fub: FubWorld) -> None:
    fub.sandbox["fub"].faults.update({"timestamp_ties": 150})
    report = fub.delta(fub.acme)
    assert len(fub.core_ids(fub.acme)) == fub.sandbox["fub"].counts("acme")["people"] == report.counts.inserted


def test_a_deleted_source_record_is_soft_deleted_with_an_audit_row(fub: FubWorld) -> None:
    fub.backfill(fub.acme, periods=None)
    deleted = fub.sandbox["fub"].mutate("acme", "people", deletes=3)["deleted"]
    report = fub.backfill(fub.acme, periods=None)
    assert report.soft_deleted == 3
    with fub.engine.connect() as conn:
        rows = (
            conn.execute(sa.text("SELECT source_id FROM core.fub_people WHERE deleted_at IS NOT NULL")).scalars().all()
        )
        audited = conn.execute(sa.text("SELECT count(*) FROM bridge.audit_log WHERE action = 'DELETE'")).scalar()
    assert sorted(rows) == sorted(str(i) for i in deleted)
    assert audited == 3


def test_a_deleted_source_record_is_soft_deleted_whatever_batch_last_wrote_its_row(fub: FubWorld) -> None:
    # Only rows the read's own batches wrote skip the probe of its staging: rows of no known batch are judged
    # like any other, and rows the read rewrote (changed at the source) stay live.
    fub.backfill(fub.acme, periods=None)
    with fub.engine.begin() as conn:
        conn.execute(sa.text("UPDATE core.fub_people SET _batch_id = NULL"))
    source = fub.sandbox["fub"]
    changed = source.mutate("acme", "people", updates=4)["updated"]
    deleted = source.mutate("acme", "people", deletes=3)["deleted"]
    report = fub.backfill(fub.acme, periods=None)
    assert report.soft_deleted == 3
    with fub.engine.connect() as conn:
        gone = (
            conn.execute(sa.text("SELECT source_id FROM core.fub_people WHERE deleted_at IS NOT NULL")).scalars().all()
        )
    assert sorted(gone) == sorted(str(i) for i in deleted)
    assert len(fub.core_ids(fub.acme)) == source.counts("acme")["people"]
    assert {str(i) for i in changed if i not in deleted} <= set(fub.core_ids(fub.acme))


def test_delta_brings_changes_since_the_cursor_and_is_idempotent(fub: FubWorld) -> None:
    fub.backfill(fub.acme, periods=None)
    result = fub.sandbox["fub"].mutate("acme", "people", creates=4, updates=5)
    first = fub.delta(fub.acme)
    assert first.counts.inserted == 4 and first.counts.updated == 5
    again = fub.delta(fub.acme)
    assert again.counts.inserted == again.counts.updated == 0
    with fub.engine.connect() as conn:
        updates = conn.execute(
            sa.text("SELECT old_value, new_value FROM bridge.audit_log WHERE action = 'UPDATE'")
        ).all()
    assert len(updates) == 5
    assert all(old != new for old, new in updates)
    assert {str(i) for i in result["created"]} <= set(fub.core_ids(fub.acme))


def test_an_out_of_order_older_version_never_moves_a_row_backwards(fub: FubWorld) -> None:
    fub.backfill(fub.acme, periods=None)
    fub.sandbox["fub"].mutate("acme", "people", updates=1, update_ids=[5])
    fub.delta(fub.acme)
    newest = fub.scalar("SELECT extract(epoch FROM _source_updated_at)::bigint FROM core.fub_people "
                        "WHERE source_id = '5'")  # fmt: skip
    # A stale copy (the original, older record) arrives again, e.g. from a replayed page.
    from sync_pipelines.defs.fub.entities import SPECS
    from sync_pipelines.lib.load import LoadContext, load_batch

    stale = fub.sandbox["fub"].accounts["acme"].tables["people"]._base(5)
    stale = {**stale, "created": stale["created"].strftime("%Y-%m-%dT%H:%M:%SZ"),
             "updated": stale["updated"].strftime("%Y-%m-%dT%H:%M:%SZ"), "name": "Stale Name",
             "lastActivity": None}  # fmt: skip
    with db.raw_connection(fub.engine.url) as conn:
        _, counts = load_batch(conn, SPECS["people"], LoadContext("fub", fub.acme.id, registry=SPECS), [stale])
    assert counts.updated == 0
    assert fub.scalar("SELECT extract(epoch FROM _source_updated_at)::bigint FROM core.fub_people "
                      "WHERE source_id = '5'") == newest  # fmt: skip


def test_a_runtime_field_mapping_change_takes_effect_on_the_next_run(fub: FubWorld) -> None:
    fub.backfill(fub.acme, periods=PERIODS[:1])
    with fub.engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE bridge.field_mappings SET transformation = 'upper', updated_at = now() "
                "WHERE integration = 'fub' AND entity_name = 'people' AND target_field = 'last_name'"
            )
        )
    report = fub.backfill(fub.acme, periods=PERIODS[:1])
    assert report.counts.updated == report.counts.fetched > 0
    with fub.engine.connect() as conn:
        names = conn.execute(sa.text("SELECT last_name FROM core.fub_people")).scalars().all()
    assert names and all(n == n.upper() for n in names)


def test_children_before_parents_wait_then_resolve_when_the_parent_lands(fub: FubWorld) -> None:
    fub.backfill(fub.acme, periods=None)
    fub.delta(fub.acme, "calls")
    fub.sandbox["fub"].faults.update({"child_before_parent": True})
    call_id = fub.sandbox["fub"].mutate("acme", "calls", creates=1)["created"][0]
    fub.sandbox["fub"].faults.reset()
    held = fub.delta(fub.acme, "calls")
    assert held.counts.pending == 1
    assert str(call_id) not in fub.core_ids(fub.acme, "calls")
    fub.sandbox["fub"].mutate("acme", "deals", updates=1)  # the next step: the person now exists at the source
    released = fub.delta(fub.acme, "people")
    assert released.counts.children_resolved == 1
    assert str(call_id) in fub.core_ids(fub.acme, "calls")
    assert fub.scalar("SELECT count(*) FROM bridge.pending_children WHERE status = 'pending'") == 0


def test_a_revoked_key_fails_only_its_account(fub: FubWorld) -> None:
    fub.sandbox["fub"].faults.update({"revoked_keys": ["fub_sandbox_key_acme"]})
    with pytest.raises(AuthError):
        fub.backfill(fub.acme)
    fub.backfill(fub.summit)
    with fub.engine.connect() as conn:
        states = dict(conn.execute(sa.text("SELECT name, status FROM bridge.accounts")).all())
        error = conn.execute(sa.text("SELECT error FROM bridge.accounts WHERE name = 'acme'")).scalar_one()
    assert states == {"acme": "error", "summit": "active"}
    assert "revoked" in error
    assert fub.core_ids(fub.summit) and not fub.core_ids(fub.acme)
    assert "fub_sandbox_key_acme" not in error


def test_reconciliation_compares_source_totals_with_warehouse_counts(fub: FubWorld) -> None:
    fub.backfill(fub.acme)
    rows = fub_sync.reconcile(fub.engine, FUB, fub.client_for, fub.acme, "people", PERIODS)
    assert [r["period"] for r in rows] == PERIODS
    assert all(r["source"] == r["warehouse"] > 0 for r in rows)
    with fub.engine.begin() as conn:
        conn.execute(sa.text("UPDATE core.fub_people SET deleted_at = now() WHERE period_key = :p"), {"p": PERIODS[0]})
    rows = fub_sync.reconcile(fub.engine, FUB, fub.client_for, fub.acme, "people", PERIODS[:1])
    assert rows[0]["source"] != rows[0]["warehouse"] == 0


def test_credentials_are_encrypted_at_rest(fub: FubWorld) -> None:
    with fub.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT secret_ciphertext, fingerprint FROM bridge.credentials")).all()
        everything = conn.execute(sa.text("SELECT string_agg(t::text, '') FROM bridge.accounts t")).scalar()
    assert stored and all(b"fub_sandbox_key" not in bytes(c) for c, _ in stored)
    assert "fub_sandbox_key" not in (everything or "")
    assert accounts.secrets_for(fub.engine, fub.acme.id) == {"api_key": "fub_sandbox_key_acme"}


def test_entities_and_collections_cover_the_issue(fub: FubWorld) -> None:
    assert set(COLLECTIONS) == {"people", "deals", "stages", "events", "calls", "text_messages", "appointments",
                                "users", "groups"}  # fmt: skip


def test_job_status_tracks_progress_and_completion(fub: FubWorld) -> None:
    report = fub.backfill(fub.acme, periods=None)
    with fub.engine.connect() as conn:
        job = conn.execute(sa.text("SELECT * FROM bridge.job_status WHERE job_type = 'backfill'")).mappings().one()
    assert job["status"] == "COMPLETED" and job["progress"] == 100
    assert job["records_processed"] == report.counts.fetched == job["source_count"]
    assert job["started_at"] <= job["completed_at"]


@pytest.mark.parametrize("returning_old", [True, False], ids=["postgres-18-returning-old", "older-postgres-subquery"])
def test_update_audit_rows_hold_the_previous_values(
    fub: FubWorld, returning_old: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sync_pipelines.lib import load

    if not returning_old:  # what a server before 18 runs: the old values read by a subquery in the same statement
        monkeypatch.setattr(load, "RETURNING_OLD_SINCE", 10**9)
    fub.backfill(fub.acme, periods=None)
    with fub.engine.connect() as conn:
        before = dict(conn.execute(sa.text("SELECT source_id, name FROM core.fub_people WHERE source_id IN "
                                           "('3', '4')")).all())  # fmt: skip
    fub.sandbox["fub"].mutate("acme", "people", updates=2, update_ids=[3, 4])
    assert fub.delta(fub.acme).counts.updated == 2
    with fub.engine.connect() as conn:
        audited = conn.execute(
            sa.text("SELECT source_id, old_value, new_value FROM bridge.audit_log WHERE action = 'UPDATE'")
        ).all()
        after = dict(conn.execute(sa.text("SELECT source_id, name FROM core.fub_people WHERE source_id IN "
                                          "('3', '4')")).all())  # fmt: skip
    assert sorted(source_id for source_id, _, _ in audited) == ["3", "4"]
    for source_id, old, new in audited:
        assert old["name"] == before[source_id] and new["name"] == after[source_id]
        assert old["_source_updated_at"] < new["_source_updated_at"]


def _dlq(fub: FubWorld, where: str = "true") -> list[sa.Row]:
    with fub.engine.connect() as conn:
        return conn.execute(
            sa.text(f"SELECT source_id, status, resolution FROM bridge.failed_records WHERE {where}")
        ).all()


def test_a_window_with_records_whose_id_cannot_be_read_soft_deletes_no_live_record(fub: FubWorld) -> None:
    fub.backfill(fub.acme, periods=None)
    fub.sandbox["fub"].faults.update({"malformed_rate": 0.1})
    # The history is read again from its start: a complete read, which on its own soft-deletes what it missed.
    report = fub.backfill(fub.acme, periods=None)
    without_id = _dlq(fub, "source_id IS NULL")
    assert without_id, "the sandbox served no record without an id: the test proves nothing"
    assert report.soft_deleted == 0
    assert report.soft_delete_skipped and "without a readable 'id'" in report.soft_delete_skipped[0]
    assert fub.scalar("SELECT count(*) FROM core.fub_people WHERE deleted_at IS NOT NULL") == 0
    assert fub.scalar("SELECT count(*) FROM bridge.audit_log WHERE action = 'DELETE'") == 0
    assert len(fub.core_ids(fub.acme)) == fub.sandbox["fub"].counts("acme")["people"]


def test_a_record_sent_to_the_dlq_with_a_readable_id_keeps_its_live_row_while_proven_deletes_happen(
    fub: FubWorld,
) -> None:
    fub.backfill(fub.acme, "stages", periods=None)
    deleted = fub.sandbox["fub"].mutate("acme", "stages", deletes=1)["deleted"]
    # At this rate the sandbox serves stage 5 with a bad `updated` (its id readable) and no other stage broken.
    fub.sandbox["fub"].faults.update({"malformed_rate": 0.1})
    report = fub.backfill(fub.acme, "stages", periods=None)
    assert [(r.source_id, r.status) for r in _dlq(fub)] == [("5", "pending")] and 5 not in deleted
    assert "5" in fub.core_ids(fub.acme, "stages")
    assert report.soft_deleted == len(deleted) == 1 and not report.soft_delete_skipped
    assert not {str(i) for i in deleted} & set(fub.core_ids(fub.acme, "stages"))


def test_dlq_rows_are_resolved_by_the_run_that_later_loads_their_record_cleanly(fub: FubWorld) -> None:
    fub.sandbox["fub"].faults.update({"malformed_rate": 0.1})
    first = fub.backfill(fub.acme, periods=None)
    assert first.counts.failed > 0 and _dlq(fub, "source_id IS NULL") and _dlq(fub, "source_id IS NOT NULL")
    fub.sandbox["fub"].faults.reset()  # the source fixed its data
    again = fub.backfill(fub.acme, periods=None)
    assert _dlq(fub, "resolved_at IS NULL") == []
    resolutions = {r.resolution.split(" by batch")[0] for r in _dlq(fub)}
    assert resolutions == {"loaded cleanly", "its period was re-read completely with every id readable"}
    assert again.metadata()["dlq_resolved"] == first.counts.failed
    assert len(fub.core_ids(fub.acme)) == fub.sandbox["fub"].counts("acme")["people"]


def test_a_record_that_fails_again_refreshes_its_one_open_dlq_row(fub: FubWorld) -> None:
    fub.sandbox["fub"].faults.update({"malformed_rate": 0.1})
    fub.backfill(fub.acme, periods=None)
    with_id = len(_dlq(fub, "source_id IS NOT NULL"))
    assert with_id > 0
    fub.backfill(fub.acme, periods=None)
    assert fub.scalar("SELECT count(*) FROM bridge.failed_records WHERE source_id IS NOT NULL") == with_id


def test_every_call_is_one_sync_logs_row_stamped_with_its_own_request_time(fub: FubWorld) -> None:
    fub.sandbox["fub"].faults.update({"rate_limit_storm": 3, "retry_after_seconds": 1, "server_errors": 4})
    report = fub.backfill(fub.acme, periods=None)
    with fub.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT created_at, status_code, url, entity_type, request_payload, response_payload "
                "FROM bridge.sync_logs ORDER BY created_at"
            )
        ).all()
        first_commit = conn.execute(sa.text("SELECT min(completed_at) FROM bridge.sync_batches")).scalar_one()
    assert len(rows) == report.stats.api_calls
    assert sum(1 for r in rows if r.status_code == 429) == report.stats.rate_limited == 3
    assert sum(1 for r in rows if r.status_code and r.status_code >= 500) == 4
    # Each row has the time its request was sent: distinct, and the storm's before the first batch committed.
    assert len({r.created_at for r in rows}) == len(rows)
    assert all(r.created_at < first_commit for r in rows if r.status_code != 200)
    assert {r.entity_type for r in rows} == {"people"}
    assert all(r.response_payload and "bytes" in r.response_payload for r in rows if r.status_code == 200)
    assert "fub_sandbox_key" not in str(rows)


def test_the_calls_of_a_sync_that_fails_are_logged_too(fub: FubWorld) -> None:
    fub.sandbox["fub"].faults.update({"server_errors": 20})
    with pytest.raises(TransientError):
        fub.delta(fub.acme)
    # The client makes 8 attempts (FubWorld.client_for): each one is on record, though no batch ever committed.
    assert fub.scalar("SELECT count(*) FROM bridge.sync_logs WHERE status_code >= 500") == 8
    assert fub.scalar("SELECT count(*) FROM bridge.sync_batches") == 0
    with fub.engine.connect() as conn:
        state = conn.execute(
            sa.text("SELECT status, error_message FROM bridge.sync_state WHERE entity_type = 'people@delta'")
        ).one()
    assert state.status == "error" and "HTTP 50" in state.error_message


def test_a_run_of_ties_deeper_than_the_offset_limit_is_walked_by_id_never_by_deep_offset(database_url: URL) -> None:
    from sync_pipelines.sandbox.fub import MAX_OFFSET

    # 3,000 people: the first 2,500 share one `updated` second, deeper than the sandbox lets an offset reach
    # (FUB enforces `next` past a depth), the last 500 share the next one: two runs of ties longer than a page.
    sandbox = Sandbox(seed=99, scale=3000, sources=["fub"], webhook_speed=10_000)
    sandbox["fub"].rate_limits.update({"global": (0, 10.0), "events": (0, 10.0)})
    ties = 2500
    assert ties > MAX_OFFSET
    sandbox["fub"].faults.update({"timestamp_ties": ties})
    with SandboxServer(sandbox) as server:
        engine = db.get_engine(database_url)
        acme = accounts.upsert_account(engine, "fub", "acme", {"api_key": "fub_sandbox_key_acme"})
        summit = accounts.upsert_account(engine, "fub", "summit", {"api_key": "fub_sandbox_key_summit"})
        world = FubWorld(sandbox, f"{server.url}/fub", engine, acme, summit)
        report = world.delta(acme)
        assert len(world.core_ids(acme)) == sandbox["fub"].counts("acme")["people"] == report.counts.inserted == 3000
        # The cursor carries on after the tied seconds: the next delta brings exactly what changed since.
        changed = sandbox["fub"].mutate("acme", "people", updates=3)["updated"]
        again = world.delta(acme)
        assert (again.counts.inserted, again.counts.updated, len(changed)) == (0, 3, 3)
        # A creation window deeper than the limit pages by `next`: the whole history in one window.
        whole = world.backfill(acme, periods=None)
        assert (whole.counts.inserted, whole.counts.updated, whole.counts.unchanged) == (0, 0, 3000)
        with engine.connect() as conn:
            calls = conn.execute(sa.text("SELECT status_code, request_payload FROM bridge.sync_logs")).all()
    assert {status for status, _ in calls} == {200}
    assert not [payload for _, payload in calls if "offset" in ((payload or {}).get("params") or {})]
