"""Shared by the end-to-end tests: real child processes (Dagster's webserver and daemon, a sync run to kill),
bounded waits, and a tiny GraphQL client. Nothing here fakes the code under test."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import requests

from sync_pipelines.lib import db

VENV_BIN = Path(sys.executable).parent
T = TypeVar("T")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.5,
    what: str,
    diagnose: Callable[[], str] = str,
) -> T:
    """Call `probe` until it returns something other than None/False; fail after `timeout` seconds (a bound on
    waiting, never a performance assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {timeout:.0f} s\n{diagnose()}")
        time.sleep(interval)


class ChildProcess:
    """A process of our own, in its own process group (it spawns code servers and run workers), logging to a
    file we can show when something goes wrong."""

    def __init__(self, name: str, args: list[str], env: Mapping[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            args,
            env=dict(env),
            cwd=db.PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return f"--- {self.name}: no log ---"
        return f"--- {self.name} (pid {self.pid}, exit {self.proc.poll()}) last {lines} lines ---\n" + "\n".join(
            text[-lines:]
        )

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM to the group we started, then SIGKILL whatever of it is left."""
        pgid = self.proc.pid  # start_new_session: the child leads its own group
        if self.alive():
            try:
                os.killpg(pgid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        # Grandchildren (code servers, run workers) may outlive a leader that exited on SIGTERM.
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()


@contextmanager
def child_processes() -> Iterator[list[ChildProcess]]:
    """Every process appended to the yielded list is stopped on the way out, last started first."""
    started: list[ChildProcess] = []
    try:
        yield started
    finally:
        for child in reversed(started):
            child.stop()


def dagster_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment `sync-pipelines dev` gives Dagster's processes: our dagster.yaml in DAGSTER_HOME and the
    storage URL of SYNC_DAGSTER_DATABASE on the test's server (never a test instance's temporary home)."""
    env = dict(os.environ)
    env.pop("DAGSTER_HOME", None)
    db.export_dagster_env(env)
    env["DAGSTER_TELEMETRY_DISABLED"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class GraphQL:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()

    def server_info(self) -> dict[str, Any] | None:
        try:
            response = self.session.get(f"{self.base_url}/server_info", timeout=5)
        except requests.RequestException:
            return None
        return response.json() if response.status_code == 200 else None

    def __call__(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        # A connection of its own per call: the webserver closes an idle keep-alive connection after 5 s, and a
        # request sent on one it has just closed fails with "Connection reset by peer" (a mutation cannot be retried).
        response = requests.post(
            f"{self.base_url}/graphql", json={"query": query, "variables": variables or {}}, timeout=60
        )
        assert response.status_code == 200, f"GraphQL HTTP {response.status_code}: {response.text[:2000]}"
        body = response.json()
        assert not body.get("errors"), f"GraphQL errors: {body['errors']}"
        return body["data"]


def run_backfill(base_url: str, account_name: str, entity: str) -> None:
    """The body of a sync child process: one whole-history backfill of `entity` for `account_name`, against the
    warehouse of SYNC_DATABASE_URL, through the product's own resource and client."""
    from sync_pipelines.defs.fub.declaration import FUB
    from sync_pipelines.defs.fub.entities import INTEGRATION
    from sync_pipelines.defs.fub.resources import FubResource
    from sync_pipelines.lib import accounts
    from sync_pipelines.lib.integration import sync as fub_sync

    engine = db.get_engine()
    fub = FubResource(base_url=base_url)
    account = accounts.get_account(engine, INTEGRATION, account_name)
    report = fub_sync.backfill(engine, FUB, lambda a: fub.client_for(engine, a), account, entity, None)
    print(f"backfill finished: {report.counts}", flush=True)


def backfill_child(base_url: str, account_name: str, entity: str, log_dir: Path) -> ChildProcess:
    code = (
        "import sys; from sync_pipelines_tests.e2e.helpers import run_backfill; "
        "run_backfill(sys.argv[1], sys.argv[2], sys.argv[3])"
    )
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return ChildProcess("backfill", [sys.executable, "-c", code, base_url, account_name, entity], env, log_dir)


def cli_child(name: str, args: list[str], log_dir: Path, env: Mapping[str, str] | None = None) -> ChildProcess:
    """`sync-pipelines ARGS` as an operator's process we can signal: the CLI's own Dagster instance (its
    dagster.yaml in SYNC_HOME, storage in SYNC_DAGSTER_DATABASE), never a test instance's DAGSTER_HOME."""
    child_env = dict(os.environ, PYTHONUNBUFFERED="1")
    child_env.pop("DAGSTER_HOME", None)
    child_env.update(env or {})
    return ChildProcess(name, [sys.executable, "-m", "sync_pipelines.cli", *args], child_env, log_dir)


def committed_batches(engine: Any, account_id: object, entity: str = "people") -> int:
    """Batches of `entity` the warehouse has committed for the account (each commits with its cursor)."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM bridge.sync_batches "
                    "WHERE account_id = :a AND entity_name = :e AND status = 'completed'"
                ),
                {"a": account_id, "e": entity},
            ).scalar_one()
        )


def assert_people_exact(engine: Any, sandbox: Any, account_name: str, account_id: object) -> None:
    """Core holds exactly the sandbox's people of the account, live, each once."""
    import sqlalchemy as sa

    from sync_pipelines.sandbox.store import Window

    view = sandbox["fub"].accounts[account_name].tables["people"].query(Window())
    expected = sorted(str(r["id"]) for r in view.page(0, len(view)))
    with engine.connect() as conn:
        ids = sorted(
            conn.execute(
                sa.text("SELECT source_id FROM core.fub_people WHERE account_id = :a AND deleted_at IS NULL"),
                {"a": account_id},
            ).scalars()
        )
        duplicates = conn.execute(
            sa.text(
                "SELECT account_id, source_id, count(*) FROM core.fub_people "
                "GROUP BY account_id, source_id HAVING count(*) > 1 LIMIT 10"
            )
        ).all()
    assert duplicates == []
    assert len(ids) == len(expected) and ids == expected
