"""Runs carrying a warm-start tag start in a run worker warmed up ahead of them (lib/warm_runs.py): each run in a
process of its own that executed nothing before, never the launcher's; a worker whose code changed since it
warmed up is not used; terminating such a run from another process (the webserver's launcher) interrupts it.
On a real Postgres-backed instance loaded from the project's dagster.yaml, real subprocesses."""

import json
import os
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.launcher import LaunchRunContext
from dagster._core.storage.dagster_run import DagsterRunStatus

from sync_pipelines.lib import runs, warm_runs
from sync_pipelines.lib.integration.webhook_jobs import WEBHOOK_TAG
from sync_pipelines_tests.e2e.helpers import wait_for


class ProbeConfig(dg.Config):
    out: str
    hold_seconds: float = 0.0


@dg.op
def record_process(config: ProbeConfig) -> None:
    """Writes the process it runs in; holds (interruptibly) when asked, for the terminate test."""
    Path(config.out).write_text(json.dumps({"pid": os.getpid(), "ppid": os.getppid()}))
    deadline = time.monotonic() + config.hold_seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)


@dg.job(executor_def=dg.in_process_executor)
def warm_probe_job() -> None:
    record_process()


@pytest.fixture
def instance(project_instance: dg.DagsterInstance) -> dg.DagsterInstance:
    return project_instance


def new_run(instance: dg.DagsterInstance, out: Path, *, hold: float = 0.0, warm: bool = True) -> dg.DagsterRun:
    return instance.create_run_for_job(
        job_def=warm_probe_job,
        run_config={"ops": {"record_process": {"config": {"out": str(out), "hold_seconds": hold}}}},
        tags={WEBHOOK_TAG: "probe"} if warm else {},
        job_code_origin=dg.reconstructable(warm_probe_job).get_python_origin(),
    )


def launch(instance: dg.DagsterInstance, run: dg.DagsterRun) -> None:
    # No workspace: a run that could not start warm would fail here, on Dagster's default launch.
    instance.run_launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=None))


def finished(instance: dg.DagsterInstance, run_id: str) -> dg.DagsterRun:
    return wait_for(
        lambda: (r := instance.get_run_by_id(run_id)) is not None and r.is_finished and r,
        timeout=120,
        what=f"run {run_id} to finish",
    )


def test_each_warm_run_executes_in_a_fresh_process_of_its_own_that_its_tags_name(
    instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    launcher = instance.run_launcher
    assert isinstance(launcher, runs.ProcessCheckingRunLauncher)
    first, second = new_run(instance, tmp_path / "1.json"), new_run(instance, tmp_path / "2.json")
    assert launcher.warm_up(first)

    launch(instance, first)
    assert finished(instance, first.run_id).status == DagsterRunStatus.SUCCESS
    launch(instance, second)  # on the worker started while the first was launched
    assert finished(instance, second.run_id).status == DagsterRunStatus.SUCCESS

    seen = [json.loads((tmp_path / f"{n}.json").read_text()) for n in (1, 2)]
    pids = [s["pid"] for s in seen]
    assert len(set(pids)) == 2 and os.getpid() not in pids
    for run, pid in zip((first, second), pids, strict=True):
        tags = instance.get_run_by_id(run.run_id).tags
        assert tags[warm_runs.WARM_START_TAG] == "true"
        assert tags[runs.PID_TAG] == str(pid) and tags[runs.PROCESS_RUN_TAG] == run.run_id
    # A run without the tag is not warm-started: with no workspace, Dagster's own launch refuses it.
    assert not launcher.warm_up(new_run(instance, tmp_path / "3.json", warm=False))


def test_a_worker_warmed_up_before_a_code_change_is_not_used(instance: dg.DagsterInstance, tmp_path: Path) -> None:
    launcher = instance.run_launcher
    assert isinstance(launcher, runs.ProcessCheckingRunLauncher)
    run = new_run(instance, tmp_path / "1.json")
    target = launcher._warm_target(run)
    assert target is not None
    executable, origin, module, _ = target
    workers = warm_runs.WarmWorkers(warm_runs.serialize_instance_ref(instance))
    workers.prepare(executable, origin, module)
    edited = Path(__file__)
    before = edited.stat()
    try:
        os.utime(edited, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))  # as an edit in `dg dev` would
        assert workers.take(origin, module) is None
    finally:
        os.utime(edited, ns=(before.st_atime_ns, before.st_mtime_ns))
    workers.prepare(executable, origin, module)
    worker = workers.take(origin, module)
    assert worker is not None and worker.alive()
    # An idle worker whose launcher's process is gone (its stdin closes) exits by itself, cleanly.
    assert worker.process.stdin is not None
    worker.process.stdin.close()
    assert worker.process.wait(30) == 0
    workers.close()


def test_terminating_a_warm_run_from_another_process_interrupts_it(
    instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    launcher = instance.run_launcher
    assert isinstance(launcher, runs.ProcessCheckingRunLauncher)
    run = new_run(instance, tmp_path / "1.json", hold=120)
    launcher.warm_up(run)
    launch(instance, run)
    wait_for(lambda: (tmp_path / "1.json").exists(), timeout=60, what="the run to start its op")

    # The webserver's launcher: another instance of it, which never launched the run.
    with dg.DagsterInstance.from_ref(instance.get_ref()) as webserver:
        assert webserver.run_launcher.terminate(run.run_id)

    ended = finished(instance, run.run_id)
    assert ended.status == DagsterRunStatus.CANCELED
    pid = json.loads((tmp_path / "1.json").read_text())["pid"]
    wait_for(lambda: not runs.process_alive(runs.process_tags(pid=pid)) or None, timeout=30, what="the worker to exit")
