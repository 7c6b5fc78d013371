"""The contract every integration on the kit keeps, run for each registered one against its simulator over real HTTP
and the embedded Postgres: exact backfill over entities and accounts, a rerun that changes nothing, faults that
still end exact, malformed records in the DLQ while the rest load, a SIGKILL halfway then a rerun that is exact,
a signed webhook applied and a badly signed one refused, and a reconciliation that notices a missing row.

Exactness is judged by the source's own totals (the reconciliation an operator runs against the real API), so the
suite needs nothing of an integration but its declaration and its subject (subjects.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import requests
import sqlalchemy as sa
from sqlalchemy.engine import URL

from sync_pipelines import registry
from sync_pipelines.definitions import defs
from sync_pipelines.lib import accounts, db
from sync_pipelines.lib.accounts import Account
from sync_pipelines.lib.integration import sync
from sync_pipelines.lib.resources import WarehouseResource
from sync_pipelines.sandbox.app import Sandbox, SandboxServer
from sync_pipelines.webhooks_app import ReceiverServer
from sync_pipelines_tests.contract.subjects import SUBJECTS, Subject, every_integration_has_a_subject

NAMES = sorted(SUBJECTS)


@dataclass
class World:
    subject: Subject
    sandbox: Sandbox
    root: str
    engine: sa.Engine
    accounts: list[Account]

    @property
    def integration(self) -> Any:
        return self.subject.integration

    @property
    def simulator(self) -> Any:
        return self.sandbox[self.subject.name]

    def resource(self) -> Any:
        return self.integration.sandbox_resource(self.root)

    def client_for(self, account: Account) -> Any:
        client = self.resource().client_for(self.engine, account)
        client.backoff_initial, client.backoff_max = 0.01, 0.05  # faults retried in milliseconds, not seconds
        client.max_attempts = 8
        return client

    def backfill(self, account: Account, entity: str) -> sync.SyncReport:
        return sync.backfill(self.engine, self.integration, self.client_for, account, entity, None)

    def backfill_all(self) -> list[sync.SyncReport]:
        return [self.backfill(a, e) for e in self.integration.load_order for a in self.accounts]

    def reconcile(self, account: Account, entity: str) -> list[dict[str, object]]:
        return sync.reconcile(self.engine, self.integration, self.client_for, account, entity, None)

    def scalar(self, query: str, **params: object) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.text(query), params).scalar_one())


def _world(subject: Subject, database_url: URL, scale: int) -> Iterator[World]:
    sandbox = Sandbox(seed=7, scale=scale, sources=[subject.name], webhook_speed=10_000.0)
    simulator = sandbox[subject.name]
    simulator.rate_limits.update({context: (0, 10.0) for context in simulator.rate_limits})
    engine = db.get_engine(database_url)
    with SandboxServer(sandbox) as server:
        added = [
            accounts.upsert_account(engine, subject.name, name, subject.secrets(simulator, name))
            for name in simulator.credentials()["accounts"]
        ]
        yield World(subject, sandbox, server.url, engine, added)


@pytest.fixture(params=NAMES)
def world(request: pytest.FixtureRequest, database_url: URL) -> Iterator[World]:
    subject = SUBJECTS[request.param]
    yield from _world(subject, database_url, subject.scale)


def _assert_exact(world: World, entities: tuple[str, ...] | None = None, only: Account | None = None) -> int:
    """Every total the source reports equals the live rows in core; returns how many were compared."""
    compared = 0
    for account in [only] if only else world.accounts:
        for entity in entities or world.integration.load_order:
            for row in world.reconcile(account, entity):
                if row["source"] is None:
                    continue
                compared += 1
                assert row["source"] == row["warehouse"], (world.subject.name, entity, row)
    return compared


def test_every_registered_integration_is_in_the_suite() -> None:
    assert every_integration_has_a_subject() == []
    assert set(NAMES) == set(registry.INTEGRATIONS)


def test_backfill_over_every_entity_and_account_is_exact_and_a_rerun_changes_nothing(world: World) -> None:
    first = world.backfill_all()
    assert sum(r.counts.inserted for r in first) > 0
    assert _assert_exact(world) >= len(world.accounts)
    assert world.scalar("SELECT count(*) FROM bridge.failed_records") == 0
    assert world.scalar("SELECT count(*) FROM bridge.pending_children WHERE status = 'pending'") == 0
    audit = world.scalar("SELECT count(*) FROM bridge.audit_log")
    again = world.backfill_all()
    assert [(r.counts.inserted, r.counts.updated, r.soft_deleted) for r in again] == [(0, 0, 0)] * len(again)
    assert world.scalar("SELECT count(*) FROM bridge.audit_log") == audit


@pytest.mark.parametrize(
    "fault",
    [{"rate_limit_storm": 4, "retry_after_seconds": 1}, {"server_errors": 4}, {"truncated_pages": 3}],
    ids=["429-storm", "5xx", "truncated-json"],
)
def test_faults_still_end_exact_and_every_call_is_logged(world: World, fault: dict) -> None:
    world.simulator.faults.update(fault)
    account = world.accounts[0]
    report = world.backfill(account, world.subject.main)
    assert report.stats.rate_limited >= 4 if "rate_limit_storm" in fault else report.stats.retries > 0
    world.simulator.faults.reset()
    assert _assert_exact(world, (world.subject.main,), account) == 1
    failed_calls = world.scalar("SELECT count(*) FROM bridge.sync_logs WHERE error_message IS NOT NULL")
    assert failed_calls >= 3


def test_malformed_records_go_to_the_dlq_with_reasons_while_the_rest_load(world: World) -> None:
    world.simulator.faults.update({"malformed_rate": 0.2})
    account = world.accounts[0]
    report = world.backfill(account, world.subject.main)
    assert report.counts.failed > 0
    with world.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT raw_data, error_message, stage_failed FROM bridge.failed_records")).all()
    assert len(rows) == report.counts.failed
    assert all(r.raw_data is not None and r.error_message and r.stage_failed == "validation" for r in rows)
    (total,) = [r["source"] for r in world.reconcile(account, world.subject.main)]
    loaded = report.counts.inserted
    assert isinstance(total, int) and loaded + report.counts.failed >= total > loaded


def test_reconciliation_notices_a_row_missing_from_core(world: World) -> None:
    account = world.accounts[0]
    world.backfill(account, world.subject.main)
    assert _assert_exact(world, (world.subject.main,), account) == 1
    table = world.integration.entity(world.subject.main).spec.core
    with world.engine.begin() as conn:
        conn.execute(
            sa.text(f"UPDATE {table.schema}.{table.name} SET deleted_at = now() WHERE id = "
                    f"(SELECT id FROM {table.schema}.{table.name} WHERE account_id = :a ORDER BY id LIMIT 1)"),
            {"a": account.id},
        )  # fmt: skip
    (row,) = world.reconcile(account, world.subject.main)
    assert row["source"] == row["warehouse"] + 1


def test_a_signed_webhook_is_applied_and_a_badly_signed_one_is_refused_and_kept_nowhere(
    world: World, database_url: URL, dagster_instance: dg.DagsterInstance
) -> None:
    if world.integration.webhooks is None:
        pytest.skip(f"{world.subject.name} declares no webhooks")
    assert world.subject.subscribe is not None and world.subject.change_one is not None
    account = world.accounts[0]
    world.backfill(account, world.subject.main)
    with ReceiverServer(database_url) as receiver:
        extra = world.subject.subscribe(world.simulator, receiver.url, account.name)
        accounts.upsert_account(
            world.engine, world.subject.name, account.name, {**world.subject.secrets(world.simulator, account.name),
                                                             **extra}
        )  # fmt: skip
        bad = requests.post(
            f"{receiver.url}/webhooks/{world.subject.name}/{account.name}",
            data=b'{"eventId":"forged","eventType":"TRANSACTION_UPDATED","event":"peopleUpdated"}',
            headers={"Content-Type": "application/json", "FUB-Signature": "0" * 64, "X-Real-Signature": "sha256=00"},
            timeout=10,
        )
        assert bad.status_code == 401
        assert world.scalar("SELECT count(*) FROM bridge.webhook_events") == 0

        world.sandbox.clock.advance(60)
        changed = world.subject.change_one(world.simulator, account.name)
        deadline = time.monotonic() + 20
        while world.scalar("SELECT count(*) FROM bridge.webhook_events") == 0:
            assert time.monotonic() < deadline, "no signed webhook reached the queue"
            time.sleep(0.05)
    table = world.integration.entity(world.subject.main).spec.core
    query = f"SELECT _row_hash FROM {table.schema}.{table.name} WHERE account_id = :a AND source_id = :s"
    with world.engine.connect() as conn:
        before = conn.execute(sa.text(query), {"a": account.id, "s": changed}).scalar()
    sensor = defs.resolve_sensor_def(f"{world.subject.name}_webhook_events")
    result = sensor(dg.build_sensor_context(instance=dagster_instance, resources={"warehouse": WarehouseResource()}))
    (run,) = result.run_requests
    job = defs.resolve_job_def(f"{world.subject.name}_webhook_apply")
    outcome = job.execute_in_process(
        run_config=run.run_config,
        instance=dagster_instance,
        resources={world.subject.name: world.resource(), "warehouse": WarehouseResource()},
        tags=run.tags,
    )
    assert outcome.success
    with world.engine.connect() as conn:
        after = conn.execute(sa.text(query), {"a": account.id, "s": changed}).scalar()
    assert after is not None and after != before
    assert world.scalar("SELECT count(*) FROM bridge.webhook_events WHERE status <> 'completed'") == 0


CHILD = """
import sys
from sync_pipelines import registry
from sync_pipelines.lib import accounts, db
from sync_pipelines.lib.integration import sync

name, root, account_name, entity = sys.argv[1:5]
integration = registry.INTEGRATIONS[name]
engine = db.get_engine()
resource = integration.sandbox_resource(root)
account = accounts.get_account(engine, name, account_name)
report = sync.backfill(engine, integration, lambda a: resource.client_for(engine, a), account, entity, None)
print("done", report.counts, flush=True)
"""


@pytest.mark.e2e
@pytest.mark.parametrize("name", NAMES)
def test_sigkill_halfway_then_a_rerun_is_exact_with_no_duplicate(name: str, database_url: URL, tmp_path: Path) -> None:
    subject = SUBJECTS[name]
    for world in _world(subject, database_url, subject.kill_scale):
        account = world.accounts[0]
        world.simulator.faults.update({"slow_requests": 10**6, "slow_seconds": 0.02})
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        log = (tmp_path / "child.log").open("wb")
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, name, world.root, account.name, subject.main],
            env=env, cwd=db.PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        committed = (
            f"SELECT count(*) FROM bridge.sync_batches WHERE status = 'completed' AND entity_name = '{subject.main}'"
        )
        deadline = time.monotonic() + 120
        while world.scalar(committed) < 1:
            assert child.poll() is None, (tmp_path / "child.log").read_text()
            assert time.monotonic() < deadline, "no batch committed"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
        log.close()
        world.simulator.faults.reset()
        report = world.backfill(account, subject.main)
        (total,) = [r["source"] for r in world.reconcile(account, subject.main)]
        # It resumed at the killed run's last commit: some, not all, of the records were read again.
        assert isinstance(total, int) and 0 < report.counts.fetched < total, (report.counts, total)
        assert report.counts.failed == 0
        assert _assert_exact(world, (subject.main,), account) == 1
        table = world.integration.entity(subject.main).spec.core
        duplicates = world.scalar(
            f"SELECT count(*) FROM (SELECT source_id FROM {table.schema}.{table.name} "
            "GROUP BY account_id, source_id HAVING count(*) > 1) d"
        )
        assert duplicates == 0


def test_every_delta_run_keeps_every_core_asset_fresh(world: World, dagster_instance: dg.DagsterInstance) -> None:
    from sync_pipelines.lib.integration import builders

    integration = world.integration
    dagster_instance.add_dynamic_partitions(
        builders.partitions(integration).accounts.name, [a.name for a in world.accounts]
    )
    for entity in integration.entities:
        spec = defs.resolve_assets_def(dg.AssetKey([integration.name, "core", entity.name])).specs_by_key[
            dg.AssetKey([integration.name, "core", entity.name])
        ]
        assert spec.freshness_policy is not None, entity.name
    job = defs.resolve_job_def(f"{integration.name}_delta_sync")
    result = job.execute_in_process(
        instance=dagster_instance, resources={integration.name: world.resource(), "warehouse": WarehouseResource()}
    )
    assert result.success
    materialized = {(e.asset_key.path[-1], e.partition) for e in result.get_asset_materialization_events()}
    current = builders.partitions(integration).periods.get_last_partition_key()
    expected = {
        (e.name, f"{a.name}|{current}" if e.by_period else a.name) for e in integration.entities for a in world.accounts
    }
    assert materialized == expected


def test_a_backfill_of_chosen_months_is_exact_per_month(world: World) -> None:
    monthly = [e for e in world.integration.entities if e.by_period]
    if not monthly:
        pytest.skip(f"{world.subject.name} reads every entity whole")
    entity = monthly[0]
    # Months that hold records: two contiguous ones (one window) and the last on its own.
    account = world.accounts[0]
    if entity.spec.parent is not None:  # its children would wait for it
        world.backfill(account, entity.spec.parent.entity)
    world.backfill(account, entity.name)
    table = entity.spec.core
    per_period = sa.text(
        f"SELECT period_key, count(*) FROM {table.schema}.{table.name} WHERE account_id = :a AND deleted_at IS NULL "
        "GROUP BY 1 ORDER BY 1"
    )
    with world.engine.begin() as conn:
        whole = dict(conn.execute(per_period, {"a": account.id}).all())  # what the whole-history read brought
        periods = sorted(whole)
        conn.execute(sa.text(f"DELETE FROM {table.schema}.{table.name} WHERE account_id = :a"), {"a": account.id})
        conn.execute(sa.text("DELETE FROM bridge.sync_state WHERE account_id = :a"), {"a": account.id})
    assert len(periods) >= 3
    chosen = [periods[0], periods[1], periods[-1]]
    report = sync.backfill(world.engine, world.integration, world.client_for, account, entity.name, chosen)
    rows = sync.reconcile(world.engine, world.integration, world.client_for, account, entity.name, chosen)
    assert [r["period"] for r in rows] == chosen
    # Each month holds what the whole-history read put there, and what the source reports where it reports a total.
    assert all(r["warehouse"] == whole[str(r["period"])] and r["source"] in (None, r["warehouse"]) for r in rows), rows
    in_core = world.scalar(f"SELECT count(*) FROM {table.schema}.{table.name} WHERE account_id = :a", a=account.id)
    assert in_core == report.counts.inserted == sum(int(r["warehouse"]) for r in rows)  # type: ignore[call-overload]
