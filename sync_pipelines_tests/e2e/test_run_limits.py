"""Four backfills launched as the UI launches them (GraphQL, no run tags given), run by a real webserver and daemon
with the project's dagster.yaml: every run carries its integration's run tag (lib/run_coordinator.py), and the
start and end times Dagster recorded show no more of one integration's runs at once than the configured limit, and
that many at some moment, so more would have been seen had the limit not held.

For the runs to overlap at all, each must outlast the launches of the next ones: the queue launches one run at a
time, and here (no containers) a launch returns once the code server's run worker has loaded the definitions, some
seconds. The sandbox answers every request after SLOW_SECONDS, so a run lasts longer than three launches.

Run with SYNC_TEST_PLAIN_RUN_QUEUE=1 to see the check fail without the fix: the processes then get Dagster's plain
queued run coordinator, which adds no run tag, and all four runs are seen started at once, two of them waiting on
the fub_api pool's two slots (the issue's finding).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import URL

from sync_pipelines import operations
from sync_pipelines.defs.fub.declaration import FUB
from sync_pipelines.lib import project_files
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
# Every sandbox request waits this long: a run (two requests) outlasts the launches of the three after it.
SLOW_SECONDS = 7.0
RUN_FAILED = {"FAILURE", "CANCELED", "CANCELING"}
# The demonstration switch of the module docstring: Dagster's own coordinator, which adds no run tag.
PLAIN_QUEUE = os.environ.get("SYNC_TEST_PLAIN_RUN_QUEUE") == "1"


def instance_home(home: Path, *, plain_queue: bool = False) -> dict[str, Any]:
    """A DAGSTER_HOME holding the project's dagster.yaml (or, for the demonstration, the same with Dagster's plain
    queued run coordinator); returns the config written."""
    config = yaml.safe_load(project_files.path("dagster.yaml").read_text())
    if plain_queue:
        interval = config.pop("run_coordinator")["config"]["dequeue_interval_seconds"]
        config["run_queue"] = {"dequeue_interval_seconds": interval}
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return config


def configured_limit(config: dict[str, Any]) -> int:
    """The per-integration run limit of the dagster.yaml the processes run with."""
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


def test_most_at_once_counts_overlaps_not_touching_ends() -> None:
    assert most_at_once([(0, 2), (1, 3), (2, 4), (3, 5)]) == 2
    assert most_at_once([(0, 10), (1, 9), (2, 8)]) == 3
    assert most_at_once([(0, 1), (1, 2)]) == 1


def test_ui_backfills_without_run_tags_never_run_more_than_the_integration_limit_at_once(
    database_url: URL, dagster_instance: Any, tmp_path: Path
) -> None:
    config = instance_home(tmp_path / "dagster_home", plain_queue=PLAIN_QUEUE)
    limit = configured_limit(config)
    assert 1 < limit < len(ENTITIES), "the check needs room to see both the limit reached and exceeded"
    sandbox = Sandbox(seed=11, scale=60, sources=["fub"], webhook_speed=10_000.0)
    with SandboxServer(sandbox) as server, child_processes() as started:
        operations.add_account(dagster_instance, FUB, "acme", {"api_key": "fub_sandbox_key_acme"})
        env = dagster_env(
            {
                "DAGSTER_HOME": str(tmp_path / "dagster_home"),
                "SYNC_FUB_BASE_URL": f"{server.url}/fub",
                "SYNC_FUB_DELTA_CRON": NEVER,
            }
        )
        port = free_port()
        webserver = ChildProcess(
            "webserver",
            [str(VENV_BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            env,
            tmp_path,
        )
        started.append(webserver)

        def diagnose() -> str:
            return "\n".join(p.tail() for p in started)

        gql = GraphQL(f"http://127.0.0.1:{port}")

        def ready() -> bool:
            assert webserver.alive(), f"the webserver exited\n{diagnose()}"
            return _location_loaded(gql) is not None

        wait_for(ready, timeout=STARTUP_TIMEOUT, what="the webserver and its code location", diagnose=diagnose)
        sandbox["fub"].faults.update({"slow_requests": 10**6, "slow_seconds": SLOW_SECONDS})

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

        # The daemon starts with all four backfills waiting, so its first backfill iteration submits their runs
        # together (it iterates every 30 s: a backfill launched just after one waits that long).
        daemon = ChildProcess(
            "daemon", [str(VENV_BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], env, tmp_path
        )
        started.append(daemon)

        def all_runs_ended() -> list[dict[str, Any]] | None:
            """Each backfill's run, once every one has ended: the backfill's own status follows a daemon iteration
            later, and its single run holds its whole selection, so nothing more will be launched for it."""
            assert daemon.alive(), f"the daemon exited\n{diagnose()}"
            backfills = [gql(BACKFILL, {"id": i})["partitionBackfillOrError"] for i in backfill_ids]
            for backfill in backfills:
                assert backfill["status"] not in DONE_BAD, f"backfill {backfill}\n{diagnose()}"
            runs = [run for backfill in backfills for run in backfill["runs"]]
            for run in runs:
                assert run["status"] not in RUN_FAILED, f"run {run}\n{diagnose()}"
            if all(len(b["runs"]) == 1 for b in backfills) and all(r["status"] == "SUCCESS" for r in runs):
                return runs
            return None

        runs = wait_for(all_runs_ended, timeout=TIMEOUT, interval=1.0, what="four backfills' runs", diagnose=diagnose)

    assert len(runs) == len(ENTITIES), runs
    intervals, tags = [], {}
    for entity, run in zip(ENTITIES, runs, strict=True):
        record = dagster_instance.get_run_record_by_id(run["runId"])
        assert record is not None and record.dagster_run.is_success, record
        selection = {key.to_user_string() for key in record.dagster_run.asset_selection or ()}
        assert selection == {f"fub/staged/{entity}", f"fub/core/{entity}"}, selection
        assert record.start_time is not None and record.end_time is not None, record
        intervals.append((record.start_time, record.end_time))
        tags[run["runId"]] = record.dagster_run.tags.get(INTEGRATION_TAG)
    # Never more than the limit at once, and the limit itself reached: the runs were long enough to overlap, so a
    # queue that ignored the limit would have shown more.
    assert most_at_once(intervals) == limit, (most_at_once(intervals), intervals)
    # Added when each run was submitted, by the run coordinator: nobody gave the backfills a tag.
    assert set(tags.values()) == {"fub"}, tags
