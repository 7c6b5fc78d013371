"""Migration 0008 creates exactly SkySlope's tables as tables.py declares them, and its downgrade removes them."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import URL

from sync_pipelines import warehouse_schema as _warehouse_schema  # noqa: F401  (every registered integration's tables)
from sync_pipelines.defs.skyslope import tables
from sync_pipelines.lib import db, migrations, schema


def _skyslope_diff(url: URL) -> list:
    """Differences between the database and the metadata that concern SkySlope's tables (other integrations' are
    their own tests' business)."""
    with db.get_engine(url).connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "include_schemas": True,
                "include_name": lambda name, type_, _: name in schema.SCHEMAS if type_ == "schema" else True,
                "compare_type": True,
                "compare_server_default": True,
            },
        )
        return [d for d in compare_metadata(context, schema.metadata) if tables.PREFIX in repr(d)]


def _skyslope_tables(url: URL) -> set[str]:
    with db.get_engine(url).connect() as conn:
        inspector = sa.inspect(conn)
        names = {f"{s}.{t}" for s in ("staging", "core") for t in inspector.get_table_names(schema=s)}
    return {n for n in names if tables.PREFIX in n}


def test_migration_0008_matches_the_tables_and_its_downgrade_removes_them(database_url: URL) -> None:
    declared = {f"{t.schema}.{t.name}" for pair in tables.TABLES.values() for t in pair}
    assert _skyslope_tables(database_url) == declared and len(declared) == 8
    assert _skyslope_diff(database_url) == []
    migrations.downgrade("0007", database_url)
    assert _skyslope_tables(database_url) == set()
    migrations.upgrade(database_url)
    assert _skyslope_tables(database_url) == declared
    assert _skyslope_diff(database_url) == []
