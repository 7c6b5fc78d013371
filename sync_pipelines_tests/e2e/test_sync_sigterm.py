"""An operator's SIGTERM (`timeout`, a service manager) stops `sync fub` and `background tick`: no retry of the
interrupted step, the cursor (or checkpoint) at the last commit, exit code 128 + 15, and the rerun resumes there."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from sync_pipelines.defs.erp import background
from sync_pipelines.lib import accounts, db
from sync_pipelines.sandbox import erp
from sync_pipelines.sandbox.app import Sandbox, SandboxServer
from sync_pipelines_tests.e2e.helpers import (
    assert_people_exact,
    child_processes,
    cli_child,
    committed_batches,
    wait_for,
)
from sync_pipelines_tests.helpers import run_cli
from sync_pipelines_tests.test_defs.erp.conftest import erp_url  # noqa: F401  (the fixture, used below)

pytestmark = pytest.mark.e2e

SCALE = 8_000  # acme's people: 4 batches of 2,000
SLOW_SECONDS = 0.05  # every request answers after 50 ms: a batch takes about a second, so the signal lands mid-sync
# Bounds on waiting, not performance assertions.
START_TIMEOUT = 180.0
STOP_TIMEOUT = 60.0
SYNC = ["sync", "fub", "--account", "acme", "--entity", "people"]
STOPPED = "interrupted by SIGTERM: stopped at the last committed batch; rerun to resume"


def _scalar(engine: sa.Engine, query: str, **params: object) -> object:
    with engine.connect() as conn:
        return conn.execute(sa.text(query), params).scalar()


def test_sigterm_stops_sync_at_the_last_commit_without_a_retry_and_the_rerun_resumes(
    database_url: URL, dagster_instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    sandbox = Sandbox(seed=2026, scale=SCALE, sources=["fub"], webhook_speed=10_000.0)
    sandbox["fub"].faults.update({"slow_requests": 10**9, "slow_seconds": SLOW_SECONDS})
    total = sandbox["fub"].counts("acme")["people"]
    engine = db.get_engine(database_url)
    with SandboxServer(sandbox) as server, child_processes() as started:
        env = {"SYNC_FUB_BASE_URL": f"{server.url}/fub"}
        acme = accounts.upsert_account(engine, "fub", "acme", {"api_key": "fub_sandbox_key_acme"})
        child = cli_child("sync", SYNC, tmp_path, env)
        started.append(child)

        def committed_one() -> bool:
            assert child.alive(), f"the sync ended before committing a batch\n{child.tail()}"
            return committed_batches(engine, acme.id) >= 1

        wait_for(committed_one, timeout=START_TIMEOUT, interval=0.05, what="a committed batch", diagnose=child.tail)
        os.kill(child.pid, signal.SIGTERM)
        wait_for(
            lambda: child.proc.poll() is not None,
            timeout=STOP_TIMEOUT,
            what="the sync to stop after SIGTERM (before the fix the step is retried and the sync goes on)",
            diagnose=child.tail,
        )
        assert child.proc.returncode == 128 + signal.SIGTERM, child.tail()
        assert child.log_path.read_text().rstrip().endswith(STOPPED), child.tail()

        [run] = dagster_instance.get_runs()
        assert run.status == dg.DagsterRunStatus.FAILURE
        events = [e.dagster_event_type for e in dagster_instance.all_logs(run.run_id) if e.is_dagster_event]
        assert dg.DagsterEventType.STEP_FAILURE in events
        assert dg.DagsterEventType.STEP_UP_FOR_RETRY not in events and dg.DagsterEventType.STEP_RESTARTED not in events

        # The cursor is the last committed batch's, and core holds exactly what the committed batches loaded.
        with engine.connect() as conn:
            # One stream over the whole range of months: `people@backfill:<first>..<last>`.
            [(cursor,)] = conn.execute(
                sa.text(
                    "SELECT cursor FROM bridge.sync_state "
                    "WHERE account_id = :a AND entity_type LIKE 'people@backfill:%'"
                ),
                {"a": acme.id},
            ).all()
        last_batch_cursor = _scalar(
            engine,
            "SELECT cursor_after FROM bridge.sync_batches WHERE account_id = :a AND entity_name = 'people' "
            "AND status = 'completed' ORDER BY completed_at DESC, started_at DESC LIMIT 1",
            a=acme.id,
        )
        committed = _scalar(
            engine,
            "SELECT sum(rows_fetched) FROM bridge.sync_batches WHERE account_id = :a AND status = 'completed'",
            a=acme.id,
        )
        in_core = _scalar(engine, "SELECT count(*) FROM core.fub_people WHERE account_id = :a", a=acme.id)
        assert cursor is not None and cursor == last_batch_cursor
        assert 0 < committed == in_core < total

        rerun = run_cli(*SYNC, env=env, timeout=START_TIMEOUT)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        # It resumed at the cursor: only what the stopped sync had not committed was fetched.
        assert f"fetched={total - committed} inserted={total - committed} " in rerun.stdout, rerun.stdout

    assert_people_exact(engine, sandbox, "acme", acme.id)


BACKGROUND_NOW = "2026-11-23T19:00:00+00:00"


@pytest.mark.usefixtures("erp_url")  # an ERP database, named by SYNC_ERP_DATABASE_URL
def test_sigterm_stops_background_tick_at_the_last_committed_chunk(database_url: URL, tmp_path: Path) -> None:
    erp.generate(erp.erp_url(), seed=2026, scale=30_000)
    created = run_cli("background", "create", "--days", "1", "--chunk-size", "100", "--now", BACKGROUND_NOW)
    assert created.returncode == 0, created.stderr
    engine = db.get_engine(database_url)
    done = "SELECT coalesce(sum(rows_done), 0) FROM bridge.background_sync_schedule"

    with child_processes() as started:
        child = cli_child("tick", ["background", "tick", "--now", BACKGROUND_NOW], tmp_path)
        started.append(child)

        def moved_a_chunk() -> bool:
            assert child.alive(), f"the tick ended before a chunk was seen\n{child.tail()}"
            return int(_scalar(engine, done)) > 0  # type: ignore[arg-type]

        wait_for(moved_a_chunk, timeout=START_TIMEOUT, interval=0.05, what="a committed chunk", diagnose=child.tail)
        os.kill(child.pid, signal.SIGTERM)
        assert child.proc.wait(STOP_TIMEOUT) == 128 + signal.SIGTERM, child.tail()
        assert (
            child.log_path.read_text()
            .rstrip()
            .endswith("interrupted by SIGTERM: stopped at the last committed chunk; the next tick resumes from there")
        ), child.tail()

    # The interrupted chunk rolled back with its checkpoint: core holds exactly the rows the checkpoints count,
    # and no table was marked in error by the interrupt.
    rows_done = int(_scalar(engine, done))  # type: ignore[arg-type]
    in_core = sum(background.count_core(engine, entity) for entity in erp.row_counts(erp.erp_url()))
    assert 0 < rows_done == in_core < 30_000
    assert _scalar(engine, "SELECT count(*) FROM bridge.background_sync_schedule WHERE status = 'error'") == 0
