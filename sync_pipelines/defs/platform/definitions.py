import dagster as dg

from sync_pipelines.defs.platform.assets import bridge_health, nothing_dead
from sync_pipelines.lib.resources import WAREHOUSE

platform_health_job = dg.define_asset_job(
    "platform_bridge_health",
    selection=dg.AssetSelection.assets(bridge_health),
    description="Count what needs an operator (bridge_health) and check that nothing is dead.",
    executor_def=dg.in_process_executor,
)

# The counts go stale as the syncs move on; every 15 minutes keeps the UI's view of them current.
platform_health_schedule = dg.ScheduleDefinition(
    name="platform_bridge_health_every_15_minutes",
    job=platform_health_job,
    cron_schedule="*/15 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

defs = dg.Definitions(
    assets=[bridge_health],
    asset_checks=[nothing_dead],
    jobs=[platform_health_job],
    schedules=[platform_health_schedule],
    resources={"warehouse": WAREHOUSE},
)
