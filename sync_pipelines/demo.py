"""`make demo`: the whole product on one machine, end to end, with a summary a person can read."""

from __future__ import annotations

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


def run_demo(url: URL) -> None:
    print_foundation_summary(url)
