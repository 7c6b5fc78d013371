"""The one Definitions object: every integration's definitions, merged."""

from __future__ import annotations

import dagster as dg

# Modules, not their Definitions objects: Dagster refuses a module scope holding more than one.
from sync_pipelines.defs.core import definitions as core
from sync_pipelines.defs.erp import definitions as erp
from sync_pipelines.defs.fub import definitions as fub
from sync_pipelines.defs.fub import webhook_definitions as fub_webhooks
from sync_pipelines.defs.platform import definitions as platform

# The in-process executor for every job: each of our runs is one step or a few sequential ones, so a process per
# step gains nothing, and the run worker is then the process a run records in its tags (lib/runs.py), whose
# death run monitoring detects; with a process per step the recorded pid would be a finished step's. (Inline:
# a second Definitions object in this module's scope would be refused too.)
defs: dg.Definitions = dg.Definitions.merge(
    platform.defs, fub.defs, fub_webhooks.defs, core.defs, erp.defs, dg.Definitions(executor=dg.in_process_executor)
)
