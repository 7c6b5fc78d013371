"""`sync-pipelines`: the operator's command line."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

from sync_pipelines.lib import db


def _fail_cleanly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Known operator errors are one clear line on stderr and exit code 2, never a traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (db.DatabaseUnreachable, db.ConfigError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)

    return wrapper


def _bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level.")
def main(verbose: bool) -> None:
    """Keep the Postgres warehouse in sync with the brokerage's sources."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


# ----------------------------------------------------------------------------------------------
# db
# ----------------------------------------------------------------------------------------------


@main.group("db")
def db_group() -> None:
    """The warehouse database: start, migrate, show, stop."""


@db_group.command("up")
@_fail_cleanly
def db_up() -> None:
    """Start the server (embedded unless SYNC_DATABASE_URL is set) and create the databases."""
    url = db.ensure_databases()
    click.echo(f"database: {db.safe_url(url)}")


@db_group.command("upgrade")
@click.argument("revision", default="head")
@_fail_cleanly
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from sync_pipelines.lib import migrations

    url = db.ensure_databases()
    migrations.upgrade(url, revision)
    click.echo(f"migrated {db.safe_url(url)} to {migrations.current_revision(url)}")


@db_group.command("downgrade")
@click.argument("revision")
@_fail_cleanly
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION (`base` removes every table)."""
    from sync_pipelines.lib import migrations

    url = db.ensure_databases()
    migrations.downgrade(revision, url)
    click.echo(f"downgraded {db.safe_url(url)} to {migrations.current_revision(url) or 'base'}")


@db_group.command("url")
@click.option("--dagster", is_flag=True, help="Show Dagster's storage database instead.")
@_fail_cleanly
def db_url(dagster: bool) -> None:
    """Print the database URL, without its password."""
    from sqlalchemy.engine import make_url

    url = make_url(db.dagster_storage_url()) if dagster else db.warehouse_url()
    click.echo(db.safe_url(url))


@db_group.command("stop")
@_fail_cleanly
def db_stop() -> None:
    """Stop the embedded server (a server named by SYNC_DATABASE_URL is not ours to stop)."""
    if not db.is_embedded():
        click.echo("SYNC_DATABASE_URL is set: that server is not managed by sync-pipelines; nothing stopped")
        return
    stopped = db.stop_embedded()
    click.echo("embedded Postgres stopped" if stopped else "embedded Postgres was not running")


# ----------------------------------------------------------------------------------------------
# demo and dev
# ----------------------------------------------------------------------------------------------


def prepare() -> Any:
    """Database up, migrations at head, Dagster's environment exported: what every entry point needs."""
    from sync_pipelines.lib import migrations

    url = db.ensure_databases()
    migrations.upgrade(url)
    db.export_dagster_env()
    return url


@main.command("demo")
@_fail_cleanly
def demo() -> None:
    """Set everything up, sync every integration from the sandbox, print a summary."""
    from sync_pipelines.demo import run_demo

    run_demo(prepare())


@main.command("dev")
@click.option("--port", default=3000, show_default=True, help="Port of the Dagster UI.")
@_fail_cleanly
def dev(port: int) -> None:
    """Dagster UI and daemon on the same database, sensors and schedules on."""
    prepare()
    root = db.PROJECT_ROOT
    click.echo(f"Dagster UI on http://127.0.0.1:{port} (storage: {db.dagster_database_name()})")
    cmd = [_bin("dagster"), "dev", "-w", str(root / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)]
    proc = subprocess.Popen(cmd, cwd=root, env=dict(os.environ))
    try:
        proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
    sys.exit(proc.returncode or 0)


if __name__ == "__main__":
    main()
