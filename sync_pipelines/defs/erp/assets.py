"""Staged and core assets of every ERP table, materialized by the night-window engine.

A run moves what tonight's window and quota allow (or the delta, once the pass is complete) and reports
where the pass stands: rows done, percent, nights left, the projected finish night. A run that moved
nothing records that progress as an observation instead of a materialization.
"""

from datetime import datetime

import dagster as dg
from pydantic import Field
from sqlalchemy.engine import URL, make_url

from sync_pipelines.defs.erp import background, source
from sync_pipelines.defs.erp.entities import INTEGRATION, LOAD_ORDER, SPECS
from sync_pipelines.lib.resources import WarehouseResource

RUN_TAGS = {"sync_pipelines/integration": INTEGRATION}


class ErpResource(dg.ConfigurableResource):
    """The ERP database; an empty `database_url` follows SYNC_ERP_DATABASE_URL, else `<warehouse>_erp`."""

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the ERP database; empty: SYNC_ERP_DATABASE_URL or <warehouse>_erp.",
    )

    def url(self) -> URL:
        return make_url(self.database_url) if self.database_url else source.erp_url()


class ErpTickConfig(dg.Config):
    now: str | None = Field(
        default=None,
        description="Run as if the time were this ISO 8601 instant (a simulated night); empty: the wall clock.",
    )

    def clock(self) -> background.Clock:
        if not self.now:
            return background.SystemClock()
        moment = datetime.fromisoformat(self.now)
        if moment.tzinfo is None:
            raise dg.Failure(description=f"now={self.now!r}: give a time zone, like 2026-11-23T19:00:00+01:00")
        return background.SimulatedClock(moment)


def keys(entity: str) -> tuple[dg.AssetKey, dg.AssetKey]:
    return dg.AssetKey([INTEGRATION, "staged", entity]), dg.AssetKey([INTEGRATION, "core", entity])


def _specs(entity: str) -> list[dg.AssetSpec]:
    staged_key, core_key = keys(entity)
    spec = SPECS[entity]
    core_deps = [staged_key]
    if spec.parent is not None:
        core_deps.append(keys(spec.parent.entity)[1])
    return [
        dg.AssetSpec(
            staged_key,
            group_name=INTEGRATION,
            kinds={"postgres"},
            owners=["team:data-platform"],
            description=f"ERP (IFS) {entity} rows as read from ifsapp.{entity} with a rowversion keyset, "
            f"in {spec.staging.schema}.{spec.staging.name}.",
            tags={"layer": "staged"},
            skippable=True,
        ),
        dg.AssetSpec(
            core_key,
            group_name=INTEGRATION,
            kinds={"postgres"},
            owners=["team:data-platform"],
            deps=core_deps,
            description=f"ERP (IFS) {entity}, typed, keyed on its primary key, in {spec.core.schema}.{spec.core.name}."
            " Filled by a multi-night background pass inside the night window, then kept current by the "
            "rowversion delta.",
            tags={"layer": "core"},
            skippable=True,
        ),
    ]


# One step moves every selected table, parents first: a table with nothing to move tonight must not keep
# its children from moving (a skipped upstream output would skip a downstream step). The engine overlaps a table
# with the next one (background.run_entities) and hands the results back in load order.
@dg.multi_asset(
    name="erp_background",
    specs=[s for entity in LOAD_ORDER for s in _specs(entity)],
    can_subset=True,
    op_tags=RUN_TAGS,
    pool="erp_source",
)
def erp_background_assets(context: dg.AssetExecutionContext, config: ErpTickConfig, erp: ErpResource,
                          warehouse: WarehouseResource):  # fmt: skip
    selected = context.selected_asset_keys
    clock = config.clock()
    failures: dict[str, str] = {}
    chosen = [entity for entity in LOAD_ORDER if any(key in selected for key in keys(entity))]
    for result in background.run_entities(
        warehouse.engine(), erp.url(), chosen, clock=clock, dagster_run_id=context.run_id,
        on_chunk=lambda e, n: context.log.info("erp %s: moved %d rows", e, n),
    ):  # fmt: skip
        entity = result.entity
        staged_key, core_key = keys(entity)
        metadata = result.metadata()
        context.log.info("erp %s: %s (%s)", entity, result.outcome, result.reason)
        if result.rows_moved or result.delta_rows:
            if staged_key in selected:
                yield dg.MaterializeResult(asset_key=staged_key, metadata={
                    "rows_fetched": result.counts.fetched, "batches_this_run": len(result.batch_ids),
                    "batch_ids": ", ".join(result.batch_ids[-5:]),
                })  # fmt: skip
            if core_key in selected:
                yield dg.MaterializeResult(asset_key=core_key, metadata=metadata)
        else:
            context.log_event(dg.AssetObservation(asset_key=core_key, metadata=metadata))
        if result.outcome == "error":
            failures[entity] = result.reason
    if failures:
        raise dg.Failure(
            description=f"erp: {failures} (those schedules are in error; the next tick retries them)",
            metadata={"failed_tables": str(failures)},
        )


ERP_ASSETS = [erp_background_assets]
