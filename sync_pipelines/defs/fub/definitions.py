import dagster as dg

from sync_pipelines.defs.fub.assets import FUB_ASSETS, fub_no_orphan_children
from sync_pipelines.defs.fub.entities import INTEGRATION, REFERENCE_ENTITIES
from sync_pipelines.defs.fub.resources import fub_resource_from_env
from sync_pipelines.defs.fub.schedules import fub_delta_job, fub_delta_schedule
from sync_pipelines.defs.fub.sensors import fub_accounts_sensor
from sync_pipelines.lib.resources import WAREHOUSE

TAGS = {"sync_pipelines/integration": INTEGRATION}

fub_reference_job = dg.define_asset_job(
    "fub_reference_sync",
    selection=dg.AssetSelection.assets(
        *[a for a in FUB_ASSETS if a.op.name.removeprefix("fub_") in REFERENCE_ENTITIES]
    ),
    tags=TAGS,
    description="Follow Up Boss users, groups and stages of one account.",
)
fub_activity_job = dg.define_asset_job(
    "fub_activity_sync",
    selection=dg.AssetSelection.assets(
        *[a for a in FUB_ASSETS if a.op.name.removeprefix("fub_") not in REFERENCE_ENTITIES]
    ),
    tags=TAGS,
    description="Follow Up Boss people, deals, events, calls, texts and appointments by month and account.",
)

defs = dg.Definitions(
    assets=FUB_ASSETS,
    asset_checks=[fub_no_orphan_children],
    jobs=[fub_reference_job, fub_activity_job, fub_delta_job],
    schedules=[fub_delta_schedule],
    sensors=[fub_accounts_sensor],
    resources={"fub": fub_resource_from_env(), "warehouse": WAREHOUSE},
)
