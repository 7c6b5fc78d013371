"""A SIGTERM that Dagster's own handlers swallowed during a run is still known to the command afterwards, and
ends it with one line and exit code 128 + 15. In a child process: handlers are process-wide."""

from __future__ import annotations

import signal
import subprocess
import sys

from sync_pipelines.lib import db

SCRIPT = """
import os, signal, sys
from dagster._utils.interrupts import capture_interrupts
from sync_pipelines.lib import interrupts

@interrupts.exit_on_interrupt("stopped where it was")
def command():
    with capture_interrupts():  # what Dagster wraps an in-process run in: it records the signal, then forgets it
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):
            pass
    print("after the run: received", interrupts.received(), flush=True)
    sys.exit(0)  # the command believes it finished

command()
"""


def test_a_signal_swallowed_by_dagster_still_stops_the_command() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, cwd=db.PROJECT_ROOT
    )
    assert done.stdout.strip() == f"after the run: received {int(signal.SIGTERM)}", done.stdout + done.stderr
    assert done.returncode == 128 + signal.SIGTERM, done.stdout + done.stderr
    assert done.stderr.strip() == "interrupted by SIGTERM: stopped where it was"
