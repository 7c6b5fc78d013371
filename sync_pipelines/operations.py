"""Operator actions shared by the CLI and the demo: they run the same Dagster assets and jobs a user runs
from the UI, in-process, on the project's Dagster instance."""

from __future__ import annotations

import time
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
    instance: dg.DagsterInstance,
    integration: Integration,
    name: str,
    secrets: dict[str, str],
    resource: Any = None,
) -> accounts.Account:
    """Store an account's credentials (encrypted) and add its partition row. Every declared credential must be
    given and non-empty."""
    if not name.strip() or any(ch in name for ch in "|[],"):
        raise OperatorError(f"account name {name!r}: expected a non-empty name without | [ ] or ,")
    for field in integration.credential_fields:
        if not (secrets.get(field) or "").strip():
            raise OperatorError(f"{integration.name} account {name}: {field} is empty; expected the account's {field}")
    if integration.connect is not None:
        secrets = integration.connect(resource if resource is not None else integration.resource(), secrets)
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
    on_run: Callable[[RunOutcome, float], None] | None = None,
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
                run_started = time.monotonic()
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
                if on_run is not None:  # `on_run` hears of each run as it ends, with its seconds
                    on_run(outcomes[-1], time.monotonic() - run_started)
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
    """Per account and entity: live rows in core, open DLQ records, the delta cursor, and the entity's last sync
    (status, started, finished, error: the most recently started of its cursors). Set-based: four queries
    whatever the number of accounts."""
    chosen = [i for i in registry.INTEGRATIONS.values() if integration_name in (None, i.name)]
    if not chosen:
        return []
    tables = [(i.name, e.name, e.spec.core) for i in chosen for e in i.entities]
    live = sa.union_all(*[
        sa.select(sa.literal(name).label("integration"), sa.literal(entity).label("entity"), t.c.account_id,
                  sa.func.count().label("n"))
        .where(t.c.deleted_at.is_(None)).group_by(t.c.account_id)
        for name, entity, t in tables
    ])  # fmt: skip
    st, fr, acc = schema.sync_state, schema.failed_records, schema.accounts
    names = [i.name for i in chosen]
    with engine.connect() as conn:
        counts = {(r.integration, r.entity, r.account_id): int(r.n) for r in conn.execute(live)}
        dlq = {
            (r.integration, r.entity_name, r.account_id): int(r.n)
            for r in conn.execute(
                sa.select(fr.c.integration, fr.c.entity_name, fr.c.account_id, sa.func.count().label("n"))
                .where(fr.c.resolved_at.is_(None), fr.c.integration.in_(names))
                .group_by(fr.c.integration, fr.c.entity_name, fr.c.account_id)
            )
        }
        states = (
            conn.execute(
                sa.select(st).where(st.c.integration.in_(names)).order_by(st.c.last_started_at.asc().nulls_first())
            )
            .mappings()
            .all()
        )
        account_rows = (
            conn.execute(sa.select(acc).where(acc.c.integration.in_(names)).order_by(acc.c.integration, acc.c.name))
            .mappings()
            .all()
        )
    delta: dict[tuple[str, object, str], Any] = {}
    latest: dict[tuple[str, object, str], Any] = {}
    for row in states:  # ordered by start: the last one written per entity is the most recent
        entity = str(row["entity_type"]).split("@", 1)[0]
        key = (row["integration"], row["account_id"], entity)
        latest[key] = row
        if row["entity_type"] == f"{entity}@delta":
            delta[key] = row
    rows: list[dict[str, object]] = []
    by_name = {i.name: i for i in chosen}
    for account in account_rows:
        integration = by_name[account["integration"]]
        for n, entity in enumerate(integration.entities):
            key = (integration.name, account["id"], entity.name)
            last, cursor = latest.get(key), delta.get(key)
            rows.append({
                "integration": integration.name, "account": account["name"], "status": account["status"],
                "error": account["error"], "entity": entity.name, "first_of_account": n == 0,
                "rows": counts.get((integration.name, entity.name, account["id"]), 0),
                "dlq_open": dlq.get((integration.name, entity.name, account["id"]), 0),
                "sync_status": last["status"] if last else "never",
                "last_started_at": _stamp(last["last_started_at"]) if last else None,
                "last_finished_at": _stamp(last["last_finished_at"]) if last else None,
                "entity_error": last["error_message"] if last else None,
                "delta_cursor": cursor["cursor"] if cursor else None,
                "last_sync_at": _stamp(cursor["last_sync_at"]) if cursor else None,
            })  # fmt: skip
    return rows


def _stamp(value: object) -> str | None:
    return value.isoformat(timespec="seconds") if isinstance(value, datetime) else None
