import dagster as dg

from sync_pipelines.defs.core.assets import (
    contact_log,
    contact_log_has_no_orphans,
    participant,
    transactions_and_listings,
)
from sync_pipelines.lib.resources import WAREHOUSE

defs = dg.Definitions(
    assets=[participant, contact_log, transactions_and_listings],
    asset_checks=[contact_log_has_no_orphans],
    resources={"warehouse": WAREHOUSE},
)
