"""Helpers shared by tests."""

from __future__ import annotations

import os
import subprocess
import sys

from sync_pipelines.lib import db


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `sync-pipelines ARGS` in a child process, as an operator would."""
    child_env = dict(os.environ)
    child_env.pop("DAGSTER_HOME", None)
    if env:
        child_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "sync_pipelines.cli", *args],
        capture_output=True,
        text=True,
        env=child_env,
        timeout=timeout,
        cwd=db.PROJECT_ROOT,
    )
