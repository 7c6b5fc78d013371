"""A Follow Up Boss backfill killed with SIGKILL halfway, then run again, leaves exact counts and no duplicate
natural keys: every batch commits its rows together with the cursor, so the cursor is never ahead of the rows
and the rerun continues from it instead of starting over."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from sync_pipelines.defs.fub.client import DONE
from sync_pipelines.defs.fub.declaration import FUB
from sync_pipelines.defs.fub.resources import FubResource
from sync_pipelines.lib import accounts, db
from sync_pipelines.lib.integration import sync as fub_sync
from sync_pipelines.sandbox.app import Sandbox, SandboxServer
from sync_pipelines.sandbox.store import Window
from sync_pipelines_tests.e2e.helpers import backfill_child, child_processes, wait_for

pytestmark = pytest.mark.e2e

SCALE = 20_000  # acme's people: 10 batches of 2,000, so a kill after the second lands well before the end
KILL_AFTER_BATCHES = 2
WAIT_TIMEOUT = 120.0


def _state(engine: sa.Engine, account_id: object) -> dict[str, Any]:
    """What the warehouse holds for acme's people right now, all read in one snapshot."""
    with engine.connect() as conn:
        conn.execute(sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        params = {"a": account_id}
        batches = conn.execute(
            sa.text(
                "SELECT status, count(*), coalesce(sum(rows_fetched), 0), coalesce(sum(rows_inserted), 0), "
                "coalesce(sum(rows_failed), 0) FROM bridge.sync_batches "
                "WHERE account_id = :a AND entity_name = 'people' GROUP BY status"
            ),
            params,
        ).all()
        last_batch_cursor = conn.execute(
            sa.text(
                "SELECT cursor_after FROM bridge.sync_batches WHERE account_id = :a AND entity_name = 'people' "
                "AND status = 'completed' ORDER BY completed_at DESC, started_at DESC LIMIT 1"
            ),
            params,
        ).scalar()
        cursors = conn.execute(
            sa.text(
                "SELECT entity_type, cursor, records_synced FROM bridge.sync_state "
                "WHERE account_id = :a AND entity_type LIKE 'people@backfill:%'"
            ),
            params,
        ).all()
        core_rows = conn.execute(
            sa.text("SELECT count(*) FROM core.fub_people WHERE account_id = :a"), params
        ).scalar_one()
        jobs = conn.execute(
            sa.text(
                "SELECT status, count(*) FROM bridge.job_status "
                "WHERE account_id = :a AND job_type = 'backfill' AND entity_type = 'people' GROUP BY status"
            ),
            params,
        ).all()
    by_status = {row[0]: tuple(int(v) for v in row[1:]) for row in batches}
    completed = by_status.get("completed", (0, 0, 0, 0))
    return {
        "completed_batches": completed[0],
        "committed_fetched": completed[1],
        "committed_inserted": completed[2],
        "committed_failed": completed[3],
        "other_batches": {s: v for s, v in by_status.items() if s != "completed"},
        "last_batch_cursor": last_batch_cursor,
        "cursors": [tuple(c) for c in cursors],
        "core_rows": core_rows,
        "jobs": dict(jobs),
    }


def test_sigkill_halfway_then_rerun_leaves_exact_counts_and_no_duplicates(database_url: URL, tmp_path: Path) -> None:
    sandbox = Sandbox(seed=2024, scale=SCALE, sources=["fub"], webhook_speed=10_000.0)
    sandbox["fub"].rate_limits.update({"global": (0, 10.0), "events": (0, 10.0)})
    total = sandbox["fub"].counts("acme")["people"]
    engine = db.get_engine(database_url)
    # The sandbox is served from this process, so it outlives the sync process we kill.
    with SandboxServer(sandbox) as server, child_processes() as started:
        base_url = f"{server.url}/fub"
        acme = accounts.upsert_account(engine, "fub", "acme", {"api_key": "fub_sandbox_key_acme"})

        child = backfill_child(base_url, "acme", "people", tmp_path)
        started.append(child)

        def halfway() -> dict[str, Any] | None:
            state = _state(engine, acme.id)
            assert child.alive(), (
                f"the backfill process ended (exit {child.proc.returncode}) before {KILL_AFTER_BATCHES} committed "
                f"batches were seen; warehouse now: {state}\n{child.tail()}"
            )
            return state if state["completed_batches"] >= KILL_AFTER_BATCHES else None

        wait_for(
            halfway,
            timeout=WAIT_TIMEOUT,
            interval=0.05,
            what=f"{KILL_AFTER_BATCHES} committed batches",
            diagnose=lambda: f"{_state(engine, acme.id)}\n{child.tail()}",
        )
        os.kill(child.pid, signal.SIGKILL)
        assert child.proc.wait(30) == -signal.SIGKILL, child.tail()

        crashed = _state(engine, acme.id)
        # Killed mid-job: the job never finished, and a batch in flight left nothing behind.
        assert crashed["jobs"] == {"IN_PROGRESS": 1}, crashed
        assert crashed["other_batches"] == {}, crashed
        assert crashed["completed_batches"] >= KILL_AFTER_BATCHES, crashed
        committed = crashed["committed_fetched"]
        assert 0 < committed < total, crashed
        # The saved cursor is a nextLink to continue from, never 'done', and exactly the last committed batch's.
        assert len(crashed["cursors"]) == 1, crashed
        cursor_key, cursor, records_synced = crashed["cursors"][0]
        assert cursor_key == "people@backfill:all"
        assert cursor not in (None, DONE), crashed
        assert cursor.startswith(base_url) and "next=" in cursor, cursor
        assert cursor == crashed["last_batch_cursor"], crashed
        # The cursor is never ahead of the rows: core holds exactly what the committed batches loaded.
        assert crashed["committed_failed"] == 0, crashed
        assert crashed["core_rows"] == crashed["committed_inserted"] == committed, crashed
        assert records_synced == committed, crashed

        # The rerun: in this process, through the same product code path as the child's.
        fub = FubResource(base_url=base_url)
        report = fub_sync.backfill(engine, FUB, lambda a: fub.client_for(engine, a), acme, "people", None)

    # It resumed at the cursor: only what the killed run had not committed was fetched again.
    assert report.counts.fetched < total, report.counts
    assert report.counts.fetched == total - committed, (report.counts, committed, total)
    assert report.counts.inserted == total - committed, report.counts
    assert report.counts.failed == 0, report.counts

    done = _state(engine, acme.id)
    assert [c[:2] for c in done["cursors"]] == [("people@backfill:all", DONE)], done
    # records_synced is the whole pass's total, not just what the resumed attempt moved.
    assert done["cursors"][0][2] == total, done
    assert done["other_batches"] == {}, done
    # The killed attempt is closed as interrupted; the rerun that resumed it counts as attempt 2.
    assert done["jobs"] == {"ERROR": 1, "COMPLETED": 1}, done
    with engine.connect() as conn:
        attempts = dict(
            conn.execute(
                sa.text(
                    "SELECT status, attempts FROM bridge.job_status WHERE account_id = :a AND job_type = 'backfill'"
                ),
                {"a": acme.id},
            ).all()
        )
        reason = conn.execute(
            sa.text("SELECT error_message FROM bridge.job_status WHERE account_id = :a AND status = 'ERROR'"),
            {"a": acme.id},
        ).scalar_one()
    assert attempts == {"ERROR": 1, "COMPLETED": 2} and reason.startswith("interrupted; resumed by")
    view = sandbox["fub"].accounts["acme"].tables["people"].query(Window())
    expected_ids = sorted(str(r["id"]) for r in view.page(0, len(view)))
    assert len(expected_ids) == total
    with engine.connect() as conn:
        live = conn.execute(
            sa.text("SELECT count(*) FROM core.fub_people WHERE account_id = :a AND deleted_at IS NULL"),
            {"a": acme.id},
        ).scalar_one()
        duplicates = conn.execute(
            sa.text(
                "SELECT account_id, source_id, count(*) FROM core.fub_people "
                "GROUP BY account_id, source_id HAVING count(*) > 1 LIMIT 10"
            )
        ).all()
        ids = sorted(
            conn.execute(
                sa.text("SELECT source_id FROM core.fub_people WHERE account_id = :a"), {"a": acme.id}
            ).scalars()
        )
    assert done["core_rows"] == live == total
    assert duplicates == []
    assert ids == expected_ids
