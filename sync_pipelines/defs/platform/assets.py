"""Operator-facing view of the sync machinery itself (the bridge schema)."""

import dagster as dg
import sqlalchemy as sa

from sync_pipelines.lib import schema
from sync_pipelines.lib.resources import WarehouseResource

BRIDGE_HEALTH_QUERIES: dict[str, sa.Select] = {
    "accounts_in_error": sa.select(sa.func.count()).where(schema.accounts.c.status == "error"),
    "dlq_open": sa.select(sa.func.count()).where(schema.failed_records.c.resolved_at.is_(None)),
    "dlq_dead": sa.select(sa.func.count()).where(schema.failed_records.c.status == "dead"),
    "pending_children": sa.select(sa.func.count()).where(schema.pending_children.c.status == "pending"),
    "webhooks_pending": sa.select(sa.func.count()).where(schema.webhook_events.c.status.in_(("pending", "failed"))),
    "webhooks_dead": sa.select(sa.func.count()).where(schema.webhook_events.c.status == "dead"),
    "jobs_in_error": sa.select(sa.func.count()).where(schema.job_status.c.status == "ERROR"),
    "background_in_error": sa.select(sa.func.count()).where(schema.background_sync_schedule.c.status == "error"),
}


def read_bridge_health(warehouse: WarehouseResource) -> dict[str, int]:
    with warehouse.engine().connect() as conn:
        return {name: int(conn.execute(query).scalar_one()) for name, query in BRIDGE_HEALTH_QUERIES.items()}


@dg.asset(
    key=["platform", "bridge_health"],
    group_name="platform",
    kinds={"postgres"},
    owners=["team:data-platform"],
    description=(
        "Counts of what needs an operator: accounts in error, open and dead DLQ records, children waiting "
        "for parents, queued and dead webhooks, failed jobs and background passes."
    ),
)
def bridge_health(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    counts = read_bridge_health(warehouse)
    context.log.info("bridge health: %s", counts)
    return dg.MaterializeResult(metadata={name: dg.MetadataValue.int(v) for name, v in counts.items()})


@dg.asset_check(asset=bridge_health, description="No record is dead in the DLQ and no webhook is dead.")
def nothing_dead(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    counts = read_bridge_health(warehouse)
    dead = counts["dlq_dead"] + counts["webhooks_dead"]
    return dg.AssetCheckResult(
        passed=dead == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"dlq_dead": counts["dlq_dead"], "webhooks_dead": counts["webhooks_dead"]},
    )
