"""Operator actions shared by the CLI and the demo: they run the same Dagster assets and jobs a user runs
from the UI, in-process, on the project's Dagster instance."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import dagster as dg
import sqlalchemy as sa

from sync_pipelines import registry
from sync_pipelines.lib import accounts, db, interrupts, runs, schema
from sync_pipelines.lib.errors import OperatorError
from sync_pipelines.lib.integration import builders
from sync_pipelines.lib.integration.declaration import Integration
from sync_pipelines.lib.resources import WarehouseResource

# In-process runs print every Dagster event at DEBUG; the event log keeps them, the terminal needs warnings.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
STOPPED_AT_LAST_COMMIT = interrupts.STOPPED_AT_LAST_COMMIT


def entity_asset(integration: Integration, entity: str) -> dg.AssetsDefinition:
    """The asset of `entity`, the very object the Definitions hold (before resources are bound to it)."""
    check_entity(integration, entity)
    return builders.entity_assets(integration)[integration.load_order.index(entity)]


def pooled(instance: dg.DagsterInstance) -> dg.DagsterInstance:
    """dagster-postgres opens a new connection per stored event (NullPool): ~4 ms each, and a ranged run
    over five years of months stores hundreds of events. A long-lived in-process caller can hold a pool,
    exactly as the webserver does."""
    storage = instance.event_log_storage
    if not getattr(storage, "_sync_pipelines_pooled", False):
        storage.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=5)
        storage._sync_pipelines_pooled = True  # type: ignore[attr-defined]
    return instance


def ensure_account_partitions(instance: dg.DagsterInstance, integration: Integration, names: list[str]) -> None:
    partitions_name = builders.partitions(integration).accounts.name
    known = set(instance.get_dynamic_partitions(partitions_name))
    missing = [n for n in names if n not in known]
    if missing:
        instance.add_dynamic_partitions(partitions_name, missing)


def add_account(
    instance: dg.DagsterInstance, integration: Integration, name: str, secrets: dict[str, str]
) -> accounts.Account:
    """Store an account's credentials (encrypted) and add its partition row. Every declared credential must be
    given and non-empty."""
    if not name.strip() or any(ch in name for ch in "|[],"):
        raise OperatorError(f"account name {name!r}: expected a non-empty name without | [ ] or ,")
    for field in integration.credential_fields:
        if not (secrets.get(field) or "").strip():
            raise OperatorError(f"{integration.name} account {name}: {field} is empty; expected the account's {field}")
    if integration.connect is not None:
        secrets = integration.connect(integration.resource(), secrets)
    account = accounts.upsert_account(db.get_engine(), integration.name, name, secrets)
    ensure_account_partitions(instance, integration, [name])
    return account


@dataclass
class RunOutcome:
    entity: str
    account: str
    partitions: str
    success: bool
    run_id: str
    metadata: dict[str, object]


def check_entity(integration: Integration, entity: str) -> None:
    if entity not in integration.load_order:
        known = ", ".join(integration.load_order)
        raise OperatorError(f"unknown entity {entity!r} of {integration.name}; known: {known}")


def check_period(integration: Integration, period: str) -> None:
    """A month the integration's partitions hold, as YYYY-MM, or a ValueError saying what was expected."""
    periods = builders.partitions(integration).periods
    first, last = periods.get_first_partition_key(), periods.get_last_partition_key()
    try:
        datetime.strptime(period, "%Y-%m")
    except ValueError:
        raise OperatorError(f"period {period!r}: expected a month as YYYY-MM, from {first} to {last}") from None
    if len(period) != 7 or not first <= period <= last:
        raise OperatorError(f"period {period!r}: expected a month as YYYY-MM, from {first} to {last}")


def select_accounts(engine: sa.Engine, integration: Integration, names: list[str] | None) -> list[accounts.Account]:
    """The named accounts (all active ones when none is named), or a ValueError naming an unknown one."""
    known = accounts.list_accounts(engine, integration.name)
    if not names:
        return known
    by_name = {a.name: a for a in known}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        listed = ", ".join(by_name) or f"none yet: `sync-pipelines accounts add {integration.name}`"
        raise OperatorError(f"unknown {integration.name} account {', '.join(map(repr, unknown))}; known: {listed}")
    return [by_name[n] for n in names]


def sync(
    instance: dg.DagsterInstance,
    integration: Integration,
    *,
    account_names: list[str] | None = None,
    entities: list[str] | None = None,
    period: str | None = None,
    resource: Any = None,
    raise_on_error: bool = False,
    on_reaped: Callable[[runs.Reaped], None] | None = None,
) -> list[RunOutcome]:
    """Materialize an integration's assets through Dagster: one run per entity and account, a whole-history
    range (BackfillPolicy.single_run) unless `period` names one month.

    Before each run (and every few seconds while one waits for a pool slot), runs of this host whose process
    died are marked failed and their slots freed (`on_reaped` hears of each). A SIGINT/SIGTERM stops after
    the run it interrupted: `interrupts.Interrupted` is raised, the cursor stays at the last committed batch."""
    engine = db.get_engine()
    if period:
        check_period(integration, period)
    for entity in entities or []:
        check_entity(integration, entity)
    selected = select_accounts(engine, integration, account_names)
    pooled(instance)
    notify = on_reaped or (lambda _reaped: None)
    ensure_account_partitions(instance, integration, [a.name for a in selected])
    resources = {integration.resource_key: resource or integration.resource(), "warehouse": WarehouseResource()}
    periods = builders.partitions(integration).periods
    last_period = periods.get_last_partition_key()
    first_period = periods.get_first_partition_key()
    outcomes = []
    with runs.reaping(instance, notify):
        for entity in entities or integration.load_order:
            declared = integration.entity(entity)
            asset = entity_asset(integration, entity)
            for account in selected:
                # The run records this process, so that a later command can tell that it died (lib/runs.py).
                tags: dict[str, str] = {**runs.process_tags(), **builders.run_tags(integration)}
                partition_key: str | None = None
                if not declared.by_period:
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
                    if event.asset_key == dg.AssetKey([integration.name, "core", entity]):
                        materialization = event.step_materialization_data.materialization
                        metadata = {k: v.value for k, v in materialization.metadata.items()}
                outcomes.append(RunOutcome(entity, account.name, label, result.success, result.run_id, metadata))
                # Dagster turns a signal during the run into a failed run and forgets it: stop here.
                interrupts.check(STOPPED_AT_LAST_COMMIT)
    return outcomes


def rebuild_unified(instance: dg.DagsterInstance) -> bool:
    from sync_pipelines.defs.core.assets import contact_log, participant, transactions_and_listings

    result = dg.materialize(
        [participant, contact_log, transactions_and_listings], instance=pooled(instance),
        resources={"warehouse": WarehouseResource()},
        run_config=QUIET, raise_on_error=False,
    )  # fmt: skip
    return result.success


def delta_job(integration: Integration) -> dg.JobDefinition:
    from sync_pipelines.definitions import defs

    return defs.resolve_job_def(f"{integration.name}_delta_sync")


def run_delta(
    instance: dg.DagsterInstance,
    integration: Integration,
    resource: Any = None,
    on_reaped: Callable[[runs.Reaped], None] | None = None,
    account_names: list[str] | None = None,
) -> bool:
    """The delta job, in-process (every account, or those named); dead runs are reaped first and a signal stops
    it as in `sync`."""
    if account_names:
        select_accounts(db.get_engine(), integration, account_names)
    notify = on_reaped or (lambda _reaped: None)
    for reaped in runs.reap_dead_runs(instance):
        notify(reaped)
    with runs.reaping(instance, notify):
        result = delta_job(integration).execute_in_process(
            instance=instance,
            resources={integration.resource_key: resource or integration.resource(), "warehouse": WarehouseResource()},
            raise_on_error=False,
            run_config={**QUIET, "ops": {f"{integration.name}_delta": {"config": {"accounts": account_names or []}}}},
            tags=runs.process_tags(),
        )
    interrupts.check(STOPPED_AT_LAST_COMMIT)
    return result.success


def status_rows(engine: sa.Engine, integration_name: str | None = None) -> list[dict[str, object]]:
    """Per account and entity: live rows in core, the delta cursor, the last sync and the account's state."""
    rows = []
    with engine.connect() as conn:
        for account in accounts.list_accounts(engine, integration_name, active_only=False):
            integration = registry.INTEGRATIONS.get(account.integration)
            if integration is None:
                continue
            error = conn.execute(
                sa.select(schema.accounts.c.error).where(schema.accounts.c.id == account.id)
            ).scalar_one()
            for entity in integration.entities:
                core = entity.spec.core
                count = conn.execute(
                    sa.select(sa.func.count()).where(core.c.account_id == account.id, core.c.deleted_at.is_(None))
                ).scalar_one()
                state = conn.execute(
                    sa.select(
                        schema.sync_state.c.cursor, schema.sync_state.c.last_sync_at, schema.sync_state.c.error_message
                    ).where(
                        schema.sync_state.c.integration == integration.name,
                        schema.sync_state.c.account_id == account.id,
                        schema.sync_state.c.entity_type == f"{entity.name}@delta",
                    )
                ).first()
                dlq = conn.execute(
                    sa.select(sa.func.count()).where(
                        schema.failed_records.c.account_id == account.id,
                        schema.failed_records.c.entity_name == entity.name,
                        schema.failed_records.c.resolved_at.is_(None),
                    )
                ).scalar_one()
                rows.append({
                    "integration": account.integration, "account": account.name, "status": account.status,
                    "error": error, "entity": entity.name, "rows": count, "dlq_open": dlq,
                    "first_of_account": entity is integration.entities[0],
                    "entity_error": state[2] if state else None,
                    "delta_cursor": state[0] if state else None,
                    "last_sync_at": state[1].isoformat(timespec="seconds") if state and state[1] else None,
                })  # fmt: skip
    return rows
