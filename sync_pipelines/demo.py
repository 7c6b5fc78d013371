"""`make demo`: the whole product on one machine, end to end, with a summary a person can read."""

from __future__ import annotations

import time
from collections import Counter

import click
import sqlalchemy as sa
from sqlalchemy.engine import URL

from sync_pipelines.lib import db, migrations, schema


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


def sync_fub_from_sandbox(url: URL) -> bool:
    """FUB end to end: sandbox over HTTP -> Dagster backfill of every month -> clock moves -> delta sync."""
    import os

    import dagster as dg

    from sync_pipelines import operations
    from sync_pipelines.defs.fub.resources import FubResource
    from sync_pipelines.sandbox.app import Sandbox, SandboxServer

    scale = int(os.environ.get("SYNC_DEMO_SCALE", "300"))
    sandbox = Sandbox(seed=42, scale=scale, sources=["fub"])
    fub_sim = sandbox["fub"]
    # The demo is about our pipeline, not about waiting out FUB's 10-second windows.
    fub_sim.rate_limits.update({"global": (2000, 10.0), "events": (2000, 10.0)})
    ok = True
    with SandboxServer(sandbox) as server, dg.DagsterInstance.get() as instance:
        click.echo(f"\n== Follow Up Boss: sandbox on {server.url}/fub (seed 42, {scale} people per scale unit) ==")
        fub = FubResource(base_url=f"{server.url}/fub")
        for name, key in fub_sim.credentials()["accounts"].items():
            operations.add_fub_account(instance, name, key)
        started = time.monotonic()
        outcomes = operations.sync_fub(instance, fub=fub)
        ok = all(o.success for o in outcomes)
        click.echo(f"backfill: {len(outcomes)} Dagster runs in {time.monotonic() - started:.1f} s "
                   f"({'all succeeded' if ok else 'SOME FAILED'})")  # fmt: skip
        _print_counts(url, fub_sim)
        ok = operations.rebuild_unified(instance) and ok
        click.echo(f"unified: core.participant and core.contact_log rebuilt: {_unified_counts(url)}")
        sandbox.advance(3600)
        click.echo("\nsandbox clock +1 h: the sources created, changed and deleted records; running the delta job")
        ok = operations.run_fub_delta(instance, fub) and ok
        rows = operations.status_rows(db.get_engine(url))
        changed = {r["entity"]: r["rows"] for r in rows if r["account"] == "acme"}
        click.echo(f"after delta, acme rows in core: {changed}")
    return ok


def _unified_counts(url: URL) -> dict[str, int]:
    with db.get_engine(url).connect() as conn:
        return {
            t: int(conn.execute(sa.text(f"SELECT count(*) FROM core.{t} WHERE deleted_at IS NULL")).scalar_one())
            for t in ("participant", "contact_log")
        }


def _print_counts(url: URL, fub_sim: object) -> None:
    from sync_pipelines import operations

    rows = operations.status_rows(db.get_engine(url))
    click.echo(f"{'account':<10}{'entity':<15}{'sandbox':>9}{'warehouse':>11}  match")
    from sync_pipelines.defs.fub.entities import COLLECTIONS

    for r in rows:
        expected = fub_sim.counts(str(r["account"]))[COLLECTIONS[str(r["entity"])]]  # type: ignore[attr-defined]
        match = "yes" if expected == r["rows"] else "NO"
        click.echo(f"{r['account']!s:<10}{r['entity']!s:<15}{expected:>9}{r['rows']:>11}  {match}")


def run_demo(url: URL) -> None:
    from sync_pipelines.cli_background import demo_background_pass

    print_foundation_summary(url)
    if not sync_fub_from_sandbox(url):
        raise SystemExit(1)
    if not demo_background_pass(url):
        raise SystemExit(1)
