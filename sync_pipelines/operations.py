"""Operator actions shared by the CLI and the demo: they run the same Dagster assets and jobs a user runs
from the UI, in-process, on the project's Dagster instance."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg
import sqlalchemy as sa

from sync_pipelines.defs.fub.assets import FUB_ASSETS
from sync_pipelines.defs.fub.entities import INTEGRATION as FUB
from sync_pipelines.defs.fub.entities import LOAD_ORDER, REFERENCE_ENTITIES, SPECS
from sync_pipelines.defs.fub.partitions import fub_accounts, periods
from sync_pipelines.defs.fub.resources import FubResource, fub_resource_from_env
from sync_pipelines.defs.fub.schedules import fub_delta_job
from sync_pipelines.lib import accounts, db, interrupts, runs, schema
from sync_pipelines.lib.resources import WarehouseResource

# In-process runs print every Dagster event at DEBUG; the event log keeps them, the terminal needs warnings.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
ASSETS_BY_ENTITY = {a.op.name.removeprefix("fub_"): a for a in FUB_ASSETS}
STOPPED_AT_LAST_COMMIT = interrupts.STOPPED_AT_LAST_COMMIT


def pooled(instance: dg.DagsterInstance) -> dg.DagsterInstance:
    """dagster-postgres opens a new connection per stored event (NullPool): ~4 ms each, and a ranged run
    over five years of months stores hundreds of events. A long-lived in-process caller can hold a pool,
    exactly as the webserver does."""
    storage = instance.event_log_storage
    if not getattr(storage, "_sync_pipelines_pooled", False):
        storage.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=5)
        storage._sync_pipelines_pooled = True  # type: ignore[attr-defined]
    return instance


def ensure_account_partitions(instance: dg.DagsterInstance, names: list[str]) -> None:
    known = set(instance.get_dynamic_partitions(fub_accounts.name))
    missing = [n for n in names if n not in known]
    if missing:
        instance.add_dynamic_partitions(fub_accounts.name, missing)


def add_fub_account(instance: dg.DagsterInstance, name: str, api_key: str) -> accounts.Account:
    account = accounts.upsert_account(db.get_engine(), FUB, name, {"api_key": api_key})
    ensure_account_partitions(instance, [name])
    return account


@dataclass
class RunOutcome:
    entity: str
    account: str
    partitions: str
    success: bool
    run_id: str
    metadata: dict[str, object]


def sync_fub(
    instance: dg.DagsterInstance,
    *,
    account_names: list[str] | None = None,
    entities: list[str] | None = None,
    period: str | None = None,
    fub: FubResource | None = None,
    raise_on_error: bool = False,
    on_reaped: Callable[[runs.Reaped], None] | None = None,
) -> list[RunOutcome]:
    """Materialize FUB assets through Dagster: one run per entity and account, a whole-history range
    (BackfillPolicy.single_run) unless `period` names one month.

    Before each run (and every few seconds while one waits for a pool slot), runs of this host whose process
    died are marked failed and their slots freed (`on_reaped` hears of each). A SIGINT/SIGTERM stops after
    the run it interrupted: `interrupts.Interrupted` is raised, the cursor stays at the last committed batch."""
    engine = db.get_engine()
    pooled(instance)
    notify = on_reaped or (lambda _reaped: None)
    selected = [a for a in accounts.list_accounts(engine, FUB) if not account_names or a.name in account_names]
    ensure_account_partitions(instance, [a.name for a in selected])
    resources = {"fub": fub or fub_resource_from_env(), "warehouse": WarehouseResource()}
    last_period = periods.get_last_partition_key()
    first_period = periods.get_first_partition_key()
    outcomes = []
    with runs.reaping(instance, notify):
        for entity in entities or LOAD_ORDER:
            asset = ASSETS_BY_ENTITY[entity]
            for account in selected:
                # The run records this process, so that a later command can tell that it died (lib/runs.py).
                tags: dict[str, str] = {**runs.process_tags(), "sync_pipelines/integration": FUB}
                partition_key: str | None = None
                if entity in REFERENCE_ENTITIES:
                    partition_key = account.name
                    label = account.name
                elif period:
                    partition_key = f"{account.name}|{period}"
                    label = partition_key
                else:
                    tags["dagster/asset_partition_range_start"] = f"{account.name}|{first_period}"
                    tags["dagster/asset_partition_range_end"] = f"{account.name}|{last_period}"
                    label = f"{account.name}|{first_period}..{last_period}"
                for reaped in runs.reap_dead_runs(instance):
                    notify(reaped)
                result = dg.materialize(
                    [asset], instance=instance, resources=resources, partition_key=partition_key, tags=tags,
                    raise_on_error=raise_on_error, run_config=QUIET,
                )  # fmt: skip
                metadata: dict[str, object] = {}
                for event in result.get_asset_materialization_events():
                    if event.asset_key == dg.AssetKey([FUB, "core", entity]):
                        materialization = event.step_materialization_data.materialization
                        metadata = {k: v.value for k, v in materialization.metadata.items()}
                outcomes.append(RunOutcome(entity, account.name, label, result.success, result.run_id, metadata))
                # Dagster turns a signal during the run into a failed run and forgets it: stop here.
                interrupts.check(STOPPED_AT_LAST_COMMIT)
    return outcomes


def rebuild_unified(instance: dg.DagsterInstance) -> bool:
    from sync_pipelines.defs.core.assets import contact_log, participant

    result = dg.materialize(
        [participant, contact_log], instance=pooled(instance), resources={"warehouse": WarehouseResource()},
        run_config=QUIET, raise_on_error=False,
    )  # fmt: skip
    return result.success


def run_fub_delta(
    instance: dg.DagsterInstance, fub: FubResource | None = None, on_reaped: Callable[[runs.Reaped], None] | None = None
) -> bool:
    """The delta job, in-process; dead runs are reaped first and a signal stops it as in `sync_fub`."""
    notify = on_reaped or (lambda _reaped: None)
    for reaped in runs.reap_dead_runs(instance):
        notify(reaped)
    with runs.reaping(instance, notify):
        result = fub_delta_job.execute_in_process(
            instance=instance,
            resources={"fub": fub or fub_resource_from_env(), "warehouse": WarehouseResource()},
            raise_on_error=False,
            run_config=QUIET,
            tags=runs.process_tags(),
        )
    interrupts.check(STOPPED_AT_LAST_COMMIT)
    return result.success


def status_rows(engine: sa.Engine) -> list[dict[str, object]]:
    """Per account and entity: live rows in core, the delta cursor, the last sync and the account's state."""
    rows = []
    with engine.connect() as conn:
        for account in accounts.list_accounts(engine, active_only=False):
            if account.integration != FUB:
                continue
            error = conn.execute(
                sa.select(schema.accounts.c.error).where(schema.accounts.c.id == account.id)
            ).scalar_one()
            for entity in LOAD_ORDER:
                core = SPECS[entity].core
                count = conn.execute(
                    sa.select(sa.func.count()).where(core.c.account_id == account.id, core.c.deleted_at.is_(None))
                ).scalar_one()
                state = conn.execute(
                    sa.select(
                        schema.sync_state.c.cursor, schema.sync_state.c.last_sync_at, schema.sync_state.c.error_message
                    ).where(
                        schema.sync_state.c.account_id == account.id,
                        schema.sync_state.c.entity_type == f"{entity}@delta",
                    )
                ).first()
                dlq = conn.execute(
                    sa.select(sa.func.count()).where(
                        schema.failed_records.c.account_id == account.id,
                        schema.failed_records.c.entity_name == entity,
                        schema.failed_records.c.resolved_at.is_(None),
                    )
                ).scalar_one()
                rows.append({
                    "integration": account.integration, "account": account.name, "status": account.status,
                    "error": error, "entity": entity, "rows": count, "dlq_open": dlq,
                    "entity_error": state[2] if state else None,
                    "delta_cursor": state[0] if state else None,
                    "last_sync_at": state[1].isoformat(timespec="seconds") if state and state[1] else None,
                })  # fmt: skip
    return rows
