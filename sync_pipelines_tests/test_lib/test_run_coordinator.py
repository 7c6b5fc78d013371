"""The run coordinator launches a sensor's webhook batch as it is submitted when the queue would launch it anyway,
and queues it otherwise (lib/run_coordinator.py). On a real Postgres-backed instance loaded from the project's
dagster.yaml; the launched run executes in a real run worker."""

from pathlib import Path

import dagster as dg
from dagster._core.events import DagsterEventType
from dagster._core.remote_origin import InProcessCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.run_coordinator import SubmitRunContext
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._core.storage.tags import SENSOR_NAME_TAG
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

from sync_pipelines.lib import run_coordinator
from sync_pipelines.lib.integration.webhook_jobs import WEBHOOK_TAG
from sync_pipelines_tests.test_lib.test_warm_runs import finished, warm_probe_job

SENSOR_TAGS = {WEBHOOK_TAG: "probe", SENSOR_NAME_TAG: "probe_webhooks"}
# A queued run must name the job as a workspace would find it; these runs are never dequeued (no daemon here).
REMOTE_ORIGIN = RemoteJobOrigin(
    RemoteRepositoryOrigin(InProcessCodeLocationOrigin(LoadableTargetOrigin(python_file=__file__)), "__repository__"),
    "warm_probe_job",
)


def new_run(
    instance: dg.DagsterInstance,
    out: Path,
    tags: dict[str, str],
    status: DagsterRunStatus = DagsterRunStatus.NOT_STARTED,
    parent: dg.DagsterRun | None = None,
) -> dg.DagsterRun:
    return instance.create_run_for_job(
        job_def=warm_probe_job,
        run_config={"ops": {"record_process": {"config": {"out": str(out)}}}},
        tags=tags,
        status=status,
        parent_run_id=parent.run_id if parent else None,
        root_run_id=parent.run_id if parent else None,
        job_code_origin=dg.reconstructable(warm_probe_job).get_python_origin(),
        remote_job_origin=REMOTE_ORIGIN,
    )


def submit(instance: dg.DagsterInstance, run: dg.DagsterRun) -> dg.DagsterRun:
    # What `instance.submit_run` hands the coordinator, without the remote origin only a workspace gives.
    return instance.run_coordinator.submit_run(SubmitRunContext(run, workspace=None))  # type: ignore[arg-type]


def was_enqueued(instance: dg.DagsterInstance, run_id: str) -> bool:
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.PIPELINE_ENQUEUED).records
    return bool(records)


def test_a_sensors_webhook_batch_is_launched_as_it_is_submitted_without_the_queue(
    project_instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    coordinator = project_instance.run_coordinator
    assert isinstance(coordinator, run_coordinator.OpTagsRunCoordinator)
    run = new_run(project_instance, tmp_path / "run.json", SENSOR_TAGS)
    assert project_instance.run_launcher.warm_up(run)  # type: ignore[attr-defined]

    submitted = submit(project_instance, run)

    assert submitted.status != DagsterRunStatus.QUEUED
    assert finished(project_instance, run.run_id).status == DagsterRunStatus.SUCCESS
    assert not was_enqueued(project_instance, run.run_id)
    assert (tmp_path / "run.json").exists()


def test_a_webhook_batch_is_queued_when_its_tag_limit_is_reached(
    project_instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    # dagster.yaml: at most 2 runs in progress per value of the webhooks tag.
    for n in range(2):
        new_run(project_instance, tmp_path / f"busy{n}.json", SENSOR_TAGS, DagsterRunStatus.STARTED)
    run = new_run(project_instance, tmp_path / "run.json", SENSOR_TAGS)

    assert submit(project_instance, run).status == DagsterRunStatus.QUEUED
    assert was_enqueued(project_instance, run.run_id)


def test_a_webhook_batch_waits_behind_one_of_its_integration_already_queued(
    project_instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    new_run(project_instance, tmp_path / "ahead.json", SENSOR_TAGS, DagsterRunStatus.QUEUED)
    run = new_run(project_instance, tmp_path / "run.json", SENSOR_TAGS)

    assert submit(project_instance, run).status == DagsterRunStatus.QUEUED


def test_a_webhook_batch_started_from_the_ui_and_any_other_run_are_queued(
    project_instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    from_ui = new_run(project_instance, tmp_path / "ui.json", {WEBHOOK_TAG: "probe"})
    other = new_run(project_instance, tmp_path / "other.json", {SENSOR_NAME_TAG: "some_sensor"})

    assert submit(project_instance, from_ui).status == DagsterRunStatus.QUEUED
    assert submit(project_instance, other).status == DagsterRunStatus.QUEUED


def test_a_webhook_batch_is_queued_when_max_concurrent_runs_are_in_progress(
    project_instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    # dagster.yaml: max_concurrent_runs 8, whatever their tags.
    for n in range(8):
        new_run(project_instance, tmp_path / f"busy{n}.json", {"sync_pipelines/integration": f"other{n}"},
                DagsterRunStatus.STARTED)  # fmt: skip
    run = new_run(project_instance, tmp_path / "run.json", SENSOR_TAGS)

    assert submit(project_instance, run).status == DagsterRunStatus.QUEUED


def test_a_re_executed_webhook_batch_is_queued_though_it_keeps_the_sensors_tags(
    project_instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    # A re-execution from the UI (or a retry) copies its parent's tags; launched at once it would start in the
    # webserver's (or the retry daemon's) process.
    parent = new_run(project_instance, tmp_path / "parent.json", SENSOR_TAGS, DagsterRunStatus.FAILURE)
    again = new_run(project_instance, tmp_path / "again.json", SENSOR_TAGS, parent=parent)

    assert submit(project_instance, again).status == DagsterRunStatus.QUEUED
