"""One declaration -> one integration's Dagster definitions.

Why plain builders and not a Dagster Component: a Component earns its keep when definitions are instantiated from
YAML by people who do not write Python (dagster-open-platform's many sources of one shape). Ours are Python
declarations that carry code (clients, webhook verifiers, field mappings, change extractors), tested as code, and
one `Definitions` object is built from the registry; a Component would wrap the same builders in a YAML layer with
nothing to configure. The builders stay Component-ready: `build` is what a Component's `build_defs` would call.
"""

from __future__ import annotations

import dagster as dg

from sync_pipelines.lib.integration import builders
from sync_pipelines.lib.integration.declaration import Integration
from sync_pipelines.lib.integration.webhook_jobs import webhook_definitions
from sync_pipelines.lib.resources import WAREHOUSE


def build(integration: Integration) -> dg.Definitions:
    assets = builders.entity_assets(integration)
    delta = builders.delta_job(integration)
    entity_jobs = builders.asset_jobs(integration, assets)
    jobs: list = [delta, *entity_jobs]
    schedules: list = [builders.delta_schedule(integration, delta)]
    schedules += builders.rewalk_schedules(integration, entity_jobs)
    sensors: list = [builders.accounts_sensor(integration)]
    checks = [c for c in [builders.orphan_check(integration)] if c is not None]
    if integration.extra_checks is not None:
        checks += integration.extra_checks(integration)
    if integration.webhooks is not None:
        hooks = webhook_definitions(integration)
        jobs.append(hooks.job)
        sensors.append(hooks.sensor)
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=jobs,
        schedules=schedules,
        sensors=sensors,
        resources={integration.resource_key: integration.resource(), "warehouse": WAREHOUSE},
    )
