"""`make demo`: the whole product on one machine, end to end, with a summary a person can read."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import click
import sqlalchemy as sa
from sqlalchemy.engine import URL

from sync_pipelines.lib import db, migrations, schema
from sync_pipelines.lib.integration.declaration import Integration


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


def sync_integration_from_sandbox(url: URL, integration: Integration) -> bool:
    """One integration end to end: sandbox over HTTP -> Dagster backfill of every month -> clock moves -> delta."""
    import os

    import dagster as dg

    from sync_pipelines import operations
    from sync_pipelines.sandbox.app import Sandbox, SandboxServer

    scale = int(os.environ.get("SYNC_DEMO_SCALE", "300"))
    sandbox = Sandbox(seed=42, scale=scale, sources=[integration.name])
    simulator = sandbox[integration.name]
    # The demo is about our pipeline, not about waiting out the sources' rate-limit windows.
    simulator.rate_limits.update({context: (0, 10.0) for context in simulator.rate_limits})
    ok = True
    with SandboxServer(sandbox) as server, dg.DagsterInstance.get() as instance:
        base_url = f"{server.url}/{integration.name}"
        click.echo(f"\n== {integration.title}: sandbox on {base_url} (seed 42, scale {scale}) ==")
        assert integration.sandbox_resource is not None, f"{integration.name} declares no sandbox resource"
        resource = integration.sandbox_resource(server.url)
        for name, given in simulator.credentials()["accounts"].items():
            secrets = dict(given) if isinstance(given, dict) else {"api_key": given}
            operations.add_account(instance, integration, name, secrets, resource=resource)
        started = time.monotonic()
        outcomes = operations.sync(instance, integration, resource=resource)
        ok = all(o.success for o in outcomes)
        click.echo(f"backfill: {len(outcomes)} Dagster runs in {time.monotonic() - started:.1f} s "
                   f"({'all succeeded' if ok else 'SOME FAILED'})")  # fmt: skip
        ok = _print_counts(url, integration, resource) and ok
        ok = operations.rebuild_unified(instance) and ok
        click.echo(f"unified: core.participant and core.contact_log rebuilt: {_unified_counts(url)}")
        sandbox.advance(3600)
        click.echo("\nsandbox clock +1 h: the sources created, changed and deleted records; running the delta job")
        ok = operations.run_delta(instance, integration, resource) and ok
        rows = operations.status_rows(db.get_engine(url), integration.name)
        first = str(rows[0]["account"]) if rows else ""
        changed = {r["entity"]: r["rows"] for r in rows if r["account"] == first}
        click.echo(f"after delta, {first} rows in core: {changed}")
    return ok


def _unified_counts(url: URL) -> dict[str, int]:
    with db.get_engine(url).connect() as conn:
        return {
            t: int(conn.execute(sa.text(f"SELECT count(*) FROM core.{t} WHERE deleted_at IS NULL")).scalar_one())
            for t in ("participant", "contact_log")
        }


def _print_counts(url: URL, integration: Integration, resource: Any) -> bool:
    """Each account's and entity's live rows in core against the total the source itself reports (the
    reconciliation an operator would run against the real API); True when every reported total matches."""
    from sync_pipelines.lib import accounts
    from sync_pipelines.lib.integration import sync

    engine = db.get_engine(url)
    click.echo(f"{'account':<12}{'entity':<24}{'source':>9}{'warehouse':>11}  match")
    all_match = True
    for account in accounts.list_accounts(engine, integration.name):
        client_for = lambda a: resource.client_for(engine, a)  # noqa: E731
        for entity in integration.load_order:
            for row in sync.reconcile(engine, integration, client_for, account, entity, None):
                source, warehouse = row["source"], row["warehouse"]
                match = "-" if source is None else ("yes" if source == warehouse else "NO")
                all_match &= match != "NO"
                click.echo(f"{account.name:<12}{entity:<24}{source if source is not None else '-':>9}"
                           f"{warehouse:>11}  {match}")  # fmt: skip
    return all_match


def run_demo(url: URL) -> None:
    from sync_pipelines import registry
    from sync_pipelines.cli_background import demo_background_pass

    print_foundation_summary(url)
    for integration in registry.INTEGRATIONS.values():
        if not sync_integration_from_sandbox(url, integration):
            raise SystemExit(1)
    if not demo_background_pass(url):
        raise SystemExit(1)
