"""Follow Up Boss through Dagster: real materializations, jobs, sensors and schedules on Postgres storage."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from sync_pipelines import operations
from sync_pipelines.definitions import defs
from sync_pipelines.defs.fub.declaration import FUB
from sync_pipelines.defs.fub.resources import FubResource
from sync_pipelines.lib import accounts, db
from sync_pipelines.lib.integration.builders import CHECK_NAME
from sync_pipelines.lib.resources import WarehouseResource
from sync_pipelines.sandbox.app import Sandbox, SandboxServer
from sync_pipelines_tests.helpers import run_cli


@pytest.fixture
def fub_sandbox() -> Iterator[SandboxServer]:
    sandbox = Sandbox(seed=7, scale=400, sources=["fub"])
    sandbox["fub"].rate_limits.update({"global": (0, 10.0), "events": (0, 10.0)})
    with SandboxServer(sandbox) as server:
        yield server


def _resources(server: SandboxServer) -> dict:
    return {"fub": FubResource(base_url=f"{server.url}/fub"), "warehouse": WarehouseResource()}


def _add_accounts(instance: dg.DagsterInstance) -> None:
    operations.add_account(instance, FUB, "acme", {"api_key": "fub_sandbox_key_acme"})
    operations.add_account(instance, FUB, "summit", {"api_key": "fub_sandbox_key_summit"})


def _count(engine: sa.Engine, query: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(query)).scalar_one())


def test_ranged_partition_backfill_runs_once_and_reports_metadata_and_the_reconciliation_check(
    database_url: URL, dagster_instance: dg.DagsterInstance, fub_sandbox: SandboxServer
) -> None:
    _add_accounts(dagster_instance)
    asset = operations.entity_asset(FUB, "people")
    result = dg.materialize(
        [asset],
        instance=dagster_instance,
        resources=_resources(fub_sandbox),
        tags={
            "dagster/asset_partition_range_start": "acme|2023-01",
            "dagster/asset_partition_range_end": "acme|2023-12",
        },
    )
    assert result.success
    core_events = [e for e in result.get_asset_materialization_events() if e.asset_key.path[1] == "core"]
    assert len(core_events) == 12  # one materialization per partition, all from one run
    metadata = core_events[0].step_materialization_data.materialization.metadata
    for key in ("rows_fetched", "rows_inserted", "rows_updated", "rows_unchanged", "rows_failed", "pages",
                "api_calls", "rate_limited_429", "duration_seconds", "batch_ids"):  # fmt: skip
        assert key in metadata
    expected = sum(fub_sandbox.sandbox["fub"].counts("acme", f"2023-{m:02d}")["people"] for m in range(1, 13))
    assert metadata["rows_inserted"].value == expected
    checks = result.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks) and checks[0].check_name == CHECK_NAME
    assert _count(db.get_engine(database_url), "SELECT count(*) FROM core.fub_people") == expected


def test_reference_entities_are_partitioned_by_account_only(
    database_url: URL, dagster_instance: dg.DagsterInstance, fub_sandbox: SandboxServer
) -> None:
    _add_accounts(dagster_instance)
    result = dg.materialize(
        [operations.entity_asset(FUB, "users")],
        instance=dagster_instance,
        resources=_resources(fub_sandbox),
        partition_key="summit",
    )
    assert result.success
    assert (
        _count(db.get_engine(database_url), "SELECT count(*) FROM core.fub_users")
        == (fub_sandbox.sandbox["fub"].counts("summit")["users"])
    )


def test_delta_job_syncs_every_account_and_one_revoked_key_fails_only_its_account(
    database_url: URL, dagster_instance: dg.DagsterInstance, fub_sandbox: SandboxServer
) -> None:
    _add_accounts(dagster_instance)
    fub_sandbox.sandbox["fub"].faults.update({"revoked_keys": ["fub_sandbox_key_acme"]})
    job = defs.resolve_job_def("fub_delta_sync")
    result = job.execute_in_process(instance=dagster_instance, resources=_resources(fub_sandbox), raise_on_error=False)
    assert not result.success  # the run says an account failed...
    engine = db.get_engine(database_url)
    with engine.connect() as conn:
        statuses = dict(conn.execute(sa.text("SELECT name, status FROM bridge.accounts")).all())
    assert statuses == {"acme": "error", "summit": "active"}
    # ...and the other account synced everything.
    assert (
        _count(engine, "SELECT count(*) FROM core.fub_people") == fub_sandbox.sandbox["fub"].counts("summit")["people"]
    )
    fub_sandbox.sandbox["fub"].faults.reset()
    again = job.execute_in_process(instance=dagster_instance, resources=_resources(fub_sandbox))
    assert again.success
    assert accounts.get_account(engine, "fub", "acme").status == "active"


def test_a_transient_failure_of_one_account_fails_only_that_entity_and_status_shows_why(
    database_url: URL, dagster_instance: dg.DagsterInstance, fub_sandbox: SandboxServer
) -> None:
    _add_accounts(dagster_instance)
    # The first entity of the first account (acme's users) meets a 5xx storm that outlasts its 3 attempts.
    fub_sandbox.sandbox["fub"].faults.update({"server_errors": 3})
    resources = {**_resources(fub_sandbox), "fub": FubResource(base_url=f"{fub_sandbox.url}/fub", max_attempts=3)}
    job = defs.resolve_job_def("fub_delta_sync")
    result = job.execute_in_process(instance=dagster_instance, resources=resources, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "acme" in failure.step_failure_data.error.message and "summit" not in failure.step_failure_data.error.message
    engine = db.get_engine(database_url)
    counts = fub_sandbox.sandbox["fub"].counts
    # The other account, and acme's other entities, synced.
    assert (
        _count(engine, "SELECT count(*) FROM core.fub_people") == counts("acme")["people"] + counts("summit")["people"]
    )
    assert _count(engine, "SELECT count(*) FROM core.fub_users") == counts("summit")["users"]
    # A transient failure is not the account's fault: it stays active, and status names the entity and the reason.
    assert accounts.get_account(engine, "fub", "acme").status != "error"
    rows = {(r["account"], r["entity"]): r for r in operations.status_rows(engine)}
    assert "HTTP 50" in str(rows[("acme", "users")]["entity_error"])
    assert rows[("acme", "people")]["entity_error"] is None and rows[("summit", "users")]["entity_error"] is None
    shown = run_cli("status")
    assert shown.returncode == 0 and "HTTP 50" in shown.stdout, shown.stderr
    again = job.execute_in_process(instance=dagster_instance, resources=resources)
    assert again.success
    assert _count(engine, "SELECT count(*) FROM core.fub_users") == counts("acme")["users"] + counts("summit")["users"]
    assert all(r["entity_error"] is None for r in operations.status_rows(engine))


def test_accounts_sensor_adds_each_new_account_as_a_partition_once(
    database_url: URL, dagster_instance: dg.DagsterInstance
) -> None:
    accounts.upsert_account(db.get_engine(database_url), "fub", "coastal", {"api_key": "k"})
    context = dg.build_sensor_context(instance=dagster_instance, resources={"warehouse": WarehouseResource()})
    result = defs.resolve_sensor_def("fub_accounts_to_partitions")(context)
    assert [r.partition_keys for r in result.dynamic_partitions_requests] == [["coastal"]]
    dagster_instance.add_dynamic_partitions("fub_accounts", ["coastal"])
    again = defs.resolve_sensor_def("fub_accounts_to_partitions")(
        dg.build_sensor_context(instance=dagster_instance, resources={"warehouse": WarehouseResource()})
    )
    assert not again.dynamic_partitions_requests and again.skip_reason is not None


def test_delta_schedule_runs_every_five_minutes_and_starts_running() -> None:
    schedule = defs.resolve_schedule_def("fub_delta_every_5_minutes")
    assert schedule.cron_schedule == "*/5 * * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert schedule.job_name == "fub_delta_sync"


def test_every_fub_entity_has_staged_and_core_assets_with_backfill_policy() -> None:
    keys = {spec.key.to_user_string() for spec in defs.resolve_all_asset_specs()}
    for entity in ("people", "deals", "stages", "events", "calls", "text_messages", "appointments", "users", "groups"):
        assert f"fub/staged/{entity}" in keys and f"fub/core/{entity}" in keys
    for asset in (operations.entity_asset(FUB, e) for e in FUB.load_order):
        assert asset.backfill_policy == dg.BackfillPolicy.single_run()


def test_cli_adds_an_account_syncs_a_month_through_dagster_and_prints_status(
    database_url: URL, dagster_template: str, fub_sandbox: SandboxServer
) -> None:
    env = {"SYNC_FUB_BASE_URL": f"{fub_sandbox.url}/fub"}
    added = run_cli("accounts", "add", "fub", "--name", "acme", "--api-key", "fub_sandbox_key_acme", env=env)
    assert added.returncode == 0, added.stderr
    assert "fub_sandbox_key_acme" not in added.stdout + added.stderr
    synced = run_cli("sync", "fub", "--account", "acme", "--entity", "people", "--period", "2024-05", env=env)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    expected = fub_sandbox.sandbox["fub"].counts("acme", "2024-05")["people"]
    assert f"inserted={expected}" in synced.stdout
    # A line per run as it ends (counts, seconds, rate), then the summary.
    assert f"fub: 1 Dagster run(s), {expected:,} records fetched in " in synced.stdout, synced.stdout
    assert "all succeeded" in synced.stdout and "/s) run=" in synced.stdout
    status = run_cli("status", env=env)
    assert status.returncode == 0 and "fub/acme" in status.stdout and "people" in status.stdout
    bad = run_cli("sync", "fub", "--entity", "nonsense", env=env)
    assert bad.returncode != 0 and "unknown entity" in bad.stderr


def test_status_is_a_constant_number_of_queries_whatever_the_number_of_accounts(database_url: URL) -> None:
    engine = db.get_engine(database_url)
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    counts = []
    for batch in (3, 60):
        for n in range(batch):
            accounts.upsert_account(engine, "fub", f"acct{batch}_{n}", {"api_key": "k"})
        statements.clear()
        rows = operations.status_rows(engine)
        counts.append(len(statements))
        assert len({r["account"] for r in rows}) == 3 + (batch == 60) * 60
    assert counts[0] == counts[1] < 10, counts
