"""`make demo`: the whole product on one machine, end to end, with a summary a person can read.

Everything the demo moves, it moves through Dagster runs on the project's instance, so that `make dev` afterwards
shows every asset materialized: each integration's backfill (a run per entity) and delta, the webhook batches the
sandbox's changes set off, the unified core assets, the ERP's night passes (a run per night-window tick) and
`platform/bridge_health` with every asset check. The sandbox is served where the sources' resources point (see
local_stack.py), with the seed, scale and clock that `make dev` serves afterwards.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import click
import sqlalchemy as sa
from sqlalchemy.engine import URL

from sync_pipelines.lib import db, migrations, schema
from sync_pipelines.lib.errors import OperatorError
from sync_pipelines.lib.integration.declaration import Integration

SEED = 42
ADVANCE_SECONDS = 3600.0
Echo = Callable[[str], Any]


def loaded_asset_groups() -> dict[str, int]:
    from sync_pipelines.definitions import defs

    groups: Counter[str] = Counter()
    for spec in defs.resolve_all_asset_specs():
        groups[spec.group_name or "default"] += 1
    return dict(sorted(groups.items()))


def bridge_table_counts(url: URL) -> dict[str, int]:
    with db.get_engine(url).connect() as conn:
        return {
            table.name: int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
            for table in schema.metadata.sorted_tables
            if table.schema == schema.BRIDGE
        }


def print_foundation_summary(url: URL) -> None:
    click.echo("== sync_pipelines ==")
    click.echo(f"database:        {db.safe_url(url)}")
    where = f"embedded Postgres under {db.sync_home()}" if db.is_embedded() else "SYNC_DATABASE_URL"
    click.echo(f"server:          {where}")
    click.echo(f"dagster storage: database {db.dagster_database_name()} on the same server")
    click.echo(f"migration:       {migrations.current_revision(url)} (head {migrations.head_revision()})")
    groups = loaded_asset_groups()
    click.echo(f"asset groups:    {', '.join(f'{g} ({n})' for g, n in groups.items()) or 'none'}")
    counts = bridge_table_counts(url)
    click.echo("bridge tables:   " + ", ".join(f"{name}={n}" for name, n in counts.items()))


def _rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:,.0f} rows/s" if seconds > 0 and rows else "-"


def backfill(instance: Any, integration: Integration, resource: Any, echo: Echo = click.echo) -> bool:
    """Every entity of every account, whole history, one Dagster run per entity and account; a line per entity."""
    from sync_pipelines import operations

    started = time.monotonic()
    runs = failed = fetched = 0
    for n, entity in enumerate(integration.load_order, 1):
        step = time.monotonic()
        outcomes = operations.sync(instance, integration, entities=[entity], resource=resource)
        seconds = time.monotonic() - step
        rows = sum(int(str(o.metadata.get("rows_fetched", 0) or 0)) for o in outcomes)
        inserted = sum(int(str(o.metadata.get("rows_inserted", 0) or 0)) for o in outcomes)
        bad = [o for o in outcomes if not o.success]
        runs, failed, fetched = runs + len(outcomes), failed + len(bad), fetched + rows
        echo(f"  [{n}/{len(integration.load_order)}] {entity:<24} {len(outcomes)} run(s) "
             f"{'ok  ' if not bad else 'FAIL'} fetched={rows:<7,} inserted={inserted:<7,} {seconds:5.1f} s "
             f"{_rate(rows, seconds)}")  # fmt: skip
        if bad:
            # Later entities would retry against the same fault (minutes each): the error above says what to fix.
            echo(f"  stopping {integration.title}'s backfill at {entity}: see the error above")
            break
    seconds = time.monotonic() - started
    echo(f"backfill: {runs} Dagster runs, {fetched:,} records in {seconds:.1f} s ({_rate(fetched, seconds)}), "
         + ("all succeeded" if not failed else f"{failed} FAILED"))  # fmt: skip
    return not failed


def _print_counts(url: URL, integration: Integration, resource: Any, echo: Echo = click.echo) -> bool:
    """Each account's and entity's live rows in core against the total the source itself reports (the
    reconciliation an operator would run against the real API); True when every reported total matches."""
    from sync_pipelines.lib import accounts
    from sync_pipelines.lib.integration import sync

    engine = db.get_engine(url)
    echo(f"{'account':<12}{'entity':<24}{'source':>9}{'warehouse':>11}  match")
    all_match = True
    for account in accounts.list_accounts(engine, integration.name):
        client_for = lambda a: resource.client_for(engine, a)  # noqa: E731
        for entity in integration.load_order:
            for row in sync.reconcile(engine, integration, client_for, account, entity, None):
                source, warehouse = row["source"], row["warehouse"]
                match = "-" if source is None else ("yes" if source == warehouse else "NO")
                all_match &= match != "NO"
                echo(f"{account.name:<12}{entity:<24}{source if source is not None else '-':>9}"
                     f"{warehouse:>11}  {match}")  # fmt: skip
    return all_match


def _unified_counts(url: URL) -> dict[str, int]:
    with db.get_engine(url).connect() as conn:
        return {
            t: int(conn.execute(sa.text(f"SELECT count(*) FROM core.{t} WHERE deleted_at IS NULL")).scalar_one())
            for t in ("participant", "contact_log", "transaction", "listing")
        }


def _quiet(run_config: Any) -> dict[str, Any]:
    from sync_pipelines import operations

    config = run_config.to_config_dict() if hasattr(run_config, "to_config_dict") else dict(run_config or {})
    return {**config, **operations.QUIET}


def apply_webhooks(instance: Any, resources: dict[str, Any], echo: Echo = click.echo) -> bool:
    """What the daemon does with queued webhook events, as Dagster runs: each integration's sensor claims a batch
    and its apply job runs it."""
    import dagster as dg

    from sync_pipelines import registry
    from sync_pipelines.definitions import defs
    from sync_pipelines.lib.resources import WarehouseResource

    ok = True
    for integration in registry.INTEGRATIONS.values():
        if integration.webhooks is None:
            continue
        sensor = defs.resolve_sensor_def(f"{integration.name}_webhook_events")
        job = defs.resolve_job_def(f"{integration.name}_webhook_apply")
        batches = events = 0
        while True:
            result = sensor(dg.build_sensor_context(instance=instance, resources={"warehouse": WarehouseResource()}))
            requests = list(getattr(result, "run_requests", None) or [])
            if not requests:
                break
            for request in requests:
                outcome = job.execute_in_process(
                    run_config=_quiet(request.run_config), instance=instance, tags=request.tags, raise_on_error=False,
                    resources={integration.resource_key: resources[integration.name], "warehouse": WarehouseResource()},
                )  # fmt: skip
                ok &= outcome.success
                batches += 1
                events += int(request.tags.get("sync_pipelines/webhook_events", 0))
        echo(f"  {integration.title:<16} {events:>4} webhook events applied in {batches} Dagster run(s)")
    return ok


def _is_check(event: Any) -> bool:
    import dagster as dg

    return event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION


def run_checks_and_health(instance: Any, echo: Echo = click.echo) -> bool:
    """`platform/bridge_health` and every asset check no materialization has run yet (orphan children, the sources'
    own reconciliations), as Dagster runs; a line per check that did not pass."""
    from sync_pipelines import operations
    from sync_pipelines.definitions import defs

    health = defs.resolve_job_def("platform_bridge_health").execute_in_process(
        instance=instance, run_config=operations.QUIET, raise_on_error=False
    )
    ok = health.success
    repo = defs.get_repository_def()
    embedded = {key for a in repo.assets_defs_by_key.values() if a.keys for key in a.check_keys}
    standalone = {key for key in repo.asset_graph.asset_check_keys if key not in embedded}
    standalone -= {key for key in standalone if key.asset_key.path[0] == "platform"}
    results = []
    if standalone:
        job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_check_selection=standalone)
        outcome = job.execute_in_process(instance=instance, run_config=operations.QUIET, raise_on_error=False)
        ok &= outcome.success
        results = [e.asset_check_evaluation_data for e in outcome.all_events if _is_check(e)]
    results += [e.asset_check_evaluation_data for e in health.all_events if _is_check(e)]
    for r in results:
        if not r.passed:
            echo(f"  check {r.asset_check_key.asset_key.to_user_string()}:{r.asset_check_key.name} did not pass")
    counts = {k: v.value for k, v in next(
        (e.step_materialization_data.materialization.metadata for e in health.all_events if e.is_step_materialization),
        {},
    ).items()}  # fmt: skip
    passed = sum(1 for r in results if r.passed)
    echo(f"bridge health: {counts or 'not measured'}; {passed} of {len(results)} standalone checks passed")
    return ok and passed == len(results)


def run_demo(url: URL) -> None:
    import dagster as dg

    from sync_pipelines import local_stack, operations, registry
    from sync_pipelines.cli_background import demo_background_pass
    from sync_pipelines.webhooks_app import ReceiverServer

    started = time.monotonic()
    print_foundation_summary(url)
    root = local_stack.sandbox_root()
    if root is None:
        raise OperatorError(
            "the demo syncs from the built-in sandbox, but no source's base URL points at this machine: unset the "
            "SYNC_<SOURCE>_BASE_URL settings (their default is the sandbox at 127.0.0.1:8900)"
        )
    state = local_stack.SandboxState(seed=SEED, scale=local_stack.demo_scale())
    server = local_stack.serve_sandbox(root, state)
    sandbox = server.sandbox
    ok = True
    runs = 0
    try:
        with ReceiverServer(url) as receiver, dg.DagsterInstance.get() as instance:
            operations.pooled(instance)
            click.echo(f"\nsandbox on {root} (seed {state.seed}, scale {state.scale}): "
                       f"{', '.join(sandbox.simulators)}; webhook receiver on {receiver.url}")  # fmt: skip
            local_stack.connect_accounts(instance, sandbox, root, receiver.url)
            resources = {name: i.sandbox_resource(root) for name, i in registry.INTEGRATIONS.items()
                         if i.sandbox_resource is not None}  # fmt: skip
            for integration in registry.INTEGRATIONS.values():
                if integration.name not in resources:
                    click.echo(f"\n== {integration.title}: no sandbox resource declared, skipped ==")
                    continue
                click.echo(f"\n== {integration.title}: backfill of every month, {root}/{integration.name} ==")
                ok = backfill(instance, integration, resources[integration.name]) and ok
                ok = _print_counts(url, integration, resources[integration.name]) and ok
            ok = operations.rebuild_unified(instance) and ok
            click.echo(f"\nunified core assets rebuilt: {_unified_counts(url)}")

            sandbox.advance(ADVANCE_SECONDS)
            local_stack.save_state(local_stack.SandboxState(state.seed, state.scale, ADVANCE_SECONDS))
            click.echo(f"\nsandbox clock +{ADVANCE_SECONDS / 3600:g} h: the sources created, changed and deleted "
                       "records and sent webhooks")  # fmt: skip
            sandbox.emitter.wait_idle(30)
            ok = apply_webhooks(instance, resources) and ok
            for integration in registry.INTEGRATIONS.values():
                if integration.name not in resources:
                    continue
                step = time.monotonic()
                delta_ok = operations.run_delta(instance, integration, resources[integration.name])
                ok = delta_ok and ok
                click.echo(f"  {integration.title:<16} delta run {'succeeded' if delta_ok else 'FAILED'} "
                           f"in {time.monotonic() - step:.1f} s")  # fmt: skip
            ok = operations.rebuild_unified(instance) and ok
            click.echo(f"unified core assets after the deltas: {_unified_counts(url)}")
            click.echo("")
            ok = demo_background_pass(url, instance=instance) and ok
            click.echo("")
            ok = run_checks_and_health(instance) and ok
            runs = instance.get_runs_count()
    finally:
        server.stop()
    click.echo(f"\n== done in {time.monotonic() - started:.0f} s: {runs} Dagster runs, "
               f"{'every one succeeded' if ok else 'SOME FAILED (see above)'} ==")  # fmt: skip
    click.echo("next steps:")
    click.echo("  make dev                           the Dagster UI on http://127.0.0.1:3000 with the sandbox, the "
               "webhook receiver and the schedules running (Ctrl-C stops them all)")  # fmt: skip
    click.echo("  .venv/bin/sync-pipelines status   rows, DLQ and cursors per account and entity")
    click.echo(f"  the data                           {db.safe_url(url)} (schemas core, staging, bridge); "
               "`.venv/bin/sync-pipelines db url` prints it")  # fmt: skip
    if not ok:
        raise SystemExit(1)
