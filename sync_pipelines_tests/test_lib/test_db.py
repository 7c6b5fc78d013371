from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from sync_pipelines.lib import db
from sync_pipelines_tests.conftest import TestServer
from sync_pipelines_tests.helpers import run_cli


def _embedded_env(home: Path) -> dict[str, str]:
    return {"SYNC_HOME": str(home), "SYNC_DATABASE_URL": ""}


def _postmaster_pid(home: Path) -> int:
    return int((home / "pgdata" / "postmaster.pid").read_text().splitlines()[0])


@pytest.fixture
def embedded_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    yield home
    if (home / "pgdata" / "postmaster.pid").exists():
        run_cli("db", "stop", env=_embedded_env(home))


def test_embedded_server_starts_with_no_configuration_and_is_reused_by_the_next_command(
    embedded_home: Path,
) -> None:
    first = run_cli("db", "upgrade", env=_embedded_env(embedded_home))
    assert first.returncode == 0, first.stderr
    assert (embedded_home / "pgdata" / "PG_VERSION").exists()
    pid = _postmaster_pid(embedded_home)

    second = run_cli("db", "url", env=_embedded_env(embedded_home))
    assert second.returncode == 0, second.stderr
    assert "/sync_pipelines?" in second.stdout
    assert _postmaster_pid(embedded_home) == pid  # the same server, not a new one
    # The embedded server is set up for bulk loads (db.EMBEDDED_SETTINGS), from its first start.
    url = next(line for line in second.stdout.splitlines() if "/sync_pipelines?" in line).strip()
    with psycopg.connect(db.libpq_uri(make_url(url))) as conn:
        for name, value in db.EMBEDDED_SETTINGS.items():
            assert conn.execute(f"SHOW {name}").fetchone() == (value,)

    stopped = run_cli("db", "stop", env=_embedded_env(embedded_home))
    assert "stopped" in stopped.stdout


def test_embedded_server_recovers_after_kill_9_of_the_postmaster(embedded_home: Path) -> None:
    assert run_cli("db", "upgrade", env=_embedded_env(embedded_home)).returncode == 0
    pid = _postmaster_pid(embedded_home)
    os.kill(pid, signal.SIGKILL)

    again = run_cli("db", "upgrade", env=_embedded_env(embedded_home))
    assert again.returncode == 0, again.stderr
    assert _postmaster_pid(embedded_home) != pid


def test_embedded_server_recovers_from_a_stale_pid_that_now_belongs_to_another_process(
    embedded_home: Path,
) -> None:
    assert run_cli("db", "upgrade", env=_embedded_env(embedded_home)).returncode == 0
    pid_file = embedded_home / "pgdata" / "postmaster.pid"
    lines = pid_file.read_text().splitlines()
    os.kill(int(lines[0]), signal.SIGKILL)
    # The pid is recycled by an unrelated, live process: pgserver alone would believe the server runs.
    impostor = subprocess.Popen(["sleep", "120"])
    try:
        lines[0] = str(impostor.pid)
        pid_file.write_text("\n".join(lines) + "\n")
        again = run_cli("db", "upgrade", env=_embedded_env(embedded_home))
        assert again.returncode == 0, again.stderr
        assert impostor.poll() is None  # the unrelated process was left alone
    finally:
        impostor.kill()


def test_sync_database_url_is_used_unchanged(pg_server: TestServer, tmp_path: Path) -> None:
    second = pg_server.create_database("second_warehouse")
    try:
        url = db.render_secret_url(db._with_driver(second, None))
        result = run_cli("db", "upgrade", env={"SYNC_DATABASE_URL": url, "SYNC_HOME": str(tmp_path)})
        assert result.returncode == 0, result.stderr
        with psycopg.connect(db.libpq_uri(second)) as conn:
            tables = conn.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'bridge'"
            ).fetchone()[0]
        assert tables >= 15
        # Nothing was started under SYNC_HOME: the configured server is used as it is.
        assert not (tmp_path / "pgdata").exists()
    finally:
        db.get_engine(second).dispose()
        pg_server.drop_database("second_warehouse")
        pg_server.drop_database("second_warehouse_dagster")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_gives_one_line_naming_host_port_and_database_without_the_password() -> None:
    port = _closed_port()
    url = f"postgresql://warehouse_user:hunter2-secret@127.0.0.1:{port}/analytics"
    result = run_cli("db", "upgrade", env={"SYNC_DATABASE_URL": url}, timeout=60)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "host 127.0.0.1" in lines[0] and f"port {port}" in lines[0] and "database analytics" in lines[0]
    assert "hunter2-secret" not in result.stderr + result.stdout


def test_db_url_never_prints_the_password() -> None:
    url = "postgresql://warehouse_user:hunter2-secret@db.internal:5432/analytics"
    result = run_cli("db", "url", env={"SYNC_DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    assert "hunter2-secret" not in result.stdout
    assert "db.internal" in result.stdout and "analytics" in result.stdout


def test_a_malformed_database_url_names_the_setting_and_what_was_expected() -> None:
    result = run_cli("db", "url", env={"SYNC_DATABASE_URL": "mysql://u@h/db"})
    assert result.returncode == 2
    assert "SYNC_DATABASE_URL" in result.stderr and "postgresql://" in result.stderr


def test_per_test_database_is_a_migrated_clone(database_url: URL) -> None:
    with db.get_engine().connect() as conn:
        assert conn.execute(sa.text("SELECT current_database()")).scalar_one() == database_url.database
        assert conn.execute(sa.text("SELECT count(*) FROM bridge.accounts")).scalar_one() == 0
