"""The night window's schedule: at window start, then every 15 minutes while it is open.

Each run moves what each table's own window and quota allow; a run that crashed is picked up by the
next tick the same night. The cron follows SYNC_ERP_WINDOW (default 19:00-07:00) in SYNC_ERP_TIMEZONE
(default UTC); a table whose schedule row has another window is still only moved inside its own.
"""

from __future__ import annotations

import os

import dagster as dg

from sync_pipelines.defs.erp import background
from sync_pipelines.defs.erp.assets import ERP_ASSETS, RUN_TAGS

WINDOW = background.parse_window(os.environ.get("SYNC_ERP_WINDOW", "19:00-07:00"))
TIMEZONE = os.environ.get("SYNC_ERP_TIMEZONE", "UTC")

erp_background_job = dg.define_asset_job(
    "erp_background_sync",
    selection=dg.AssetSelection.assets(*ERP_ASSETS),
    tags=RUN_TAGS,
    description="ERP tables: tonight's share of the multi-night background pass, then the rowversion delta.",
    executor_def=dg.in_process_executor,
)


@dg.schedule(
    name="erp_background_night_window",
    job=erp_background_job,
    cron_schedule=background.window_crons(*WINDOW),
    execution_timezone=TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="At the night window's start and every 15 minutes inside it.",
)
def erp_background_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    moment = context.scheduled_execution_time
    return dg.RunRequest(run_key=moment.isoformat() if moment else None, tags=RUN_TAGS)
