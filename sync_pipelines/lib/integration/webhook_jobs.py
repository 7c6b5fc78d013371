"""Webhooks -> core in seconds, for any integration that declares `Webhooks`.

The sensor claims a batch of pending events from bridge.webhook_events, folds repeated events for the same
records together, and requests ONE run for the batch (run_key `<integration>:batch:<claim>`, never reused). The run
re-fetches the named records through the API client (an event names records; the source has the truth),
loads them through the same load path as delta sync (its change guard never moves a row back to an older
`updated`), soft-deletes what a delete event names and the source no longer has, and marks the events
completed. A failure marks its events failed with backoff (dead after max_attempts): a later claim, or
Dagster's run retry, takes them again. A run killed outright leaves them claimed; the claim lease
(lib/webhooks.py) hands them to a later batch. Nothing is lost.
"""

import os
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import dagster as dg
import sqlalchemy as sa

from sync_pipelines.lib import accounts, mappings, webhooks
from sync_pipelines.lib.http import AuthError, CallLog
from sync_pipelines.lib.ids import new_id
from sync_pipelines.lib.integration.declaration import Integration
from sync_pipelines.lib.load import BatchCounts, LoadContext, load_batch, soft_delete_ids
from sync_pipelines.lib.resources import WarehouseResource

BATCH_LIMIT = int(os.environ.get("SYNC_WEBHOOK_BATCH_LIMIT", "2000"))
WEBHOOK_TAG = "sync_pipelines/webhooks"


def op_name(integration: Integration) -> str:
    return f"{integration.name}_apply_webhooks"


def webhook_tags(integration: Integration) -> dict[str, str]:
    # Not the integration's tag: backfills and delta syncs hold that limit for minutes and would make webhook
    # batches wait behind them. Webhook runs have their own limit (dagster.yaml).
    return {WEBHOOK_TAG: integration.name}


class ResourceGroup(dg.Config):
    account_id: str
    entity: str
    ids: list[str]
    deleted_ids: list[str]


class WebhookBatchConfig(dg.Config):
    claim: str
    event_ids: list[str]
    groups: list[ResourceGroup]


def _sort_ids(ids: Iterable[str]) -> list[str]:
    return sorted(set(ids), key=lambda i: (len(i), i))


def coalesce(integration: Integration, events: Iterable[webhooks.WebhookEvent]) -> list[ResourceGroup]:
    """One fetch per account and entity, each record once, however many events named it. Records named by a
    delete event are fetched too: one the source still returns is upserted, not deleted."""
    assert integration.webhooks is not None
    fetch: dict[tuple[str, str], set[str]] = defaultdict(set)
    deleted: dict[tuple[str, str], set[str]] = defaultdict(set)
    for event in events:
        for change in integration.webhooks.changes(event.event_type, event.payload):
            key = (str(event.account_id), change.entity)
            fetch[key].update(change.ids)
            if change.deleted:
                deleted[key].update(change.ids)
    order = {entity: n for n, entity in enumerate(integration.load_order)}
    return [
        ResourceGroup(account_id=account, entity=entity, ids=_sort_ids(ids), deleted_ids=_sort_ids(deleted[key]))
        for key in sorted(fetch, key=lambda k: (k[0], order[k[1]]))
        for account, entity in [key]
        for ids in [fetch[key]]
    ]


def batch_run_request(integration: Integration, claim_uuid: str, events: list[webhooks.WebhookEvent]) -> dg.RunRequest:
    claim = f"{integration.name}:{claim_uuid}"
    groups = coalesce(integration, events)
    config = WebhookBatchConfig(claim=claim, event_ids=[str(e.id) for e in events], groups=groups)
    return dg.RunRequest(
        run_key=f"{integration.name}:batch:{claim_uuid}",
        run_config=dg.RunConfig(ops={op_name(integration): config}),
        tags={
            **webhook_tags(integration),
            "sync_pipelines/webhook_claim": claim,
            "sync_pipelines/webhook_events": str(len(events)),
            "sync_pipelines/webhook_records": str(sum(len(g.ids) for g in groups)),
        },
    )


@dataclass(frozen=True)
class WebhookDefinitions:
    job: dg.JobDefinition
    sensor: dg.SensorDefinition


def webhook_definitions(integration: Integration) -> WebhookDefinitions:
    """The apply job and the sensor that claims batches for it."""
    name = integration.name
    tags = webhook_tags(integration)

    @dg.op(name=op_name(integration), tags=tags, required_resource_keys={integration.resource_key, "warehouse"})
    def _apply(context: dg.OpExecutionContext, config: WebhookBatchConfig) -> None:
        """Fetch the records a batch of webhook events names, load them, mark the events done."""
        resource = getattr(context.resources, integration.resource_key)
        warehouse: WarehouseResource = context.resources.warehouse
        engine = warehouse.engine()
        specs = integration.specs
        with warehouse.raw_connection(autocommit=True) as conn:
            owned = webhooks.acquire(conn, config.event_ids, config.claim)
            if not owned:
                context.log.info("batch %s: no event is still ours (done or taken by a later claim)", config.claim)
                return
            by_account: dict[str, list[uuid.UUID]] = defaultdict(list)
            for event in owned:
                by_account[str(event.account_id)].append(event.id)
            known = {str(a.id): a for a in accounts.list_accounts(engine, name, active_only=False)}
            failures: dict[str, str] = {}
            totals: dict[str, BatchCounts] = defaultdict(BatchCounts)
            for account_id, event_ids in by_account.items():
                account = known.get(account_id)
                try:
                    if account is None or not account.active:
                        raise LookupError(f"{name} account {account_id} is gone or inactive")
                    client = resource.client_for(engine, account)
                    with client.logging_calls(CallLog(engine.url, name, account.id)):
                        for group in (g for g in config.groups if g.account_id == account_id):
                            declared = integration.entity(group.entity)
                            spec = declared.spec
                            with engine.begin() as sa_conn:
                                mappings.seed_defaults(sa_conn, name, group.entity, spec.mappings)
                            ctx = LoadContext(name, account.id, "realtime", context.run_id, None, specs)
                            client.entity = group.entity
                            records = client.fetch_ids(declared.source, group.ids) if group.ids else []
                            _, counts = load_batch(conn, spec, ctx, records)
                            returned = {str(r.get(spec.id_field)) for r in records if isinstance(r, dict)}
                            counts.deleted += soft_delete_ids(
                                conn, spec, ctx, [i for i in group.deleted_ids if i not in returned]
                            )
                            totals[group.entity].add(counts)
                    webhooks.complete(conn, event_ids, config.claim)
                except Exception as exc:
                    reason = f"{type(exc).__name__}: {exc}"[:1000]
                    if isinstance(exc, AuthError) and account is not None:
                        accounts.mark_account(engine, account.id, error=f"{exc.status}: {exc.message}")
                    outcome = webhooks.fail(conn, event_ids, reason, config.claim)
                    failures[account.name if account else account_id] = reason
                    context.log.error(
                        "%s webhooks of account %s failed (%s): %d to retry, %d dead",
                        name, account.name if account else account_id, reason, outcome["failed"], outcome["dead"],
                    )  # fmt: skip
        for entity, counts in totals.items():
            context.log_event(
                dg.AssetObservation(
                    asset_key=dg.AssetKey([name, "core", entity]),
                    metadata={"sync": "webhook", "claim": config.claim, **counts.as_metadata()},
                )
            )
        if failures:
            raise dg.Failure(description=f"{name} webhooks: accounts failed, their events will be retried: {failures}")

    @dg.job(
        name=f"{name}_webhook_apply",
        description=f"{integration.title}: apply one claimed batch of webhook events (fetch, load, mark done).",
        tags=tags,
        executor_def=dg.in_process_executor,
    )
    def _job() -> None:
        _apply()

    # The daemon evaluates sensors in a loop with a fixed 5 s period (dagster/_daemon/sensor.py:
    # MIN_INTERVAL_LOOP_TIME), and skips a sensor whose last tick started less than minimum_interval_seconds ago.
    # At 5 the two race: a pass that comes round a few ms early skips the sensor, and events waited 10 s instead
    # of 5 (measured: tick gaps of 5.0 and 9.4-10.0 s, bench/bench_webhook_e2e.py). At 1 the sensor runs on every
    # pass: the loop alone sets the pace.
    # By name, not `job=`: Definitions would rebuild a sensor holding a job object with its resources bound, and that
    # copy passes `owners=[]`, which Dagster 1.13 warns about (BetaWarning) on every command that loads definitions.
    @dg.sensor(
        name=f"{name}_webhook_events",
        job_name=_job.name,
        minimum_interval_seconds=1,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Claims pending {integration.title} webhook events and requests one run per batch.",
    )
    def _sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource) -> dg.SensorResult:
        claim_uuid = new_id().hex
        with warehouse.raw_connection() as conn:
            events = webhooks.claim_batch(conn, name, BATCH_LIMIT, f"{name}:{claim_uuid}")
            conn.commit()
        if not events:
            return dg.SensorResult(skip_reason=dg.SkipReason(f"no pending {name} webhook events"))
        context.log.debug("claimed %d %s webhook events as batch %s", len(events), name, claim_uuid)
        return dg.SensorResult(run_requests=[batch_run_request(integration, claim_uuid, events)])

    return WebhookDefinitions(_job, _sensor)


def pending_count(engine: sa.Engine, integration: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT count(*) FROM bridge.webhook_events WHERE integration = :i AND status = 'pending'"),
                {"i": integration},
            ).scalar_one()
        )
