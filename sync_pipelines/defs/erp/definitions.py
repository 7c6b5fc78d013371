import dagster as dg

from sync_pipelines.defs.erp.assets import ERP_ASSETS, ErpResource
from sync_pipelines.defs.erp.schedules import erp_background_job, erp_background_schedule
from sync_pipelines.lib.resources import WAREHOUSE

defs = dg.Definitions(
    assets=ERP_ASSETS,
    jobs=[erp_background_job],
    schedules=[erp_background_schedule],
    resources={"erp": ErpResource(), "warehouse": WAREHOUSE},
)
