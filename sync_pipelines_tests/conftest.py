"""Test harness: one embedded Postgres per session, a fresh database per test cloned from a migrated template.

Every test that touches the database runs with SYNC_DATABASE_URL pointing at its own database, so the code
under test (CLI subprocesses included) takes the same path it takes against a user's own server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL, make_url

from sync_pipelines.lib import db, migrations

TEMPLATE_DB = "sync_template"
DAGSTER_TEMPLATE_DB = "dagster_template"


class TestServer:
    """The session's embedded Postgres."""

    __test__ = False

    def __init__(self, home: Path) -> None:
        self.home = home
        self.server = db.start_embedded(home)

    def url(self, database: str, driver: str | None = "psycopg") -> URL:
        return make_url(self.server.uri(database, driver))

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(db.libpq_uri(self.url("postgres")), autocommit=True)

    def create_database(self, name: str, template: str | None = None) -> URL:
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            suffix = f' TEMPLATE "{template}"' if template else ""
            conn.execute(f'CREATE DATABASE "{name}"{suffix}')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestServer]:
    home = tmp_path_factory.mktemp("sync_home")
    saved = {k: os.environ.pop(k, None) for k in ("SYNC_DATABASE_URL", "SYNC_HOME", "DAGSTER_HOME")}
    os.environ["SYNC_HOME"] = str(home)
    server = TestServer(home)
    template = server.create_database(TEMPLATE_DB)
    migrations.upgrade(template)
    db.get_engine(template).dispose()
    yield server
    db.stop_embedded(home)
    for key, value in saved.items():
        if value is not None:
            os.environ[key] = value


@pytest.fixture
def database_url(pg_server: TestServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[URL]:
    """A fresh, migrated database for this test; SYNC_DATABASE_URL points at it while the test runs."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = pg_server.create_database(name, template=TEMPLATE_DB)
    monkeypatch.setenv("SYNC_DATABASE_URL", db.render_secret_url(db._with_driver(url, None)))
    monkeypatch.setenv("SYNC_DAGSTER_DATABASE", f"{name}_dagster")
    yield url
    db.get_engine(url).dispose()
    pg_server.drop_database(name)
    pg_server.drop_database(f"{name}_dagster")


@pytest.fixture(scope="session")
def dagster_template(pg_server: TestServer) -> str:
    """A database holding Dagster's own tables, created once; each instance clones it."""
    import dagster as dg

    url = pg_server.create_database(DAGSTER_TEMPLATE_DB)
    storage_url = db.render_secret_url(db._with_driver(url, "psycopg2"))
    with dg.instance_for_test(overrides={"storage": {"postgres": {"postgres_url": storage_url}}}) as instance:
        instance.get_runs_count()
    return DAGSTER_TEMPLATE_DB


@pytest.fixture
def dagster_instance(pg_server: TestServer, database_url: URL, dagster_template: str) -> Iterator[object]:
    """A real Dagster instance on Postgres storage, in this test's own `<db>_dagster` database."""
    import dagster as dg

    name = f"{database_url.database}_dagster"
    url = pg_server.create_database(name, template=dagster_template)
    storage_url = db.render_secret_url(db._with_driver(url, "psycopg2"))
    with dg.instance_for_test(overrides={"storage": {"postgres": {"postgres_url": storage_url}}}) as instance:
        yield instance


@pytest.fixture
def sandbox() -> Iterator[object]:
    """Every simulator, served over real HTTP on an ephemeral 127.0.0.1 port; webhook redelivery sped up."""
    from sync_pipelines.sandbox.app import Sandbox, SandboxServer

    server = SandboxServer(Sandbox(seed=1234, scale=300, webhook_speed=10_000.0)).start()
    yield server.sandbox
    server.stop()
