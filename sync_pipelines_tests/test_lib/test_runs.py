"""A run whose process is gone is failed and its pool slots freed, by Dagster's run monitoring (through our run
launcher's health check) and by `reap_dead_runs`; a run whose process lives, or cannot be checked, is left alone.
On a real Postgres-backed instance loaded from the project's dagster.yaml."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys

import dagster as dg
import pytest
from dagster._core.launcher import WorkerStatus
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._core.storage.tags import PARENT_RUN_ID_TAG
from dagster._core.test_utils import create_run_for_test
from dagster._daemon.monitoring.run_monitoring import monitor_started_run

from sync_pipelines.lib import runs
from sync_pipelines.lib.resources import WarehouseResource
from sync_pipelines_tests.e2e.helpers import wait_for

POOL = "fub_api"


@pytest.fixture
def instance(project_instance: dg.DagsterInstance) -> dg.DagsterInstance:
    return project_instance


RECORD_ITSELF = "import json; from sync_pipelines.lib import runs; print(json.dumps(runs.process_tags()))"


def dead_process_tags() -> dict[str, str]:
    """The identity a child process records for itself (through the product's code), once that child is gone."""
    child = subprocess.Popen(
        [sys.executable, "-c", RECORD_ITSELF],
        stdout=subprocess.PIPE,
        text=True,
    )
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 0
    return json.loads(out)


def started_run(instance: dg.DagsterInstance, tags: dict[str, str]) -> dg.DagsterRun:
    run = create_run_for_test(instance, status=DagsterRunStatus.STARTED, tags=tags)
    status = instance.event_log_storage.claim_concurrency_slot(POOL, run.run_id, "fub_people")
    assert status.is_claimed
    return run


def slot_holders(instance: dg.DagsterInstance) -> set[str]:
    return instance.event_log_storage.get_concurrency_info(POOL).active_run_ids


def test_dead_process_fails_its_run_and_frees_its_slot_live_or_unknown_ones_are_untouched(
    instance: dg.DagsterInstance,
) -> None:
    assert isinstance(instance.run_launcher, runs.ProcessCheckingRunLauncher)
    assert instance.run_launcher.supports_check_run_worker_health
    instance.event_log_storage.set_concurrency_slots(POOL, 4)

    dead_tags = dead_process_tags()
    assert dead_tags[runs.HOST_TAG] == socket.gethostname()
    dead = started_run(instance, dead_tags)
    alive = started_run(instance, runs.process_tags())
    # Tags copied from a parent run (run retries, re-execution) name the parent's process, not this run's.
    copied = create_run_for_test(
        instance, status=DagsterRunStatus.STARTED, tags={**dead_tags, PARENT_RUN_ID_TAG: dead.run_id}
    )
    elsewhere = create_run_for_test(
        instance, status=DagsterRunStatus.STARTED, tags={**dead_tags, runs.HOST_TAG: "another-host"}
    )
    untagged = create_run_for_test(instance, status=DagsterRunStatus.STARTED)

    def health(run: dg.DagsterRun) -> WorkerStatus:
        return instance.run_launcher.check_run_worker_health(run).status

    assert health(dead) == WorkerStatus.FAILED
    # Dagster's monitor fails a run for any other status than RUNNING/SUCCESS: everything unknown is RUNNING.
    assert [health(r) for r in (alive, copied, elsewhere, untagged)] == [WorkerStatus.RUNNING] * 4
    # A reused pid (same number, later start time) is not the recorded process.
    reused = {**runs.process_tags(), runs.PID_STARTED_TAG: "1"}
    assert not runs.process_alive(reused) and runs.process_alive(runs.process_tags())

    reaped = runs.reap_dead_runs(instance)

    assert [(r.run_id, r.was_unfinished) for r in reaped] == [(dead.run_id, True)]
    assert f"pid {dead_tags[runs.PID_TAG]} on {socket.gethostname()}" in reaped[0].describe()
    assert instance.get_run_by_id(dead.run_id).status == DagsterRunStatus.FAILURE
    assert slot_holders(instance) == {alive.run_id}
    for run in (alive, copied, elsewhere, untagged):
        assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.STARTED
    assert runs.reap_dead_runs(instance) == []


def test_run_monitoring_fails_a_launched_run_whose_worker_died_and_the_reaper_frees_its_slot(
    instance: dg.DagsterInstance,
) -> None:
    instance.event_log_storage.set_concurrency_slots(POOL, 2)
    worker_died = started_run(instance, {})
    # What the warehouse resource does at the start of a launched run, here from a process that then dies.
    instance.add_run_tags(worker_died.run_id, {**dead_process_tags(), runs.PROCESS_RUN_TAG: worker_died.run_id})
    record = instance.get_run_record_by_id(worker_died.run_id)

    monitor_started_run(instance, None, record, logging.getLogger("test"))  # type: ignore[arg-type]

    assert instance.get_run_by_id(worker_died.run_id).status == DagsterRunStatus.FAILURE
    # Dagster frees a finished run's slots after free_slots_after_run_end_seconds; the CLI does it now, since
    # the run's process is known to be gone.
    assert slot_holders(instance) == {worker_died.run_id}
    reaped = runs.reap_dead_runs(instance)
    assert [(r.run_id, r.was_unfinished) for r in reaped] == [(worker_died.run_id, False)]
    assert slot_holders(instance) == set()


def test_a_run_records_the_process_executing_it(dagster_instance: dg.DagsterInstance) -> None:
    @dg.asset
    def probe(warehouse: WarehouseResource) -> None:
        pass

    result = dg.materialize([probe], instance=dagster_instance, resources={"warehouse": WarehouseResource()})

    tags = dagster_instance.get_run_by_id(result.run_id).tags
    assert {k: v for k, v in tags.items() if k.startswith("sync_pipelines/")} == runs.process_tags(result.run_id)
    assert runs.recorded_for(dagster_instance.get_run_by_id(result.run_id))


def test_a_sync_waiting_for_a_slot_has_the_runs_that_died_meanwhile_reaped(instance: dg.DagsterInstance) -> None:
    instance.event_log_storage.set_concurrency_slots(POOL, 1)
    found: list[runs.Reaped] = []
    with runs.reaping(instance, found.append, interval=0.2):
        died_meanwhile = started_run(instance, dead_process_tags())
        wait_for(lambda: len(found) > 0, timeout=60, interval=0.1, what="the reaper thread to find the dead run")
    assert [r.run_id for r in found] == [died_meanwhile.run_id]
    assert instance.get_run_by_id(died_meanwhile.run_id).status == DagsterRunStatus.FAILURE
    assert slot_holders(instance) == set()
