"""Dagster definitions built from a declaration: partitions, staged and core assets per entity with their
reconciliation check, the orphan-children check, the accounts sensor, the delta job and its schedule.

Names follow the integration's: assets `[<name>, staged|core, <entity>]` in group `<name>`, op `<name>_<entity>`,
partitions `<name>_accounts` (dynamic) x monthly `period`, jobs `<name>_delta_sync`, `<name>_reference_sync`,
`<name>_activity_sync`, sensor `<name>_accounts_to_partitions`, schedule `<name>_delta_every_5_minutes`
(its cron from the declaration's env var), check `<name>_no_orphan_children`.
"""

import os
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import dagster as dg
import sqlalchemy as sa

from sync_pipelines.lib import accounts, schema
from sync_pipelines.lib.http import AuthError
from sync_pipelines.lib.integration import sync
from sync_pipelines.lib.integration.declaration import Entity, Integration
from sync_pipelines.lib.resources import WarehouseResource

CHECK_NAME = "source_count_matches_warehouse"
INTEGRATION_TAG = "sync_pipelines/integration"


def run_tags(integration: Integration) -> dict[str, str]:
    return {INTEGRATION_TAG: integration.name}


@dataclass(frozen=True)
class Partitions:
    accounts: dg.DynamicPartitionsDefinition
    periods: dg.MonthlyPartitionsDefinition
    period_account: dg.MultiPartitionsDefinition

    def of(self, entity: Entity) -> dg.PartitionsDefinition:
        return self.period_account if entity.by_period else self.accounts


_PARTITIONS: dict[str, Partitions] = {}


def partitions(integration: Integration) -> Partitions:
    """One set per integration (Dagster compares partition definitions by value, so build them once)."""
    if integration.name not in _PARTITIONS:
        accounts_def = dg.DynamicPartitionsDefinition(name=f"{integration.name}_accounts")
        periods = dg.MonthlyPartitionsDefinition(start_date=integration.period_start, fmt="%Y-%m", end_offset=1)
        _PARTITIONS[integration.name] = Partitions(
            accounts_def, periods, dg.MultiPartitionsDefinition({"period": periods, "account": accounts_def})
        )
    return _PARTITIONS[integration.name]


def by_account(partition_keys: list[str]) -> dict[str, list[str]]:
    """Partition keys of a (possibly ranged) run, grouped: account -> its periods (empty for account-only)."""
    grouped: dict[str, set[str]] = {}
    for key in partition_keys:
        dims = getattr(key, "keys_by_dimension", None)
        if dims is not None:
            grouped.setdefault(dims["account"], set()).add(dims["period"])
        elif "|" in key:
            account, period = key.split("|", 1)  # dimensions in name order: account, period
            grouped.setdefault(account, set()).add(period)
        else:
            grouped.setdefault(key, set())
    return {account: sorted(periods) for account, periods in grouped.items()}


def asset_keys(integration: Integration, entity: str) -> tuple[dg.AssetKey, dg.AssetKey]:
    return dg.AssetKey([integration.name, "staged", entity]), dg.AssetKey([integration.name, "core", entity])


@dataclass
class _Totals:
    report: sync.SyncReport
    failures: dict[str, str] = field(default_factory=dict)
    mismatches: list[dict[str, object]] = field(default_factory=list)
    unchecked: int = 0
    checked: int = 0

    def absorb(self, report: sync.SyncReport, reconciliation: list[dict[str, object]]) -> None:
        totals = self.report
        totals.counts.add(report.counts)
        totals.batch_ids.extend(report.batch_ids)
        totals.soft_deleted += report.soft_deleted
        totals.soft_delete_skipped.extend(report.soft_delete_skipped)
        totals.dlq_resolved += report.dlq_resolved
        totals.duration_seconds += report.duration_seconds
        for name, value in vars(report.stats).items():
            setattr(totals.stats, name, getattr(totals.stats, name) + value)
        self.checked += len(reconciliation)
        self.unchecked += sum(1 for r in reconciliation if r["source"] is None)
        self.mismatches += [r for r in reconciliation if r["source"] is not None and r["source"] != r["warehouse"]]


def entity_asset(integration: Integration, entity: Entity) -> dg.AssetsDefinition:
    """The staged and core assets of one entity (one op: both are written by the same transactions), with the
    source-vs-warehouse reconciliation as an asset check on core."""
    staged_key, core_key = asset_keys(integration, entity.name)
    spec = entity.spec
    core_deps = [staged_key]
    if spec.parent is not None:
        core_deps.append(asset_keys(integration, spec.parent.entity)[1])
    table = f"{spec.core.schema}.{spec.core.name}"
    title = integration.title
    common: dict[str, Any] = {"group_name": integration.name, "kinds": {"postgres"}, "owners": ["team:data-platform"]}

    @dg.multi_asset(
        name=f"{integration.name}_{entity.name}",
        specs=[
            dg.AssetSpec(
                staged_key,
                description=f"{title} {entity.name} exactly as received (raw JSON), in {spec.staging.schema}."
                f"{spec.staging.name}.",
                tags={"layer": "staged"},
                **common,
            ),
            dg.AssetSpec(
                core_key,
                deps=core_deps,
                # Kept fresh by the delta schedule (each run materializes each account's current partition):
                # stale means the deltas stopped succeeding.
                freshness_policy=dg.FreshnessPolicy.time_window(
                    fail_window=integration.freshness, warn_window=integration.freshness / 2
                ),
                description=f"{title} {entity.name}, typed and deduplicated on (account, source id), in {table}. "
                "Loaded in the same transaction as the staged rows; soft deletes, audit rows, DLQ for bad records."
                + (f" {entity.description}" if entity.description else ""),
                tags={"layer": "core"},
                **common,
            ),
        ],
        check_specs=[
            dg.AssetCheckSpec(
                CHECK_NAME,
                asset=core_key,
                description="Per account and month: the source's total equals the live rows in core.",
            )
        ],
        partitions_def=partitions(integration).of(entity),
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=integration.pool_name,
        op_tags=run_tags(integration),
        required_resource_keys={integration.resource_key, "warehouse"},
        retry_policy=dg.RetryPolicy(
            max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
        ),
    )
    def _asset(context: dg.AssetExecutionContext) -> Any:
        resource = getattr(context.resources, integration.resource_key)
        warehouse: WarehouseResource = context.resources.warehouse
        engine = warehouse.engine()
        plan = by_account(list(context.partition_keys))
        totals = _Totals(sync.SyncReport(entity.name, ",".join(plan)))
        client_for = lambda a: resource.client_for(engine, a)  # noqa: E731
        try:
            for account_name, periods in plan.items():
                account = accounts.get_account(engine, integration.name, account_name)
                try:
                    report = sync.backfill(
                        engine, integration, client_for, account, entity.name, periods or None,
                        dagster_run_id=context.run_id,
                    )  # fmt: skip
                    reconciliation = sync.reconcile(
                        engine, integration, client_for, account, entity.name, periods or None
                    )
                except AuthError as exc:
                    totals.failures[account_name] = f"{exc.status}: {exc.message}"
                    context.log.error(
                        "%s account %s: %s; the account is marked in error", integration.name, account_name,
                        exc.message,
                    )  # fmt: skip
                    continue
                totals.absorb(report, reconciliation)
                context.log.info("%s %s %s: %s", integration.name, entity.name, account_name, report.counts)
        except (KeyboardInterrupt, dg.DagsterExecutionInterruptedError) as exc:
            # An operator's SIGINT/SIGTERM: under the RetryPolicy Dagster would retry the step and the sync would
            # go on. Every batch committed with its cursor, so stop here; a rerun resumes from the last commit.
            raise dg.Failure(
                description=f"{integration.name} {entity.name}: interrupted by the operator; stopped at the last "
                "committed batch, a rerun resumes from there",
                allow_retries=False,
            ) from exc
        report = totals.report
        metadata = {**report.metadata(), "accounts": ", ".join(plan),
                    "failed_accounts": str(totals.failures or "none")}  # fmt: skip
        yield dg.MaterializeResult(asset_key=staged_key, metadata={
            "rows_fetched": report.counts.fetched, "pages": report.stats.pages, "api_calls": report.stats.api_calls,
            "rate_limited_429": report.stats.rate_limited, "batch_ids": metadata["batch_ids"],
        })  # fmt: skip
        yield dg.MaterializeResult(asset_key=core_key, metadata=metadata)
        yield dg.AssetCheckResult(
            check_name=CHECK_NAME,
            asset_key=core_key,
            passed=not totals.mismatches and not totals.failures,
            metadata={
                "partitions_checked": totals.checked,
                "partitions_without_a_source_total": totals.unchecked,
                "mismatches": str(totals.mismatches[:20] or "none"),
            },
        )
        if totals.failures:
            raise dg.Failure(
                description=f"{integration.name} {entity.name}: accounts failed (marked in error, others synced): "
                f"{totals.failures}",
                metadata={"failed_accounts": str(totals.failures)},
            )

    return _asset


_ASSETS: dict[str, list[dg.AssetsDefinition]] = {}


def entity_assets(integration: Integration) -> list[dg.AssetsDefinition]:
    """Every entity's asset, built once per integration: the Definitions object and in-process callers (the CLI,
    the demo) use the same objects, unbound to resources."""
    if integration.name not in _ASSETS:
        _ASSETS[integration.name] = [entity_asset(integration, entity) for entity in integration.entities]
    return _ASSETS[integration.name]


def orphan_check(integration: Integration) -> dg.AssetChecksDefinition | None:
    """Children that waited for their parent longer than SYNC_ORPHAN_MAX_AGE_MINUTES (default 60)."""
    parents = sorted({e.spec.parent.entity for e in integration.entities if e.spec.parent is not None})
    if not parents:
        return None
    children = [e.name for e in integration.entities if e.spec.parent is not None]

    @dg.asset_check(
        name=f"{integration.name}_no_orphan_children",
        asset=dg.AssetKey([integration.name, "core", parents[0]]),
        description=f"No {integration.title} child ({', '.join(children)}) has waited for its parent longer than "
        "SYNC_ORPHAN_MAX_AGE_MINUTES (default 60).",
    )
    def _check(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        max_age = timedelta(minutes=float(os.environ.get("SYNC_ORPHAN_MAX_AGE_MINUTES", "60")))
        waiting = sync.orphan_children(warehouse.engine(), integration.name, max_age)
        return dg.AssetCheckResult(passed=waiting == 0, metadata={"children_waiting_too_long": waiting})

    return _check


def accounts_sensor(integration: Integration) -> dg.SensorDefinition:
    """bridge.accounts -> the dynamic account partitions: an account added anywhere becomes a partition row."""
    accounts_def = partitions(integration).accounts

    @dg.sensor(
        name=f"{integration.name}_accounts_to_partitions",
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def _sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource) -> dg.SensorResult:
        with warehouse.engine().connect() as conn:
            names = set(
                conn.execute(
                    sa.select(schema.accounts.c.name).where(schema.accounts.c.integration == integration.name)
                ).scalars()
            )
        known = set(context.instance.get_dynamic_partitions(accounts_def.name))
        missing = sorted(names - known)
        if not missing:
            return dg.SensorResult(
                skip_reason=dg.SkipReason(f"every {integration.name} account already has its partition")
            )
        return dg.SensorResult(dynamic_partitions_requests=[accounts_def.build_add_request(missing)])

    return _sensor


class DeltaConfig(dg.Config):
    accounts: list[str] = []  # only these accounts (by name); empty: every active account


def delta_job(integration: Integration) -> dg.JobDefinition:
    """Everything changed since each account's cursor, every entity, every account; accounts are isolated."""

    @dg.op(
        name=f"{integration.name}_delta",
        tags=run_tags(integration),
        pool=integration.pool_name,
        required_resource_keys={integration.resource_key, "warehouse"},
    )
    def _delta(context: dg.OpExecutionContext, config: DeltaConfig) -> None:
        resource = getattr(context.resources, integration.resource_key)
        engine = context.resources.warehouse.engine()
        # One account's failure (a revoked key, a 5xx storm that outlasts the retries) is recorded on its row,
        # shown by `status`, and the run goes on with the rest and fails at the end naming the accounts.
        failures: dict[str, list[str]] = {}
        client_for = lambda a: resource.client_for(engine, a)  # noqa: E731
        chosen = [a for a in accounts.list_accounts(engine, integration.name) if a.name in config.accounts or
                  not config.accounts]  # fmt: skip
        registered = set(context.instance.get_dynamic_partitions(partitions(integration).accounts.name))
        current_period = partitions(integration).periods.get_last_partition_key()
        for account in chosen:
            for entity in integration.load_order:
                try:
                    report = sync.delta(engine, integration, client_for, account, entity, dagster_run_id=context.run_id)
                except AuthError as exc:
                    failures.setdefault(account.name, []).append(f"{exc.status}: {exc.message}")
                    context.log.error("%s account %s failed (%s); it is marked in error, others go on",
                                      integration.name, account.name, exc.message)  # fmt: skip
                    break  # every other entity of the account would be refused alike
                except Exception as exc:
                    failures.setdefault(account.name, []).append(f"{entity}: {type(exc).__name__}: {exc}")
                    context.log.error("%s %s/%s failed (%s: %s); the other entities and accounts go on",
                                      integration.name, account.name, entity, type(exc).__name__, exc)  # fmt: skip
                    continue
                # The account's entity is current as of now: a materialization of its current partition (the
                # month new records land in, or the account's for lists read whole) keeps the asset's freshness.
                if account.name in registered:
                    declared = integration.entity(entity)
                    partition = f"{account.name}|{current_period}" if declared.by_period else account.name
                    context.log_event(
                        dg.AssetMaterialization(
                            asset_key=dg.AssetKey([integration.name, "core", entity]),
                            partition=partition,
                            metadata={"account": account.name, "sync": "delta", **report.metadata()},
                        )
                    )
        if failures:
            raise dg.Failure(
                description=f"{integration.name} delta: accounts failed (the others synced): "
                f"{', '.join(sorted(failures))}",
                metadata={"failed_accounts": str(failures)},
            )

    @dg.job(
        name=f"{integration.name}_delta_sync",
        description=f"{integration.title}: everything changed since each account's cursor, every entity, every "
        "account.",
        tags=run_tags(integration),
        executor_def=dg.in_process_executor,
    )
    def _job() -> None:
        _delta()

    return _job


def delta_schedule(integration: Integration, job: dg.JobDefinition) -> dg.ScheduleDefinition:
    cron = (
        os.environ.get(integration.delta_cron_env, integration.delta_cron)
        if integration.delta_cron_env
        else (integration.delta_cron)
    )
    return dg.ScheduleDefinition(
        name=f"{integration.name}_delta_every_5_minutes",
        job=job,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )


def rewalk_schedules(integration: Integration, jobs: list[Any]) -> list[dg.ScheduleDefinition]:
    """Every account read again whole at `rewalk_cron`: one run per account and asset job (a schedule per job), the
    monthly entities as one whole-history range (their backfill reads it in one pass), the lists read whole by
    their account key."""
    cron = os.environ.get(integration.rewalk_cron_env, "") if integration.rewalk_cron_env else ""
    cron = cron or integration.rewalk_cron
    if not cron:
        return []
    parts = partitions(integration)
    chosen = integration.rewalk_entities or integration.load_order
    for name in chosen:
        integration.entity(name)  # a typo in a declaration fails when the definitions load, naming the entities
    by_name = {job.name: job for job in jobs}
    schedules = []
    for by_period, job_name, label in (
        (False, f"{integration.name}_reference_sync", "lists"),
        (True, f"{integration.name}_activity_sync", "monthly"),
    ):
        selection = [key for e in integration.entities if e.name in chosen and e.by_period is by_period
                     for key in asset_keys(integration, e.name)]  # fmt: skip
        if selection and job_name in by_name:
            schedules.append(_rewalk_schedule(integration, by_name[job_name], selection, by_period, label, cron, parts))
    return schedules


def _rewalk_schedule(
    integration: Integration,
    job: Any,
    selection: list[dg.AssetKey],
    by_period: bool,
    label: str,
    cron: str,
    parts: Partitions,
) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=f"{integration.name}_full_rewalk_{label}",
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        job=job,
        description=f"{integration.title}: every account's {', '.join(k.path[-1] for k in selection[1::2])} read "
        "again whole, for what deltas and webhooks can miss; the change guard writes nothing for what did not change.",
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> Any:
        tick = context.scheduled_execution_time.strftime("%Y%m%dT%H%M")
        account_names = sorted(context.instance.get_dynamic_partitions(parts.accounts.name))
        if not account_names:
            return dg.SkipReason(f"no {integration.name} account has its partition yet")
        first, last = parts.periods.get_first_partition_key(), parts.periods.get_last_partition_key()
        requests = []
        for account in account_names:
            tags = {**run_tags(integration), "sync_pipelines/rewalk": tick}
            if by_period:
                tags["dagster/asset_partition_range_start"] = f"{account}|{first}"
                tags["dagster/asset_partition_range_end"] = f"{account}|{last}"
            requests.append(
                dg.RunRequest(
                    run_key=f"rewalk:{tick}:{account}:{label}",
                    partition_key=None if by_period else account,
                    asset_selection=selection,
                    tags=tags,
                )
            )
        return requests

    return _schedule


def asset_jobs(integration: Integration, assets: list[dg.AssetsDefinition]) -> list[Any]:
    """One job for the lists read whole (by account), one for the entities partitioned by month and account."""
    by_name = {a.op.name.removeprefix(f"{integration.name}_"): a for a in assets}
    whole = [by_name[e.name] for e in integration.entities if not e.by_period]
    monthly = [by_name[e.name] for e in integration.entities if e.by_period]
    jobs = []
    if whole:
        jobs.append(
            dg.define_asset_job(
                f"{integration.name}_reference_sync",
                selection=dg.AssetSelection.assets(*whole),
                tags=run_tags(integration),
                description=f"{integration.title}: the lists read whole, of one account.",
            )
        )
    if monthly:
        jobs.append(
            dg.define_asset_job(
                f"{integration.name}_activity_sync",
                selection=dg.AssetSelection.assets(*monthly),
                tags=run_tags(integration),
                description=f"{integration.title}: the entities read by month of creation, by month and account.",
            )
        )
    return jobs
