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
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import dagster as dg
from dagster import Array, Field
from dagster._core.launcher import CheckRunHealthResult, LaunchRunContext, WorkerStatus
from dagster._core.origin import JobPythonOrigin
from dagster._core.storage.dagster_run import FINISHED_STATUSES, DagsterRunStatus, RunsFilter
from dagster._core.storage.tags import PARENT_RUN_ID_TAG
from dagster._serdes import ConfigurableClassData, serialize_value

from sync_pipelines.lib import warm_runs

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


def process_tags(run_id: str | None = None, pid: int | None = None) -> dict[str, str]:
    """The identity of the current process (or of `pid`, a process of this host), as run tags (for `run_id` when it
    is known)."""
    pid = os.getpid() if pid is None else pid
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
    """Dagster's default launcher, plus:

    - a worker health check for run monitoring: FAILED once the process a run recorded (on this host and pid
      namespace) is gone. The monitor fails a run for any status other than RUNNING or SUCCESS, so everything it
      cannot check (no tags yet, another host, a parent's copied tags) is RUNNING;
    - warm starts (`warm_start_tags`): a run carrying one of these tags is handed to a run worker started ahead of
      it (lib/warm_runs.py) instead of a fresh interpreter, about 1.5-3 s sooner; any other run, and any warm start
      that cannot happen, launches the default way."""

    def __init__(self, inst_data: ConfigurableClassData | None = None, warm_start_tags: Sequence[str] = ()) -> None:
        super().__init__(inst_data=inst_data)
        self._warm_start_tags = tuple(warm_start_tags)
        self._warm: warm_runs.WarmWorkers | None = None
        self._warm_lock = threading.Lock()

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {
            "warm_start_tags": Field(
                Array(str),
                is_required=False,
                default_value=[],
                description="Run tag keys: a run carrying any of them starts in a run worker warmed up ahead of it.",
            )
        }

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> ProcessCheckingRunLauncher:
        return cls(inst_data=inst_data, warm_start_tags=config_value.get("warm_start_tags") or ())

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        if process_gone(run):
            return CheckRunHealthResult(WorkerStatus.FAILED, f"the run's process ({describe_process(run)}) is gone")
        return CheckRunHealthResult(WorkerStatus.RUNNING, "")

    def _warm_target(self, run: dg.DagsterRun, workspace: Any = None) -> tuple[str, str, str, JobPythonOrigin] | None:
        """(interpreter, serialized repository origin, module, the job's Python origin) for a run that may start
        warm; None otherwise. A run the daemon creates names its code location only (a remote origin): the
        workspace gives that location's Python origin, as the code server would resolve it."""
        if not self._warm_start_tags or not any(tag in run.tags for tag in self._warm_start_tags):
            return None
        origin = run.job_code_origin
        if origin is None and workspace is not None and run.remote_job_origin is not None:
            remote = run.remote_job_origin
            try:
                location = workspace.get_code_location(remote.repository_origin.code_location_origin.location_name)
                repository = location.get_repository_python_origin(remote.repository_origin.repository_name)
            except Exception:  # a location that failed to load: Dagster's own launch reports it
                repository = None
            origin = JobPythonOrigin(remote.job_name, repository) if repository is not None else None
        if origin is None:
            return None
        module = getattr(origin.repository_origin.code_pointer, "module", None)
        executable = origin.repository_origin.executable_path
        if not isinstance(module, str) or not executable or not os.path.exists(executable):
            return None
        return executable, serialize_value(origin.repository_origin), module, origin

    def _workers(self) -> warm_runs.WarmWorkers:
        with self._warm_lock:
            if self._warm is None:
                self._warm = warm_runs.WarmWorkers(warm_runs.serialize_instance_ref(self._instance))
            return self._warm

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        target = self._warm_target(run, context.workspace)
        if target is None:
            super().launch_run(context)
            return
        executable, origin, module, job_origin = target
        workers = self._workers()
        try:
            worker = workers.take(origin, module)
            if worker is not None:
                try:
                    warm_runs.hand_over(worker, run.run_id, serialize_value(job_origin))
                except RuntimeError as exc:
                    log.warning("%s; run %s launches the usual way", exc, run.run_id)
                else:
                    self._instance.add_run_tags(run.run_id, warm_runs.worker_tags(worker, run.run_id))
                    self._run_ids.add(run.run_id)
                    return
            super().launch_run(context)
        finally:
            # The next run of this code location finds a worker ready (started after the launch, which it would
            # otherwise slow down on a small machine).
            workers.prepare(executable, origin, module)

    def warm_up(self, run: dg.DagsterRun) -> bool:
        """Start a worker for runs like `run` now, rather than after the first one; False if it cannot start warm."""
        target = self._warm_target(run)
        if target is None:
            return False
        self._workers().prepare(*target[:3])
        return True

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id) if self.has_instance else None
        if run is None or warm_runs.WARM_START_TAG not in run.tags:
            return super().terminate(run_id)
        if run.is_finished:
            return False
        self._instance.report_run_canceling(run)
        # What the code server's cancel does to a run worker of its own: an interrupt, which Dagster turns into the
        # run's orderly end. Only a process this host can see and that is still the run's.
        if recorded_for(run) and run.tags.get(HOST_TAG) == socket.gethostname() and process_alive(run.tags):
            try:
                os.kill(int(run.tags[PID_TAG]), signal.SIGINT)
                return True
            except (ProcessLookupError, PermissionError, ValueError):
                pass
        self._instance.report_engine_event(
            message=f"Could not interrupt the run's process ({describe_process(run)}).", dagster_run=run
        )
        return False

    def dispose(self) -> None:
        if self._warm is not None:
            self._warm.close()
        super().dispose()
