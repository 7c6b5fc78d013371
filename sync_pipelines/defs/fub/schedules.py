"""Delta sync: every 5 minutes, everything updated since each account's cursor, for every entity."""

import os

import dagster as dg

from sync_pipelines.defs.fub import sync as fub_sync
from sync_pipelines.defs.fub.entities import INTEGRATION, LOAD_ORDER
from sync_pipelines.defs.fub.resources import FubResource
from sync_pipelines.lib import accounts
from sync_pipelines.lib.http import AuthError
from sync_pipelines.lib.resources import WarehouseResource

DELTA_CRON = os.environ.get("SYNC_FUB_DELTA_CRON", "*/5 * * * *")


@dg.op(tags={"sync_pipelines/integration": INTEGRATION}, pool="fub_api")
def fub_delta(context: dg.OpExecutionContext, fub: FubResource, warehouse: WarehouseResource) -> None:
    engine = warehouse.engine()
    # Accounts are isolated: one account's failure (a revoked key, a 5xx storm that outlasts the retries) is
    # recorded on its row, shown by `status`, and the run goes on with the rest and fails at the end.
    failures: dict[str, list[str]] = {}
    for account in accounts.list_accounts(engine, INTEGRATION):
        client_for = lambda a: fub.client_for(engine, a)  # noqa: E731
        for entity in LOAD_ORDER:
            try:
                report = fub_sync.delta(engine, client_for, account, entity, dagster_run_id=context.run_id)
            except AuthError as exc:
                failures.setdefault(account.name, []).append(f"{exc.status}: {exc.message}")
                context.log.error("fub account %s failed (%s); it is marked in error, others go on", account.name,
                                  exc.message)  # fmt: skip
                break  # every other entity of the account would be refused alike
            except Exception as exc:
                failures.setdefault(account.name, []).append(f"{entity}: {type(exc).__name__}: {exc}")
                context.log.error("fub %s/%s failed (%s: %s); the other entities and accounts go on", account.name,
                                  entity, type(exc).__name__, exc)  # fmt: skip
                continue
            if report.counts.inserted or report.counts.updated or report.counts.failed:
                context.log_event(
                    dg.AssetObservation(
                        asset_key=dg.AssetKey([INTEGRATION, "core", entity]),
                        metadata={"account": account.name, "sync": "delta", **report.metadata()},
                    )
                )
    if failures:
        raise dg.Failure(
            description=f"fub delta: accounts failed (the others synced): {', '.join(sorted(failures))}",
            metadata={"failed_accounts": str(failures)},
        )


@dg.job(
    name="fub_delta_sync",
    description="Follow Up Boss: everything updated since each account's cursor, every entity, every account.",
    tags={"sync_pipelines/integration": INTEGRATION},
    executor_def=dg.in_process_executor,
)
def fub_delta_job() -> None:
    fub_delta()


fub_delta_schedule = dg.ScheduleDefinition(
    name="fub_delta_every_5_minutes",
    job=fub_delta_job,
    cron_schedule=DELTA_CRON,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
