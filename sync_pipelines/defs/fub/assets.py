"""Staged and core assets of every Follow Up Boss entity, by period_key x account."""

from datetime import timedelta

import dagster as dg

from sync_pipelines.defs.fub import sync as fub_sync
from sync_pipelines.defs.fub.entities import INTEGRATION, LOAD_ORDER, REFERENCE_ENTITIES, SPECS
from sync_pipelines.defs.fub.partitions import by_account, fub_accounts, fub_period_account
from sync_pipelines.defs.fub.resources import FubResource
from sync_pipelines.lib import accounts
from sync_pipelines.lib.http import AuthError
from sync_pipelines.lib.resources import WarehouseResource

RUN_TAGS = {"sync_pipelines/integration": INTEGRATION}
CHECK_NAME = "source_count_matches_warehouse"


def _keys(entity: str) -> tuple[dg.AssetKey, dg.AssetKey]:
    return dg.AssetKey([INTEGRATION, "staged", entity]), dg.AssetKey([INTEGRATION, "core", entity])


def build_entity_asset(entity: str) -> dg.AssetsDefinition:
    staged_key, core_key = _keys(entity)
    spec = SPECS[entity]
    core_deps = [staged_key]
    if spec.parent is not None:
        core_deps.append(_keys(spec.parent.entity)[1])
    reference = entity in REFERENCE_ENTITIES
    partitions_def = fub_accounts if reference else fub_period_account
    table = f"{spec.core.schema}.{spec.core.name}"

    @dg.multi_asset(
        name=f"fub_{entity}",
        specs=[
            dg.AssetSpec(
                staged_key,
                group_name="fub",
                kinds={"postgres"},
                owners=["team:data-platform"],
                description=f"Follow Up Boss {entity} exactly as received (raw JSON), in {spec.staging.schema}."
                f"{spec.staging.name}.",
                tags={"layer": "staged"},
            ),
            dg.AssetSpec(
                core_key,
                group_name="fub",
                kinds={"postgres"},
                owners=["team:data-platform"],
                deps=core_deps,
                description=f"Follow Up Boss {entity}, typed and deduplicated on (account, source id), in {table}. "
                "Loaded in the same transaction as the staged rows; soft deletes, audit rows, DLQ for bad records.",
                tags={"layer": "core"},
            ),
        ],
        check_specs=[
            dg.AssetCheckSpec(
                CHECK_NAME,
                asset=core_key,
                description="Per account and month: the source's total equals the live rows in core.",
            )
        ],
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool="fub_api",
        op_tags=RUN_TAGS,
        retry_policy=dg.RetryPolicy(
            max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
        ),
    )
    def _asset(context: dg.AssetExecutionContext, fub: FubResource, warehouse: WarehouseResource):
        engine = warehouse.engine()
        plan = by_account(list(context.partition_keys))
        totals = fub_sync.SyncReport(entity, ",".join(plan))
        failures: dict[str, str] = {}
        mismatches: list[dict[str, object]] = []
        checked = 0
        try:
            for account_name, periods in plan.items():
                account = accounts.get_account(engine, INTEGRATION, account_name)
                client_for = lambda a: fub.client_for(engine, a)  # noqa: E731
                try:
                    report = fub_sync.backfill(
                        engine, client_for, account, entity, periods or None, dagster_run_id=context.run_id
                    )
                    reconciliation = fub_sync.reconcile(engine, client_for, account, entity, periods or None)
                except AuthError as exc:
                    failures[account_name] = f"{exc.status}: {exc.message}"
                    context.log.error("fub account %s: %s; the account is marked in error", account_name, exc.message)
                    continue
                totals.counts.add(report.counts)
                totals.batch_ids.extend(report.batch_ids)
                totals.soft_deleted += report.soft_deleted
                totals.duration_seconds += report.duration_seconds
                for name, value in vars(report.stats).items():
                    setattr(totals.stats, name, getattr(totals.stats, name) + value)
                checked += len(reconciliation)
                mismatches += [r for r in reconciliation if r["source"] != r["warehouse"]]
                context.log.info("fub %s %s: %s", entity, account_name, report.counts)
        except (KeyboardInterrupt, dg.DagsterExecutionInterruptedError) as exc:
            # An operator's SIGINT/SIGTERM: under the RetryPolicy Dagster would retry the step and the sync would
            # go on. Every batch committed with its cursor, so stop here; a rerun resumes from the last commit.
            raise dg.Failure(
                description=f"fub {entity}: interrupted by the operator; stopped at the last committed batch, a "
                "rerun resumes from there",
                allow_retries=False,
            ) from exc
        metadata = {**totals.metadata(), "accounts": ", ".join(plan), "failed_accounts": str(failures or "none")}
        yield dg.MaterializeResult(asset_key=staged_key, metadata={
            "rows_fetched": totals.counts.fetched, "pages": totals.stats.pages, "api_calls": totals.stats.api_calls,
            "rate_limited_429": totals.stats.rate_limited, "batch_ids": metadata["batch_ids"],
        })  # fmt: skip
        yield dg.MaterializeResult(asset_key=core_key, metadata=metadata)
        yield dg.AssetCheckResult(
            check_name=CHECK_NAME,
            asset_key=core_key,
            passed=not mismatches and not failures,
            metadata={"partitions_checked": checked, "mismatches": str(mismatches[:20] or "none")},
        )
        if failures:
            raise dg.Failure(
                description=f"fub {entity}: accounts failed (marked in error, others synced): {failures}",
                metadata={"failed_accounts": str(failures)},
            )

    return _asset


FUB_ASSETS = [build_entity_asset(entity) for entity in LOAD_ORDER]


@dg.asset_check(
    asset=dg.AssetKey([INTEGRATION, "core", "people"]),
    description="No Follow Up Boss child (call, text, deal, event, appointment) has waited for its person "
    "longer than SYNC_ORPHAN_MAX_AGE_MINUTES (default 60).",
)
def fub_no_orphan_children(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    import os

    max_age = timedelta(minutes=float(os.environ.get("SYNC_ORPHAN_MAX_AGE_MINUTES", "60")))
    waiting = fub_sync.orphan_children(warehouse.engine(), max_age)
    return dg.AssetCheckResult(passed=waiting == 0, metadata={"children_waiting_too_long": waiting})
