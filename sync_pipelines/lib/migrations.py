"""Alembic, driven from code: the CLI, the demo, dev and the tests all migrate through here."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL

from sync_pipelines.lib import project_files
from sync_pipelines.lib.db import get_engine, render_secret_url, warehouse_url


def alembic_config(url: URL | None = None) -> Config:
    # The checkout's sql/ and alembic.ini, or the installed wheel's copies: `db upgrade` works from any directory.
    config = Config(str(project_files.path("alembic.ini")))
    config.set_main_option("script_location", str(project_files.path("sql")))
    target = url or warehouse_url()
    # ConfigParser treats % as interpolation; a password may contain one.
    config.set_main_option("sqlalchemy.url", render_secret_url(target).replace("%", "%%"))
    return config


def upgrade(url: URL | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(revision: str, url: URL | None = None) -> None:
    command.downgrade(alembic_config(url), revision)


def head_revision() -> str:
    heads = ScriptDirectory.from_config(alembic_config(URL.create("postgresql"))).get_heads()
    return ",".join(heads)


def current_revision(url: URL | None = None) -> str | None:
    with get_engine(url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
