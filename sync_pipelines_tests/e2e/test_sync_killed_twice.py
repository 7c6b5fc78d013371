"""`sync fub` killed with SIGKILL twice leaves two Dagster runs whose process is gone, each holding a slot of the
`fub_api` pool (limit 2). The next `sync fub` must start on its own and complete: it marks the dead runs failed and
frees their slots (the process each run recorded is gone) instead of waiting for a slot forever."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy.engine import URL

from sync_pipelines.lib import accounts, db
from sync_pipelines.sandbox.app import Sandbox, SandboxServer
from sync_pipelines_tests.e2e.helpers import (
    ChildProcess,
    assert_people_exact,
    child_processes,
    cli_child,
    committed_batches,
    wait_for,
)

pytestmark = pytest.mark.e2e

SCALE = 8_000  # acme's people: 4 batches of 2,000
# Every request answers after 50 ms: a batch takes about a second, so each kill lands mid-sync.
SLOW_SECONDS = 0.05
# A bound on waiting, not a performance assertion: a sync of this size takes seconds; blocked on the pool, forever.
RUN_TIMEOUT = 180.0
SYNC = ["sync", "fub", "--account", "acme", "--entity", "people"]


def test_sync_killed_twice_then_the_next_sync_frees_the_dead_runs_slots_and_completes(
    database_url: URL, dagster_instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    sandbox = Sandbox(seed=2025, scale=SCALE, sources=["fub"], webhook_speed=10_000.0)
    sandbox["fub"].faults.update({"slow_requests": 10**9, "slow_seconds": SLOW_SECONDS})
    engine = db.get_engine(database_url)
    with SandboxServer(sandbox) as server, child_processes() as started:
        env = {"SYNC_FUB_BASE_URL": f"{server.url}/fub"}
        acme = accounts.upsert_account(engine, "fub", "acme", {"api_key": "fub_sandbox_key_acme"})

        committed = 0
        killed = []
        for attempt in (1, 2):
            child = cli_child(f"sync-{attempt}", SYNC, tmp_path, env)
            started.append(child)

            def progressed(child: ChildProcess = child, before: int = committed) -> int | None:
                batches = committed_batches(engine, acme.id)
                assert child.alive(), f"{child.name} ended before committing a batch\n{child.tail()}"
                return batches if batches > before else None

            committed = wait_for(
                progressed, timeout=RUN_TIMEOUT, interval=0.05, what=f"sync {attempt} to commit a batch",
                diagnose=child.tail,
            )  # fmt: skip
            os.kill(child.pid, signal.SIGKILL)
            assert child.proc.wait(30) == -signal.SIGKILL, child.tail()
            killed.append(child)
        assert committed < SCALE // 2000, "the killed syncs finished the backfill: nothing left to prove"

        third = cli_child("sync-3", SYNC, tmp_path, env)
        started.append(third)
        wait_for(
            lambda: third.proc.poll() is not None,
            timeout=RUN_TIMEOUT,
            what="the third sync to finish (before the fix it waits for a fub_api slot forever)",
            diagnose=lambda: "\n".join(c.tail() for c in (*killed, third)),
        )
        assert third.proc.returncode == 0, third.tail()
        third_log = third.log_path.read_text()
        second_log = killed[1].log_path.read_text()

    runs = sorted(
        dagster_instance.get_runs(), key=lambda r: dagster_instance.get_run_record_by_id(r.run_id).create_timestamp
    )
    assert [r.status for r in runs] == [
        dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.SUCCESS,
    ], [(r.run_id, r.status) for r in runs]  # fmt: skip
    # Each later sync said which dead run it failed and freed (the second found the first, the third the second).
    for log, dead in ((second_log, runs[0]), (third_log, runs[1])):
        pid = dead.tags["sync_pipelines/pid"]
        assert f"run {dead.run_id[:8]} (pid {pid} on " in log and "had died: marked failed, its pool slots freed" in log
    assert dagster_instance.event_log_storage.get_concurrency_info("fub_api").active_run_ids == set()
    assert dagster_instance.event_log_storage.get_concurrency_run_ids() == set()
    assert_people_exact(engine, sandbox, "acme", acme.id)
