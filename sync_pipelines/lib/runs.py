"""Which process executes a Dagster run, and what happens to the run once that process is gone.

A run whose process was killed (`kill -9`, OOM, a lost terminal) stays STARTED in Dagster forever and keeps
the pool slots its steps claimed; with two slots per pool, two such runs block every later run of the pool.
Each run therefore records its process (host, pid, the pid's start time, the pid namespace) in its tags:

- runs started in-process by the CLI carry them from creation, and `reap_dead_runs` marks failed (and frees
  the slots of) every run recorded on this host whose process is gone, before the CLI starts another run and
  while one waits for a slot;
- runs launched by the daemon or the UI record their run worker when the warehouse resource is set up (see
  lib/resources.py), and `ProcessCheckingRunLauncher` lets Dagster's run monitoring fail them once that worker
  is gone; the monitoring daemon then frees their slots (`free_slots_after_run_end_seconds`).

Nothing here ever declares a process dead on a guess: another host, another pid namespace, missing tags, or
tags copied from a parent run (re-execution, run retries) all count as alive, i.e. unknown.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import dagster as dg
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.dagster_run import FINISHED_STATUSES, DagsterRunStatus, RunsFilter
from dagster._core.storage.tags import PARENT_RUN_ID_TAG

HOST_TAG = "sync_pipelines/host"
PID_TAG = "sync_pipelines/pid"
PID_STARTED_TAG = "sync_pipelines/pid_started"
PID_NAMESPACE_TAG = "sync_pipelines/pid_namespace"
# The run the identity was recorded for: run retries and re-executions copy a parent's tags, and the parent's
# dead worker must not condemn the new run before it records its own.
PROCESS_RUN_TAG = "sync_pipelines/process_run"

log = logging.getLogger(__name__)

# NOT_STARTED: an in-process run killed between its creation and its first event.
UNFINISHED = [
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]
# What Dagster's own slot reclaimer waits (dagster.yaml: free_slots_after_run_end_seconds) before it frees the
# slots of a finished run whose process it cannot check.
FINISHED_GRACE_SECONDS = 30.0


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat from the state on (field 3 of proc(5)); None where there is no /proc entry.
    The command name (field 2) may hold spaces and parentheses, so the split is after its last ')'."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def _start_time(pid: int) -> str | None:
    """Field 22 (starttime, clock ticks since boot): with the pid, it names one process across pid reuse."""
    fields = _proc_stat(pid)
    return fields[19] if fields and len(fields) > 19 else None


def _pid_namespace() -> str | None:
    """Two containers can share a host name (host networking) but never a pid namespace."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def process_tags(run_id: str | None = None) -> dict[str, str]:
    """The identity of the current process, as run tags (for `run_id` when it is known)."""
    pid = os.getpid()
    tags = {HOST_TAG: socket.gethostname(), PID_TAG: str(pid)}
    started = _start_time(pid)
    if started is not None:
        tags[PID_STARTED_TAG] = started
    namespace = _pid_namespace()
    if namespace is not None:
        tags[PID_NAMESPACE_TAG] = namespace
    if run_id is not None:
        tags[PROCESS_RUN_TAG] = run_id
    return tags


def process_alive(tags: Mapping[str, str]) -> bool:
    """False only when `tags` name a process of this host and pid namespace that no longer exists (or whose
    pid now belongs to a process started later, or is a zombie); True when it lives or cannot be checked."""
    host, pid_text = tags.get(HOST_TAG), tags.get(PID_TAG)
    if host != socket.gethostname() or not pid_text or not pid_text.isdigit():
        return True
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there
        return True
    namespace, ours = tags.get(PID_NAMESPACE_TAG), _pid_namespace()
    if namespace is not None and ours is not None and namespace != ours:
        return True
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        pass
    fields = _proc_stat(pid)
    if fields is None:
        return True  # no /proc: the signal said it exists
    if fields[0] == "Z":  # killed, not yet reaped by its parent: it runs nothing
        return False
    recorded = tags.get(PID_STARTED_TAG)
    return recorded is None or len(fields) <= 19 or fields[19] == recorded


def recorded_for(run: dg.DagsterRun) -> bool:
    """Whether the run's process tags describe this run's own process rather than a parent's."""
    recorded = run.tags.get(PROCESS_RUN_TAG)
    if recorded is not None:
        return recorded == run.run_id
    # Set at creation (in-process runs of the CLI): valid unless they were copied from a parent run.
    return HOST_TAG in run.tags and PARENT_RUN_ID_TAG not in run.tags


def process_gone(run: dg.DagsterRun) -> bool:
    return recorded_for(run) and not process_alive(run.tags)


def describe_process(run: dg.DagsterRun) -> str:
    return f"pid {run.tags.get(PID_TAG, '?')} on {run.tags.get(HOST_TAG, '?')}"


def record_run_process(instance: dg.DagsterInstance, run: dg.DagsterRun) -> None:
    """Tag `run` with the current process: called in the process that executes the run."""
    tags = process_tags(run.run_id)
    if any(run.tags.get(key) != value for key, value in tags.items()):
        instance.add_run_tags(run.run_id, tags)


@dataclass(frozen=True)
class Reaped:
    run_id: str
    process: str
    was_unfinished: bool  # False: the run had already ended, only its slots were still held

    def describe(self) -> str:
        if self.was_unfinished:
            return f"run {self.run_id[:8]} ({self.process}) had died: marked failed, its pool slots freed"
        return f"run {self.run_id[:8]} ({self.process}) had ended holding pool slots: slots freed"


def reap_dead_runs(instance: dg.DagsterInstance) -> list[Reaped]:
    """Mark failed every unfinished run recorded on this host whose process is gone, and free its pool slots;
    free the slots still held by finished runs (whose process is gone, or which ended over 30 s ago)."""
    reaped: list[Reaped] = []
    storage = instance.event_log_storage
    frees_slots = storage.supports_global_concurrency_limits
    for record in instance.get_run_records(
        filters=RunsFilter(statuses=UNFINISHED, tags={HOST_TAG: socket.gethostname()})
    ):
        run = record.dagster_run
        if not process_gone(run):
            continue
        current = instance.get_run_by_id(run.run_id)  # the monitoring daemon may have got there first
        if current is None or current.is_finished:
            continue
        instance.report_run_failed(
            current, f"The run's process ({describe_process(run)}) is gone (killed?): marked failed, pool slots freed."
        )
        if frees_slots:
            storage.free_concurrency_slots_for_run(run.run_id)
        reaped.append(Reaped(run.run_id, describe_process(run), True))
    if not frees_slots:
        return reaped
    holding = storage.get_concurrency_run_ids() - {r.run_id for r in reaped}
    if holding:
        now = time.time()
        for record in instance.get_run_records(filters=RunsFilter(run_ids=list(holding), statuses=FINISHED_STATUSES)):
            run = record.dagster_run
            ended_long_ago = record.end_time is not None and now - record.end_time > FINISHED_GRACE_SECONDS
            if process_gone(run) or ended_long_ago:
                storage.free_concurrency_slots_for_run(run.run_id)
                reaped.append(Reaped(run.run_id, describe_process(run), False))
    return reaped


@contextmanager
def reaping(
    instance: dg.DagsterInstance, on_reaped: Callable[[Reaped], None], interval: float = 15.0
) -> Iterator[None]:
    """Reap dead runs every `interval` seconds while the body runs: a run waiting for a pool slot held by runs
    that die while it waits starts without a daemon. The thread has an instance of its own (own connections)."""
    if instance.is_ephemeral:  # in-memory: nothing another process could have left behind
        yield
        return
    stop = threading.Event()

    def loop() -> None:
        if stop.wait(interval):
            return  # most bodies end before the first round: they pay for no second instance
        with dg.DagsterInstance.from_ref(instance.get_ref()) as own:
            while True:
                try:
                    found = reap_dead_runs(own)
                except Exception as exc:  # a storage hiccup: the next round tries again
                    log.warning("reaping dead runs failed: %s", exc)
                    found = []
                for reaped in found:
                    on_reaped(reaped)
                if stop.wait(interval):
                    return

    thread = threading.Thread(target=loop, name="run-reaper", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(interval)


class ProcessCheckingRunLauncher(dg.DefaultRunLauncher):
    """Dagster's default launcher, plus a worker health check for run monitoring: FAILED once the process a
    run recorded (on this host and pid namespace) is gone. The monitor fails a run for any status other than
    RUNNING or SUCCESS, so everything it cannot check (no tags yet, another host, a parent's copied tags) is
    RUNNING."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        if process_gone(run):
            return CheckRunHealthResult(WorkerStatus.FAILED, f"the run's process ({describe_process(run)}) is gone")
        return CheckRunHealthResult(WorkerStatus.RUNNING, "")
