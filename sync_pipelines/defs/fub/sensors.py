"""bridge.accounts -> the `fub_accounts` dynamic partitions: an account added anywhere becomes a partition row."""

import dagster as dg
import sqlalchemy as sa

from sync_pipelines.defs.fub.entities import INTEGRATION
from sync_pipelines.defs.fub.partitions import fub_accounts
from sync_pipelines.lib import schema
from sync_pipelines.lib.resources import WarehouseResource


@dg.sensor(
    name="fub_accounts_to_partitions", minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING
)
def fub_accounts_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource) -> dg.SensorResult:
    with warehouse.engine().connect() as conn:
        names = set(
            conn.execute(
                sa.select(schema.accounts.c.name).where(schema.accounts.c.integration == INTEGRATION)
            ).scalars()
        )
    known = set(context.instance.get_dynamic_partitions(fub_accounts.name))
    missing = sorted(names - known)
    if not missing:
        return dg.SensorResult(skip_reason=dg.SkipReason("every fub account already has its partition"))
    return dg.SensorResult(dynamic_partitions_requests=[fub_accounts.build_add_request(missing)])
