"""The one Definitions object: every registered integration's definitions (built from its declaration by the
kit), the ERP's, the unified core assets and the platform's, merged."""

from __future__ import annotations

import dagster as dg

from sync_pipelines import registry, settings

# Modules, not their Definitions objects: Dagster refuses a module scope holding more than one.
from sync_pipelines.defs.core import definitions as core
from sync_pipelines.defs.erp import definitions as erp
from sync_pipelines.defs.platform import definitions as platform
from sync_pipelines.lib.integration.definitions import build

# In production mode every Dagster process (code server, daemon, webserver, each run worker) refuses to load the
# definitions until all the settings production needs are there, naming every missing one.
settings.check("the Dagster code location")

# The in-process executor for every job: each of our runs is one step or a few sequential ones, so a process per
# step gains nothing, and the run worker is then the process a run records in its tags (lib/runs.py), whose
# death run monitoring detects; with a process per step the recorded pid would be a finished step's. (Inline:
# a second Definitions object in this module's scope would be refused too.)
defs: dg.Definitions = dg.Definitions.merge(
    platform.defs,
    *(build(integration) for integration in registry.INTEGRATIONS.values()),
    core.defs,
    *([erp.defs] if registry.erp_enabled() else []),
    dg.Definitions(executor=dg.in_process_executor),
)
