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
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Self

from dagster import Array, Field
from dagster._core.run_coordinator import QueuedRunCoordinator, SubmitRunContext
from dagster._core.storage.dagster_run import DagsterRun
from dagster._serdes import ConfigurableClassData

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

    def __init__(self, promote_op_tags: Sequence[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._promote = tuple(promote_op_tags) if promote_op_tags is not None else DEFAULT_PROMOTED

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {
            **QueuedRunCoordinator.config_type(),  # type: ignore[dict-item]
            "promote_op_tags": Field(
                Array(str),
                is_required=False,
                description="Op tag keys copied onto a submitted run that lacks them (one value across its ops).",
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
        return super().submit_run(context)
