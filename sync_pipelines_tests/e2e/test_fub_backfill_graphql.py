"""A partition backfill launched through Dagster's GraphQL API, run by a real webserver and daemon on Postgres
storage, lands exactly the sandbox's Follow Up Boss people of the chosen months."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from sync_pipelines import operations
from sync_pipelines.defs.fub.declaration import FUB
from sync_pipelines.lib import db
from sync_pipelines.sandbox.app import Sandbox, SandboxServer
from sync_pipelines_tests.e2e.helpers import (
    VENV_BIN,
    ChildProcess,
    GraphQL,
    child_processes,
    dagster_env,
    free_port,
    wait_for,
)

pytestmark = pytest.mark.e2e

PERIODS = ["2024-01", "2024-02", "2024-03"]
PARTITIONS = [f"acme|{p}" for p in PERIODS]
ASSET_KEYS = [["fub", "staged", "people"], ["fub", "core", "people"]]  # one multi_asset: both keys or neither
# The delta schedule is on by default; a tick during the test would load every person. Feb 29 never comes soon.
NEVER = "0 0 29 2 *"
STARTUP_TIMEOUT = 120.0
BACKFILL_TIMEOUT = 240.0

LOCATIONS = """
query {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries { name loadStatus locationOrLoadError { __typename ... on PythonError { message stack } } }
    }
  }
}
"""

LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on Error { message }
  }
}
"""

BACKFILL = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      id
      status
      partitionNames
      assetSelection { path }
      error { message stack }
      runs { runId status tags { key value } }
    }
    ... on PythonError { message stack }
    ... on Error { message }
  }
}
"""

DONE_OK = {"COMPLETED", "COMPLETED_SUCCESS"}
DONE_BAD = {"FAILED", "COMPLETED_FAILED", "CANCELED", "CANCELING", "FAILING"}


def _location_loaded(gql: GraphQL) -> dict[str, Any] | None:
    if gql.server_info() is None:
        return None
    workspace = gql(LOCATIONS)["workspaceOrError"]
    assert workspace["__typename"] == "Workspace", workspace
    entries = {e["name"]: e for e in workspace["locationEntries"]}
    entry = entries.get("sync_pipelines")
    if entry is None or entry["loadStatus"] != "LOADED":
        return None
    location = entry["locationOrLoadError"]
    assert location["__typename"] == "RepositoryLocation", f"code location failed to load: {location}"
    return entry


def test_partition_backfill_through_graphql_lands_exact_counts(
    database_url: URL, dagster_instance: Any, tmp_path: Path
) -> None:
    sandbox = Sandbox(seed=7, scale=400, sources=["fub"], webhook_speed=10_000.0)
    sandbox["fub"].rate_limits.update({"global": (0, 10.0), "events": (0, 10.0)})
    engine = db.get_engine(database_url)
    with SandboxServer(sandbox) as server, child_processes() as started:
        acme = operations.add_account(dagster_instance, FUB, "acme", {"api_key": "fub_sandbox_key_acme"})
        operations.add_account(dagster_instance, FUB, "summit", {"api_key": "fub_sandbox_key_summit"})

        env = dagster_env({"SYNC_FUB_BASE_URL": f"{server.url}/fub", "SYNC_FUB_DELTA_CRON": NEVER})
        assert env["SYNC_DATABASE_URL"] and env["SYNC_DAGSTER_DATABASE"] == f"{database_url.database}_dagster"
        port = free_port()
        webserver = ChildProcess(
            "webserver",
            [str(VENV_BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            env,
            tmp_path,
        )
        started.append(webserver)
        daemon = ChildProcess(
            "daemon", [str(VENV_BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], env, tmp_path
        )
        started.append(daemon)

        def diagnose() -> str:
            return "\n".join(p.tail() for p in started)

        gql = GraphQL(f"http://127.0.0.1:{port}")

        def ready() -> bool:
            assert webserver.alive() and daemon.alive(), f"a Dagster process exited\n{diagnose()}"
            return _location_loaded(gql) is not None

        wait_for(ready, timeout=STARTUP_TIMEOUT, what="the webserver and its code location", diagnose=diagnose)

        launched = gql(
            LAUNCH,
            {
                "params": {
                    "partitionNames": PARTITIONS,
                    "assetSelection": [{"path": path} for path in ASSET_KEYS],
                    "title": "e2e: fub people, acme, 2024-01..2024-03",
                }
            },
        )["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        backfill_id = launched["backfillId"]

        def finished() -> dict[str, Any] | None:
            assert daemon.alive(), f"the daemon exited\n{diagnose()}"
            backfill = gql(BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
            assert backfill["__typename"] == "PartitionBackfill", backfill
            assert backfill["status"] not in DONE_BAD, f"backfill ended {backfill['status']}: {backfill}\n{diagnose()}"
            return backfill if backfill["status"] in DONE_OK else None

        backfill = wait_for(
            finished, timeout=BACKFILL_TIMEOUT, interval=1.0, what=f"backfill {backfill_id}", diagnose=diagnose
        )

        assert sorted(backfill["partitionNames"]) == PARTITIONS
        assert sorted(a["path"] for a in backfill["assetSelection"]) == sorted(ASSET_KEYS)
        runs = backfill["runs"]
        assert runs, backfill
        assert all(r["status"] == "SUCCESS" for r in runs), runs
        for run in runs:
            assert {"key": "dagster/backfill", "value": backfill_id} in run["tags"], run

        # Dagster's own record, read from the same Postgres storage the processes wrote.
        for run in runs:
            stored = dagster_instance.get_run_by_id(run["runId"])
            assert stored is not None and stored.is_success, stored
            # The run recorded its own run worker, the process run monitoring checks (lib/runs.py).
            assert stored.tags.get("sync_pipelines/process_run") == stored.run_id, stored.tags
            assert int(stored.tags["sync_pipelines/pid"]) not in {webserver.pid, daemon.pid}, stored.tags

        expected = {p: sandbox["fub"].counts("acme", p)["people"] for p in PERIODS}
        assert all(expected.values()), expected
        with engine.connect() as conn:
            per_period = dict(
                conn.execute(
                    sa.text(
                        "SELECT period_key, count(*) FROM core.fub_people WHERE account_id = :a AND deleted_at IS NULL "
                        "GROUP BY period_key"
                    ),
                    {"a": acme.id},
                ).all()
            )
            other_accounts = conn.execute(
                sa.text("SELECT count(*) FROM core.fub_people WHERE account_id <> :a"), {"a": acme.id}
            ).scalar_one()
            duplicates = conn.execute(
                sa.text(
                    "SELECT count(*) FROM (SELECT 1 FROM core.fub_people GROUP BY account_id, source_id "
                    "HAVING count(*) > 1) d"
                )
            ).scalar_one()
            batch_runs = set(
                conn.execute(
                    sa.text(
                        "SELECT DISTINCT dagster_run_id FROM bridge.sync_batches "
                        "WHERE account_id = :a AND entity_name = 'people'"
                    ),
                    {"a": acme.id},
                ).scalars()
            )
        assert per_period == expected
        assert other_accounts == 0
        assert duplicates == 0
        assert batch_runs and batch_runs <= {r["runId"] for r in runs}, (batch_runs, runs)
