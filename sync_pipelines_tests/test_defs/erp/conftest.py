"""Fixtures for the ERP background sync: a generated sandbox ERP beside each test's warehouse."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

import sync_pipelines.defs.erp.tables  # noqa: F401  (registers the ERP tables until lib/schema.py has them)
from sync_pipelines.defs.erp.entities import PRIMARY_KEYS
from sync_pipelines.lib import db
from sync_pipelines.sandbox import erp
from sync_pipelines_tests.conftest import TestServer

SEED = 20261123


@pytest.fixture
def erp_url(pg_server: TestServer, database_url: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[URL]:
    """An empty ERP database (schema only); SYNC_ERP_DATABASE_URL points at it."""
    name = f"erp_{uuid4().hex[:8]}"
    url = pg_server.create_database(name)
    erp.create_schema(url)
    monkeypatch.setenv(erp.ERP_URL_ENV, db.render_secret_url(db._with_driver(url, None)))
    yield url
    pg_server.drop_database(name)


def source_state(url: URL) -> dict[str, tuple[int, str]]:
    return {table: (count, erp.checksum(url, table)) for table, count in erp.row_counts(url).items()}


def core_state(warehouse: URL) -> dict[str, tuple[int, str]]:
    """Live core rows per ERP table and their checksum over keys and rowversions, comparable with source_state."""
    from sync_pipelines.defs.erp import background

    engine = db.get_engine(warehouse)
    return {entity: background.core_checksum(engine, entity) for entity in PRIMARY_KEYS}


def scalar(url: URL, query: str, params: dict | None = None) -> object:
    with db.get_engine(url).connect() as conn:
        return conn.execute(sa.text(query), params or {}).scalar()
