"""Migration 0009 creates exactly DotLoop's tables on the metadata (defs/dotloop/tables.py), and goes down and up."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import URL

from sync_pipelines.defs.dotloop import tables
from sync_pipelines.lib import db, migrations, schema

NAMES = {tables.PREFIX + e for e in tables.ENTITIES}


def _mentions_dotloop(item: Any) -> bool:
    """A diff entry (or a group of them, for a column's changes) about one of DotLoop's tables."""
    if isinstance(item, list):
        return any(_mentions_dotloop(i) for i in item)
    for part in item[1:] if isinstance(item, tuple) else ():
        table = part if isinstance(part, sa.Table) else getattr(part, "table", None)
        if isinstance(table, sa.Table) and table.name in NAMES:
            return True
        if isinstance(part, str) and part in NAMES:
            return True
    return False


def _diff(url: URL) -> list:
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
        return [d for d in compare_metadata(context, schema.metadata) if _mentions_dotloop(d)]


def test_migration_0009_matches_the_metadata_and_round_trips(database_url: URL) -> None:
    assert _diff(database_url) == []
    migrations.downgrade("0008", database_url)
    with db.get_engine(database_url).connect() as conn:
        left = {t for s in ("core", "staging") for t in sa.inspect(conn).get_table_names(schema=s) if t in NAMES}
    assert left == set()
    assert len(_diff(database_url)) >= len(NAMES) * 2  # the filter sees DotLoop's tables missing, staging and core
    migrations.upgrade(database_url)
    assert _diff(database_url) == []
    with db.get_engine(database_url).connect() as conn:
        indexes = {i["name"] for i in sa.inspect(conn).get_indexes("dotloop_loops", schema="core")}
    assert "ix_dotloop_loops_synced_at" in indexes
