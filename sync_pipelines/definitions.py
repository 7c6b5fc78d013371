"""The one Definitions object: every integration's definitions, merged."""

from __future__ import annotations

import dagster as dg

# Modules, not their Definitions objects: Dagster refuses a module scope holding more than one.
from sync_pipelines.defs.core import definitions as core
from sync_pipelines.defs.erp import definitions as erp
from sync_pipelines.defs.fub import definitions as fub
from sync_pipelines.defs.fub import webhook_definitions as fub_webhooks
from sync_pipelines.defs.platform import definitions as platform

defs: dg.Definitions = dg.Definitions.merge(platform.defs, fub.defs, fub_webhooks.defs, core.defs, erp.defs)
