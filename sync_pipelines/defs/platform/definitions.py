from __future__ import annotations

import dagster as dg

from sync_pipelines.defs.platform.assets import bridge_health, nothing_dead
from sync_pipelines.lib.resources import WAREHOUSE

defs = dg.Definitions(
    assets=[bridge_health],
    asset_checks=[nothing_dead],
    resources={"warehouse": WAREHOUSE},
)
