"""Run workers started ahead of their run, for the runs whose latency matters (webhook batches).

Dagster's default launcher asks the code server to start each run in a fresh interpreter, which then imports
Dagster and the code location and opens the instance before the run's first event: 1.5-3 s on a 2-core machine, a
third of a webhook's way to core (BENCHMARKS.md, "Webhook end to end"). For runs carrying one of the configured tags,
the launcher (lib/runs.py) instead hands the run to a worker that is already past that point:

- a worker is a process of its own, started with `python -m sync_pipelines.lib.warm_runs` from the launcher's
  process (the daemon) with the code location's interpreter, not forked: it shares no state with the daemon;
- it imports the code location's module, loads its definitions and opens the instance, then waits for one run id
  on its stdin; it executes that run only, as the code server's run worker would, and exits;
- the launcher starts the next worker as soon as one is taken, so each run still has a process of its own that has
  executed nothing before: runs stay isolated from each other and from the daemon, only their start-up moved ahead.

A worker never runs stale code: the launcher notes a fingerprint of the code location's source files when it starts
one and discards the worker if the files have changed since (a code reload in `dg dev`, a new install). Anything a
worker cannot do (another interpreter, a pointer to a file, a worker that died) falls back to Dagster's own launch,
so the warm path is only ever faster, never required. A worker whose launcher's process is gone sees its stdin close
and exits; a run it executes carries on like any launched run and is watched by run monitoring through the process
tags the launcher records (lib/runs.py). Terminating such a run interrupts its process (SIGINT), which is what the
code server's cancel does to its own run workers.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO

log = logging.getLogger(__name__)

WARM_START_TAG = "sync_pipelines/warm_start"
READY = "ready"
STARTED = "started"
FAILED = "failed"
# A worker still warming up is waited for (a cold start would do the same work from the beginning, beside it on the
# same cores), but not for longer than a cold start takes on a loaded machine: the run queue waits meanwhile.
READY_WAIT_SECONDS = 10.0
START_TIMEOUT_SECONDS = 60.0


def _package_root(module_name: str) -> str | None:
    """The directory of the top-level package that `module_name` belongs to, found without importing it."""
    top = module_name.split(".", 1)[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return spec.origin if spec is not None else None
    return next(iter(spec.submodule_search_locations), None)


def code_fingerprint(module_name: str) -> tuple[int, int, int] | None:
    """(files, sum of their mtimes in ns, total size) of the Python sources of the module's top-level package:
    changes with any edit, addition or removal, whichever file it touches. None when the sources cannot be found
    (the warm path is then not used)."""
    root = _package_root(module_name)
    if root is None:
        return None
    if os.path.isfile(root):
        st = os.stat(root)
        return (1, st.st_mtime_ns, st.st_size)
    files = mtimes = size = 0
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        stack.append(entry.path)
                elif entry.name.endswith(".py"):
                    st = entry.stat()
                    files += 1
                    mtimes += st.st_mtime_ns
                    size += st.st_size
    return (files, mtimes, size)


@dataclass
class Worker:
    """One started worker, not yet given a run."""

    process: subprocess.Popen[str]
    module_name: str
    fingerprint: tuple[int, int, int]
    started_at: float
    ready: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        """Stop a worker that was given no run. One that is still warming up would otherwise go on opening the
        instance (and retrying its database) before it sees its stdin closed, so it is terminated: it holds
        nothing yet. It is reaped in the background."""
        try:
            if self.process.stdin is not None:
                self.process.stdin.close()
        except OSError:
            pass
        if self.process.poll() is None:
            self.process.terminate()
        threading.Thread(target=self.process.wait, name="warm-run-worker-reap", daemon=True).start()


def serialize_instance_ref(instance: object) -> str:
    """What a worker needs to open the same instance as the launcher."""
    from dagster._serdes import serialize_value

    return serialize_value(instance.get_ref())  # type: ignore[attr-defined]


def _read_line(stream: IO[str] | None) -> str:
    if stream is None:
        return ""
    return stream.readline().strip()


class WarmWorkers:
    """The launcher's workers: at most one idle worker per code location (repository origin)."""

    def __init__(self, instance_ref_json: str) -> None:
        self._instance_ref_json = instance_ref_json
        self._lock = threading.Lock()
        self._idle: dict[str, Worker] = {}

    def prepare(self, executable: str, repository_origin_json: str, module_name: str) -> None:
        """Start a worker for this code location unless one is idle already."""
        fingerprint = code_fingerprint(module_name)
        if fingerprint is None:
            return
        with self._lock:
            current = self._idle.get(repository_origin_json)
            if current is not None and current.alive() and current.fingerprint == fingerprint:
                return
            if current is not None:
                current.close()
            try:
                process = subprocess.Popen(
                    [executable, "-m", "sync_pipelines.lib.warm_runs"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    bufsize=1,
                    # Its own session: a Ctrl-C meant for the terminal that runs the daemon is not an interrupt of a
                    # run the worker executes; the daemon's shutdown reaches an idle worker as the end of its stdin.
                    start_new_session=True,
                )
            except OSError as exc:
                log.warning("could not start a warm run worker (%s): runs launch the usual way", exc)
                self._idle.pop(repository_origin_json, None)
                return
            assert process.stdin is not None
            process.stdin.write(self._instance_ref_json + "\n" + repository_origin_json + "\n")
            process.stdin.flush()
            self._idle[repository_origin_json] = Worker(process, module_name, fingerprint, time.monotonic())

    def take(self, repository_origin_json: str, module_name: str) -> Worker | None:
        """The idle worker of this code location if it is ready and runs the current code; else None."""
        with self._lock:
            worker = self._idle.pop(repository_origin_json, None)
        if worker is None:
            return None
        if not worker.alive():
            log.warning("warm run worker %d exited before its run (code %s)", worker.pid, worker.process.returncode)
            worker.close()
            return None
        if code_fingerprint(module_name) != worker.fingerprint:
            log.info("warm run worker %d loaded code that has changed since: not used", worker.pid)
            worker.close()
            return None
        if not worker.ready:
            assert worker.process.stdout is not None
            waited = time.monotonic()
            readable, _, _ = select.select([worker.process.stdout], [], [], READY_WAIT_SECONDS)
            if not readable or _read_line(worker.process.stdout) != READY:
                log.warning("warm run worker %d not ready %.0f s after it started: not used", worker.pid,
                            time.monotonic() - worker.started_at)  # fmt: skip
                worker.close()
                return None
            if time.monotonic() - waited > 1.0:
                log.info("waited %.1f s for warm run worker %d", time.monotonic() - waited, worker.pid)
            worker.ready = True
        return worker

    def close(self) -> None:
        with self._lock:
            idle, self._idle = list(self._idle.values()), {}
        for worker in idle:
            worker.close()


def hand_over(worker: Worker, run_id: str, job_origin_json: str) -> None:
    """Give the run to `worker` and wait until it has started executing it; raise RuntimeError if it cannot.
    `job_origin_json` is the run's serialized JobPythonOrigin (the code server's view of its job)."""
    process = worker.process
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write(run_id + "\n" + job_origin_json + "\n")
        process.stdin.flush()
        process.stdin.close()
    except OSError as exc:
        raise RuntimeError(f"warm run worker {worker.pid} is gone ({exc})") from exc
    answer = _read_line(process.stdout)
    if answer != STARTED:
        process.wait(START_TIMEOUT_SECONDS)
        raise RuntimeError(f"warm run worker {worker.pid} did not start run {run_id}: {answer or 'it exited'}")
    # Reap it when it ends; nothing else is read from it.
    threading.Thread(target=process.wait, name=f"warm-run-{run_id[:8]}", daemon=True).start()


def _worker_main(stdin: IO[str], protocol: IO[str]) -> int:
    """The worker: warm up, wait for one run id, execute that run. Returns the exit code."""
    from dagster._core.events import EngineEventData
    from dagster._core.instance import DagsterInstance, InstanceRef
    from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
    from dagster._grpc.impl import core_execute_run
    from dagster._serdes import deserialize_value
    from dagster._utils.hosted_user_process import recon_job_from_origin, recon_repository_from_origin
    from dagster._utils.interrupts import capture_interrupts

    def say(message: str) -> None:
        protocol.write(message + "\n")
        protocol.flush()

    instance_ref = deserialize_value(_read_line(stdin), InstanceRef)
    repository_origin = deserialize_value(_read_line(stdin), RepositoryPythonOrigin)
    # Everything a run of this code location loads before its first event: the code, its definitions, the instance.
    recon_repository_from_origin(repository_origin).get_definition()
    instance = DagsterInstance.from_ref(instance_ref)
    say(READY)
    run_id = _read_line(stdin)
    if not run_id:  # the launcher's process ended or discarded this worker
        instance.dispose()
        return 0
    job_origin = deserialize_value(_read_line(stdin), JobPythonOrigin)
    with capture_interrupts():
        try:
            run = instance.get_run_by_id(run_id)
            if run is None:
                say(f"{FAILED}: run {run_id} not found")
                return 1
            recon_job = recon_job_from_origin(job_origin)
            say(STARTED)
            pid = os.getpid()
            instance.report_engine_event(
                f"Started process for run (pid: {pid}), warmed up before the run was requested.",
                run,
                EngineEventData.in_process(pid),
            )
            try:
                for _event in core_execute_run(recon_job, run, instance, inject_env_vars=False):
                    pass
            except BaseException:  # core_execute_run has written the failure to the run's event log
                pass
            finally:
                instance.report_engine_event(f"Process for run exited (pid: {pid}).", run)
        finally:
            instance.dispose()
    return 0


def worker_tags(worker: Worker, run_id: str) -> Mapping[str, str]:
    """The run tags that name the worker's process (lib/runs.py reads them for health checks and terminate)."""
    from sync_pipelines.lib import runs

    return {**runs.process_tags(run_id, pid=worker.pid), WARM_START_TAG: "true"}


def main() -> int:
    # The protocol keeps the real stdout; everything the run prints goes to stderr with the daemon's own output.
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return _worker_main(sys.stdin, protocol)


if __name__ == "__main__":
    sys.exit(main())
