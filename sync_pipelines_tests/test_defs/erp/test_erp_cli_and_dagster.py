"""The ERP background sync as operators meet it: the `background` CLI, and the Dagster assets and schedule."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime

import dagster as dg
import pytest
from sqlalchemy.engine import URL

from sync_pipelines.defs.erp import background
from sync_pipelines.defs.erp.assets import ERP_ASSETS, ErpResource
from sync_pipelines.defs.erp.definitions import defs as erp_defs
from sync_pipelines.defs.erp.entities import LOAD_ORDER
from sync_pipelines.defs.erp.schedules import erp_background_job, erp_background_schedule
from sync_pipelines.lib import db
from sync_pipelines.lib.resources import WarehouseResource
from sync_pipelines.sandbox import erp
from sync_pipelines_tests.test_defs.erp.conftest import SEED, core_state, source_state

NOON = "2026-11-23T12:00:00+00:00"
NIGHT_1 = "2026-11-23T19:00:00+01:00"
NIGHT_3 = "2026-11-25T19:00:00+01:00"
DOWN = "postgresql://sync:secret@127.0.0.1:9/erp"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    code = "from sync_pipelines.cli_background import background_group; background_group(prog_name='background')"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
        cwd=db.PROJECT_ROOT,
    )


def test_background_cli_create_status_tick_pause_resume(database_url: URL, erp_url: URL) -> None:
    erp.generate(erp_url, seed=SEED, scale=700)
    down = _cli("create", "--now", NOON, env={erp.ERP_URL_ENV: DOWN})
    assert down.returncode == 2 and "cannot reach the ERP database at host 127.0.0.1, port 9" in down.stderr
    assert "secret" not in down.stderr and "Traceback" not in down.stderr

    created = _cli("create", "--timezone", "Europe/Stockholm", "--days", "3", "--chunk-size", "100", "--now", NOON)
    assert created.returncode == 0, created.stderr
    assert "customer_order_line: 350 rows over 3 nights, 117 a night in 19:00-07:00 Europe/Stockholm" in created.stdout
    assert "projected finish night 2026-11-25" in created.stdout
    again = _cli("create", "--now", NOON)
    assert again.returncode == 2 and "already exists" in again.stderr

    status = _cli("status", "--now", NOON)
    assert status.returncode == 0, status.stderr
    line = next(row for row in status.stdout.splitlines() if row.startswith("customer_order_line"))
    assert line.split()[1:7] == ["active", "0", "350", "0.0%", "350", "3"] and "2026-11-25" in line

    ticked = _cli("tick", "--now", NIGHT_1)
    assert ticked.returncode == 0, ticked.stderr
    assert "customer_order_line: moved, 117 pass rows, 0 delta rows (tonight's quota is met)" in ticked.stdout
    line = next(
        row for row in _cli("status", "--now", NIGHT_1).stdout.splitlines() if row.split()[0] == "customer_order"
    )
    assert line.split()[1:7] == ["active", "42", "126", "33.3%", "84", "2"]

    assert "paused: customer_order_line" in _cli("pause", "customer_order_line").stdout
    paused = _cli("tick", "customer_order_line", "--now", "2026-11-24T19:00:00+01:00")
    assert "customer_order_line: skipped, 0 pass rows, 0 delta rows (paused)" in paused.stdout
    assert "resumed: customer_order_line" in _cli("resume", "customer_order_line").stdout
    assert _cli("tick", "--now", "2026-11-24T19:00:00+01:00").returncode == 0
    finished = _cli("tick", "--now", NIGHT_3)
    assert finished.returncode == 0 and finished.stdout.count("the pass is complete") == 4, finished.stdout
    final = _cli("status", "--now", NIGHT_3).stdout
    assert all(row.split()[1] == "completed" for row in final.splitlines()[1:])
    assert core_state(database_url) == source_state(erp_url)

    restarted = _cli("create", "--restart", "--days", "2", "--timezone", "UTC", "--now", NOON)
    assert restarted.returncode == 0, restarted.stderr
    simulated = _cli("simulate", "--nights", "2", "--now", NOON)
    assert simulated.returncode == 0, simulated.stderr
    assert "night 1 (2026-11-23 19:15 UTC)" in simulated.stdout and "night 2 (2026-11-24 19:15 UTC)" in simulated.stdout
    assert simulated.stdout.count("completed") == 4 and "nights left 1" in simulated.stdout

    bad = _cli("create", "--window", "7pm", "--restart")
    assert bad.returncode == 2 and "HH:MM-HH:MM" in bad.stderr


def test_demo_step_runs_a_small_pass_over_simulated_nights_and_prints_progress(database_url: URL, erp_url: URL) -> None:
    from sync_pipelines.cli_background import demo_background_pass

    lines: list[str] = []
    assert demo_background_pass(database_url, nights=3, scale=3000, echo=lines.append)
    text = "\n".join(lines)
    assert "3,000 source rows over 3 simulated nights" in text
    assert "night 1 (2026-11-23 19:15 UTC)" in text and "night 3 (2026-11-25 19:15 UTC)" in text
    assert "nights left 2" in text and "ERP core rows match the source" in text
    assert core_state(database_url) == source_state(erp_url)


def _run_config(now: str) -> dict:
    return {"ops": {"erp_background": {"config": {"now": now}}}}


def _resources(erp_url: URL | str) -> dict:
    url = erp_url if isinstance(erp_url, str) else db.render_secret_url(erp_url)
    return {"erp": ErpResource(database_url=url), "warehouse": WarehouseResource()}


def test_assets_materialize_tonight_s_share_with_progress_metadata(
    database_url: URL, erp_url: URL, dagster_instance: dg.DagsterInstance
) -> None:
    erp.generate(erp_url, seed=SEED, scale=900)
    engine = db.get_engine(database_url)
    background.create(engine, erp_url, timezone="Europe/Stockholm", days=3, chunk_size=100,
                      clock=background.SimulatedClock(datetime(2026, 11, 23, 12, tzinfo=UTC)))  # fmt: skip

    result = dg.materialize(ERP_ASSETS, instance=dagster_instance, resources=_resources(erp_url),
                            run_config=_run_config(NIGHT_1))  # fmt: skip
    assert result.success
    core = {e.asset_key.path[2]: e.materialization.metadata for e in result.get_asset_materialization_events()
            if e.asset_key.path[1] == "core"}  # fmt: skip
    assert set(core) == set(LOAD_ORDER)
    lines = core["customer_order_line"]
    assert lines["rows_done"].value == 150 and lines["total_rows"].value == 450
    assert lines["percent"].value == pytest.approx(33.3) and lines["nights_left"].value == 2
    assert lines["projected_finish_night"].value == "2026-11-25"
    assert lines["stopped_because"].value == "tonight's quota is met"

    # Quarter of an hour later nothing is due: progress is observed, nothing is materialized.
    later = dg.materialize(ERP_ASSETS, instance=dagster_instance, resources=_resources(erp_url),
                           run_config=_run_config("2026-11-23T19:15:00+01:00"))  # fmt: skip
    assert later.success and not later.get_asset_materialization_events()
    observations = [e for e in later.all_events if e.event_type_value == "ASSET_OBSERVATION"]
    assert len(observations) == len(LOAD_ORDER)

    # A source that does not answer fails the run with the reason; the schedule rows say so too.
    failed = dg.materialize(ERP_ASSETS, instance=dagster_instance, resources=_resources(DOWN),
                            run_config=_run_config("2026-11-24T19:00:00+01:00"), raise_on_error=False)  # fmt: skip
    assert not failed.success
    assert {p.status for p in background.status(engine)} == {"error"}
    assert all("cannot reach the ERP database" in (p.error_message or "") for p in background.status(engine))


def test_schedule_fires_at_window_start_and_every_quarter_hour_inside_it() -> None:
    assert erp_background_schedule.cron_schedule == ["0,15,30,45 0,1,2,3,4,5,6,19,20,21,22,23 * * *"]
    assert erp_background_schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert erp_background_schedule.job_name == erp_background_job.name
    moment = datetime(2026, 11, 23, 19, 0, tzinfo=UTC)
    request = erp_background_schedule(dg.build_schedule_context(scheduled_execution_time=moment))
    assert isinstance(request, dg.RunRequest) and request.run_key == moment.isoformat()
    merged = dg.Definitions.merge(erp_defs)
    assert merged.resolve_job_def("erp_background_sync").name == "erp_background_sync"
