"""Follow Up Boss webhook ingestion: the sensor and the job it launches. Merged into sync_pipelines/definitions.py
next to the fub definitions, which provide the `fub` resource (Definitions.merge refuses a second object under
the same key, so only the shared warehouse is repeated here)."""

import dagster as dg

from sync_pipelines.defs.fub.webhook_sensor import fub_webhook_job, fub_webhook_sensor
from sync_pipelines.lib.resources import WAREHOUSE

defs = dg.Definitions(jobs=[fub_webhook_job], sensors=[fub_webhook_sensor], resources={"warehouse": WAREHOUSE})
