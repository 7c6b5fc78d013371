"""The run queue, with run tags taken from the ops a run executes.

Dagster's run-level limits (`tag_concurrency_limits`) look at run tags only. Our asset ops carry the
`sync_pipelines/integration` tag, but a run launched from the UI, a backfill or an asset selection runs the implicit
asset job with no run tags at all, so the per-integration limit never applied to it: four backfills ran four runs of
one integration at once, two of them holding a container while they waited for the pool. Dagster has no asset-level
run tags (dagster-io/dagster#15752), and its extension point for deciding what happens to a submitted run is the run
coordinator: this one is Dagster's QueuedRunCoordinator, which before enqueuing a run copies the chosen op tags of
the ops in the run's job snapshot onto the run, so the queue daemon sees them like any run tag. Every submission
passes here: the webserver's launches, the backfill daemon, sensors and schedules (`instance.submit_run`).

A tag already on the run is left as it is. Ops of one run that disagree on a tag's value (a selection across two
integrations) give the run no value for it, and the run is logged: the limits then apply to neither, as before.

A run a sensor submits itself (in the daemon; not a re-execution or a retry of one, which keep its tags) carrying
one of `launch_at_once_tags` (the webhook batches) is launched as it is submitted, as Dagster's default coordinator
does, when the run limits leave room for it: `max_concurrent_runs` and every tag limit, counted over the runs in
progress as the queue daemon counts them, and no run with the same value of that tag queued ahead of it. Otherwise
it is queued like any run. That saves the queue daemon's pass (0.5 s on average, up to its 1 s interval) on the path
where a second counts. What it does not do as the queue would: it goes ahead of queued runs of other tags (a
priority tag included) when a slot is free, and it skips the queue's pool check, so name only runs whose ops claim
no pool (the webhook batches claim none). The check and the launch are not one transaction with the queue daemon's
pass, so in the moment both launch a limit can be passed by a run. The launch happens on the sensor's thread: use it
with a launcher that starts a run in well under a second (the project's warm-start launcher; measured only there).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Self

from dagster import Array, Field
from dagster._core.run_coordinator import QueuedRunCoordinator, SubmitRunContext
from dagster._core.storage.dagster_run import ACTIVE_RUN_STATUSES, DagsterRun, DagsterRunStatus, RunsFilter
from dagster._core.storage.tags import SENSOR_NAME_TAG
from dagster._serdes import ConfigurableClassData
from dagster._utils.tags import TagConcurrencyLimitsCounter

DEFAULT_PROMOTED = ("sync_pipelines/integration",)

log = logging.getLogger(__name__)


def op_tag_values(instance: Any, run: DagsterRun, keys: Sequence[str]) -> dict[str, set[str]]:
    """For each tag key: the values the ops of the run's job snapshot carry (the subset the run executes)."""
    if not keys or run.job_snapshot_id is None:
        return {}
    snapshot = instance.get_job_snapshot(run.job_snapshot_id)
    invoked = {node.node_def_name for node in snapshot.dep_structure_snapshot.node_invocation_snaps}
    values: dict[str, set[str]] = {}
    for op in snapshot.node_defs_snapshot.op_def_snaps:
        if op.name not in invoked:
            continue
        for key in keys:
            value = (op.tags or {}).get(key)
            if value is not None:
                values.setdefault(key, set()).add(str(value))
    return values


class OpTagsRunCoordinator(QueuedRunCoordinator):
    """QueuedRunCoordinator that promotes `promote_op_tags` (default: sync_pipelines/integration) to run tags."""

    def __init__(
        self,
        promote_op_tags: Sequence[str] | None = None,
        launch_at_once_tags: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._promote = tuple(promote_op_tags) if promote_op_tags is not None else DEFAULT_PROMOTED
        self._launch_at_once = tuple(launch_at_once_tags or ())

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {
            **QueuedRunCoordinator.config_type(),  # type: ignore[dict-item]
            "promote_op_tags": Field(
                Array(str),
                is_required=False,
                description="Op tag keys copied onto a submitted run that lacks them (one value across its ops).",
            ),
            "launch_at_once_tags": Field(
                Array(str),
                is_required=False,
                description="Run tag keys whose runs are launched when submitted if the run limits leave room and no "
                "run with the same tag value is queued; otherwise they are queued.",
            ),
        }

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]) -> Self:
        # Every setting of the base class by its own name, whatever this Dagster version has.
        params = inspect.signature(QueuedRunCoordinator.__init__).parameters
        base = [name for name in params if name not in ("self", "inst_data")]
        return cls(
            inst_data=inst_data,
            promote_op_tags=config_value.get("promote_op_tags"),
            launch_at_once_tags=config_value.get("launch_at_once_tags"),
            **{name: config_value.get(name) for name in base},
        )

    def tags_for(self, run: DagsterRun) -> dict[str, str]:
        missing = [key for key in self._promote if key not in run.tags]
        tags: dict[str, str] = {}
        for key, values in op_tag_values(self._instance, run, missing).items():
            if len(values) == 1:
                tags[key] = next(iter(values))
            else:
                log.warning("run %s: its ops disagree on %s (%s); no run tag set", run.run_id, key, sorted(values))
        return tags

    def submit_run(self, context: SubmitRunContext) -> DagsterRun:
        run = context.dagster_run
        tags = self.tags_for(run)
        if tags:
            # Before the enqueue below: the queue daemon only looks at QUEUED runs, so it never sees the run untagged.
            self._instance.add_run_tags(run.run_id, tags)
            run = self._instance.get_run_by_id(run.run_id) or run
            context = SubmitRunContext(run, context.workspace)
        if self.may_launch_at_once(run):
            self._instance.launch_run(run.run_id, context.workspace)
            return self._instance.get_run_by_id(run.run_id) or run
        return super().submit_run(context)

    def may_launch_at_once(self, run: DagsterRun) -> bool:
        """Whether to launch this run now: a sensor's own run with a launch-at-once tag, the run limits leave room
        and no run with the same value of that tag waits in the queue. Runs from the UI, re-executions and retries
        (which copy their parent's sensor tag) are queued as before: launched from the webserver, a warm-started
        run would leave a warm worker idle in the webserver."""
        keys = [key for key in self._launch_at_once if key in run.tags]
        if run.status != DagsterRunStatus.NOT_STARTED or not keys or SENSOR_NAME_TAG not in run.tags:
            return False
        if run.parent_run_id is not None:
            return False
        config = self._instance.get_concurrency_config().run_queue_config
        if config is None:
            return False
        in_progress = list(self._instance.get_runs(RunsFilter(statuses=ACTIVE_RUN_STATUSES)))
        if config.max_concurrent_runs != -1 and len(in_progress) >= config.max_concurrent_runs:
            return False
        if TagConcurrencyLimitsCounter(list(config.tag_concurrency_limits), in_progress).is_blocked(run):
            return False
        for key in keys:
            waiting = RunsFilter(statuses=[DagsterRunStatus.QUEUED], tags={key: run.tags[key]})
            if self._instance.get_runs(waiting, limit=1):
                return False
        return True
