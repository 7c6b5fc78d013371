from __future__ import annotations

import os
import subprocess
import sys

import dagster as dg
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import URL

from sync_pipelines.definitions import defs
from sync_pipelines.lib import db, schema
from sync_pipelines.lib.resources import WarehouseResource


def test_definitions_load_and_validate() -> None:
    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_all_asset_specs()


def test_dagster_definitions_validate_passes_with_the_project_instance_config(database_url: URL) -> None:
    db.ensure_databases()
    env = dict(os.environ)
    db.export_dagster_env(env)
    result = subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "dagster"),
            "definitions",
            "validate",
            "-w",
            str(db.PROJECT_ROOT / "workspace.yaml"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=db.PROJECT_ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All code locations passed validation" in result.stdout + result.stderr


def test_project_dagster_yaml_puts_storage_in_postgres_with_per_integration_run_limits(
    database_url: URL, tmp_path
) -> None:
    config = yaml.safe_load((db.PROJECT_ROOT / "dagster.yaml").read_text())
    # dagster-postgres's storage, on SYNC_DAGSTER_PG_URL or, for a `dg` command run on its own, the project's settings.
    assert config["storage"]["custom"] == {
        "module": "sync_pipelines.lib.dagster_storage", "class": "WarehouseServerStorage", "config": {}
    }  # fmt: skip
    limits = config["concurrency"]["runs"]["tag_concurrency_limits"]
    assert limits[0]["key"] == "sync_pipelines/integration"
    assert limits[0]["value"] == {"applyLimitPerUniqueValue": True}
    assert [(limit["key"], limit["limit"]) for limit in limits] == [
        ("sync_pipelines/integration", 2),
        ("sync_pipelines/webhooks", 2),
    ]
    assert config["run_retries"]["enabled"] is True

    env = {"DAGSTER_HOME": str(tmp_path / "dh")}
    db.export_dagster_env(env)
    assert env["SYNC_DAGSTER_PG_URL"].startswith("postgresql+psycopg2://")
    db.ensure_database(db.dagster_database_name())
    previous = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    (tmp_path / "dh").mkdir()
    (tmp_path / "dh" / "dagster.yaml").write_text((db.PROJECT_ROOT / "dagster.yaml").read_text())
    try:
        with dg.DagsterInstance.get() as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
            # Dagster's queue, which also promotes each run's integration op tag to a run tag (lib/run_coordinator.py).
            assert isinstance(instance.run_coordinator, dg.QueuedRunCoordinator)
            assert type(instance.run_coordinator).__name__ == "OpTagsRunCoordinator"
            assert instance.run_retries_enabled
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_bridge_health_materializes_counts_from_the_warehouse(
    database_url: URL, dagster_instance: dg.DagsterInstance
) -> None:
    with db.get_engine(database_url).begin() as conn:
        conn.execute(sa.insert(schema.accounts).values(integration="fub", name="broken", status="error"))
    from sync_pipelines.defs.platform.assets import bridge_health

    result = dg.materialize([bridge_health], instance=dagster_instance, resources={"warehouse": WarehouseResource()})
    assert result.success
    metadata = result.asset_materializations_for_node("platform__bridge_health")[0].metadata
    assert metadata["accounts_in_error"].value == 1
    assert metadata["dlq_open"].value == 0


def test_dg_check_defs_and_list_defs_pass_from_the_checkout_with_no_environment() -> None:
    from pathlib import Path

    from sync_pipelines import registry

    dg_cli = Path(sys.executable).parent / "dg"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYNC_", "DAGSTER_"))}
    checked = subprocess.run([str(dg_cli), "check", "defs"], cwd=db.PROJECT_ROOT, env=env, capture_output=True,
                             text=True, timeout=300)  # fmt: skip
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-3000:]
    assert "All definitions loaded successfully" in checked.stdout + checked.stderr
    listed = subprocess.run([str(dg_cli), "list", "defs", "--json"], cwd=db.PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert listed.returncode == 0, listed.stderr[-3000:]
    for name in registry.INTEGRATIONS:
        assert f"{name}_delta_sync" in listed.stdout


def test_the_sources_default_delta_schedules_are_staggered_at_most_two_on_one_minute() -> None:
    # Six deltas started together saturated a 2-core machine for ~40 s and held webhook batches in the queue.
    import itertools
    from collections import Counter

    from dagster._utils.schedules import cron_string_iterator

    from sync_pipelines import registry

    starts: Counter[int] = Counter()
    for integration in registry.INTEGRATIONS.values():
        fires = cron_string_iterator(0, integration.delta_cron, "UTC")
        minutes = [next(fires).minute for _ in range(12)]
        steps = [(later - earlier) % 60 for earlier, later in itertools.pairwise(minutes)]
        assert steps == [5] * 11, (integration.name, minutes)
        starts[minutes[0] % 5] += 1
    assert len(registry.INTEGRATIONS) > 2 and max(starts.values()) <= 2, starts
