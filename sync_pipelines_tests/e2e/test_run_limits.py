"""Four backfills launched as the UI launches them (GraphQL, no run tags given), run by a real webserver and daemon
with the project's dagster.yaml: every run carries its integration's run tag (lib/run_coordinator.py), and the
start and end times Dagster recorded show no more of one integration's runs at once than the configured limit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import URL

from sync_pipelines import operations
from sync_pipelines.defs.fub.declaration import FUB
from sync_pipelines.lib.integration.builders import INTEGRATION_TAG
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
from sync_pipelines_tests.e2e.test_fub_backfill_graphql import (
    BACKFILL,
    DONE_BAD,
    DONE_OK,
    LAUNCH,
    NEVER,
    STARTUP_TIMEOUT,
    _location_loaded,
)

pytestmark = pytest.mark.e2e

# Four backfills of one integration, each one run: one month of one account for four entities.
ENTITIES = ["people", "deals", "calls", "text_messages"]
PARTITION = "acme|2024-01"
TIMEOUT = 300.0


def configured_limit(dagster_home: str) -> int:
    """The per-integration run limit of the dagster.yaml the processes run with."""
    config = yaml.safe_load((Path(dagster_home) / "dagster.yaml").read_text())
    for rule in config["concurrency"]["runs"]["tag_concurrency_limits"]:
        if rule["key"] == INTEGRATION_TAG:
            return int(rule["limit"])
    raise AssertionError(f"no {INTEGRATION_TAG} limit in dagster.yaml")


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The largest number of intervals open at one instant (an end and a start at the same instant do not overlap)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    open_now = peak = 0
    for _, step in events:
        open_now += step
        peak = max(peak, open_now)
    return peak


def test_ui_backfills_without_run_tags_never_run_more_than_the_integration_limit_at_once(
    database_url: URL, dagster_instance: Any, tmp_path: Path
) -> None:
    sandbox = Sandbox(seed=11, scale=60, sources=["fub"], webhook_speed=10_000.0)
    with SandboxServer(sandbox) as server, child_processes() as started:
        operations.add_account(dagster_instance, FUB, "acme", {"api_key": "fub_sandbox_key_acme"})
        env = dagster_env({"SYNC_FUB_BASE_URL": f"{server.url}/fub", "SYNC_FUB_DELTA_CRON": NEVER})
        limit = configured_limit(env["DAGSTER_HOME"])
        assert 0 < limit < len(ENTITIES)
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

        backfill_ids = []
        for entity in ENTITIES:
            # What the UI's "Materialize" of a partition sends: an asset selection, partitions, no tags.
            launched = gql(
                LAUNCH,
                {
                    "params": {
                        "partitionNames": [PARTITION],
                        "assetSelection": [{"path": ["fub", layer, entity]} for layer in ("staged", "core")],
                    }
                },
            )["launchPartitionBackfill"]
            assert launched["__typename"] == "LaunchBackfillSuccess", launched
            backfill_ids.append(launched["backfillId"])

        def all_finished() -> list[dict[str, Any]] | None:
            assert daemon.alive(), f"the daemon exited\n{diagnose()}"
            backfills = [gql(BACKFILL, {"id": i})["partitionBackfillOrError"] for i in backfill_ids]
            for backfill in backfills:
                assert backfill["status"] not in DONE_BAD, f"backfill {backfill}\n{diagnose()}"
            return backfills if all(b["status"] in DONE_OK for b in backfills) else None

        backfills = wait_for(all_finished, timeout=TIMEOUT, interval=1.0, what="four backfills", diagnose=diagnose)

    run_ids = [run["runId"] for backfill in backfills for run in backfill["runs"]]
    assert len(run_ids) == len(ENTITIES), backfills
    intervals = []
    for run_id in run_ids:
        record = dagster_instance.get_run_record_by_id(run_id)
        assert record is not None and record.dagster_run.is_success, record
        # Added when the run was submitted, by the run coordinator: nobody gave the backfills a tag.
        assert record.dagster_run.tags.get(INTEGRATION_TAG) == "fub", record.dagster_run.tags
        assert record.start_time is not None and record.end_time is not None, record
        intervals.append((record.start_time, record.end_time))
    for backfill in backfills:
        assert not [t for t in backfill.get("tags", []) if t["key"] == INTEGRATION_TAG]
    assert most_at_once(intervals) <= limit, intervals
