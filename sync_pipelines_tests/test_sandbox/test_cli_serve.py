"""`sync-pipelines sandbox serve` and the fault/clock commands, as an operator uses them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import requests

from sync_pipelines.lib import db
from sync_pipelines_tests.helpers import run_cli


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_prints_every_source_and_its_credentials_and_faults_switch_from_the_cli() -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sync_pipelines.cli", "sandbox", "serve", "--port", str(port), "--scale", "50",
         "--seed", "3", "--fault", "fub:rate_limit_storm=1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=db.PROJECT_ROOT, env=dict(os.environ),
    )  # fmt: skip
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(line.strip().startswith("stripe") for line in lines):
            lines.append(proc.stdout.readline())  # type: ignore[union-attr]
        printed = "".join(lines)
        for source in ("fub", "rezen", "skyslope", "dotloop", "lofty", "stripe"):
            assert f"{url}/{source}" in printed
        assert "fub_sandbox_key_acme" in printed and "credentials:" in printed
        for _ in range(100):  # the listening socket is bound before the banner; wait for the app itself
            try:
                requests.get(f"{url}/_sandbox/info", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        people = f"{url}/fub/v1/people"
        auth = ("fub_sandbox_key_acme", "")
        assert requests.get(people, auth=auth).status_code == 429  # the --fault given at start
        assert requests.get(people, auth=auth).status_code == 200

        switched = run_cli("sandbox", "fault", "fub", "server_errors=1", "--url", url)
        assert switched.returncode == 0 and '"server_errors": 1' in switched.stdout
        assert requests.get(people, auth=auth).status_code >= 500
        bad = run_cli("sandbox", "fault", "fub", "nonsense=1", "--url", url)
        assert bad.returncode != 0 and "unknown fault" in bad.stderr

        advanced = run_cli("sandbox", "advance", "3600", "--url", url)
        assert advanced.returncode == 0 and advanced.stdout.startswith("2026-11-01T01:00")
        info = run_cli("sandbox", "info", "--url", url)
        assert info.returncode == 0 and '"stripe"' in info.stdout
    finally:
        proc.terminate()
        proc.wait(10)


def test_sandbox_commands_say_clearly_when_no_sandbox_runs() -> None:
    result = run_cli("sandbox", "info", "--url", f"http://127.0.0.1:{_free_port()}")
    assert result.returncode != 0 and "no sandbox answers" in result.stderr
