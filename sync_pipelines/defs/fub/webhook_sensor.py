"""Follow Up Boss webhooks -> core in seconds.

The sensor claims a batch of pending events from bridge.webhook_events, folds repeated events for the same
records together, and requests ONE run for the batch (run_key `fub:batch:<claim>`, never reused). The run
re-fetches the named records through the API client (a FUB event carries only `resourceIds` and `uri`),
loads them through the same load path as delta sync (its change guard never moves a row back to an older
`updated`), soft-deletes what a `*Deleted` event names and the source no longer has, and marks the events
completed. A failure marks its events failed with backoff (dead after max_attempts): a later claim, or
Dagster's run retry, takes them again. A run killed outright leaves them claimed; the claim lease
(lib/webhooks.py) hands them to a later batch. Nothing is lost.
"""

import os
import uuid
from collections import defaultdict
from collections.abc import Iterable
from urllib.parse import parse_qs, urlparse

import dagster as dg
import sqlalchemy as sa

from sync_pipelines.defs.fub.entities import COLLECTIONS, INTEGRATION, LOAD_ORDER, SPECS
from sync_pipelines.defs.fub.resources import FubResource
from sync_pipelines.lib import accounts, mappings, webhooks
from sync_pipelines.lib.http import AuthError, CallLog
from sync_pipelines.lib.ids import new_id
from sync_pipelines.lib.load import BatchCounts, LoadContext, load_batch, soft_delete_ids
from sync_pipelines.lib.resources import WarehouseResource

BATCH_LIMIT = int(os.environ.get("SYNC_WEBHOOK_BATCH_LIMIT", "2000"))
OP_NAME = "fub_apply_webhooks"
# Not the integration's tag: backfills and delta syncs hold that limit for minutes and would make webhook
# batches wait behind them. Webhook runs have their own limit (dagster.yaml).
TAGS = {"sync_pipelines/webhooks": INTEGRATION}

# FUB event name prefix -> our entity. Longest prefix first; relationship events are not loaded.
_EVENT_PREFIXES: tuple[tuple[str, str | None], ...] = (
    ("peopleRelationship", None),
    ("people", "people"),
    ("deals", "deals"),
    ("calls", "calls"),
    ("textMessages", "text_messages"),
    ("appointments", "appointments"),
    ("events", "events"),
    ("stage", "stages"),
)


def entity_of(event_type: str | None) -> str | None:
    """`peopleUpdated` -> people, `stageCreated` -> stages; None for events we do not load (notes, emails...)."""
    for prefix, entity in _EVENT_PREFIXES:
        if event_type and event_type.startswith(prefix):
            return entity
    return None


def resource_ids(payload: dict) -> list[str]:
    ids = payload.get("resourceIds")
    if isinstance(ids, list) and ids:
        return [str(i) for i in ids]
    uri = payload.get("uri")
    if isinstance(uri, str):
        values = parse_qs(urlparse(uri).query).get("id", [])
        return [i for v in values for i in v.split(",") if i]
    return []


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


def coalesce(events: Iterable[webhooks.WebhookEvent]) -> list[ResourceGroup]:
    """One fetch per account and entity, each record once, however many events named it. Records named by a
    `*Deleted` event are fetched too: one the source still returns is upserted, not deleted."""
    fetch: dict[tuple[str, str], set[str]] = defaultdict(set)
    deleted: dict[tuple[str, str], set[str]] = defaultdict(set)
    for event in events:
        entity = entity_of(event.event_type or event.payload.get("event"))
        if entity is None:
            continue
        key = (str(event.account_id), entity)
        ids = resource_ids(event.payload)
        fetch[key].update(ids)
        if (event.event_type or "").endswith("Deleted"):
            deleted[key].update(ids)
    order = {entity: n for n, entity in enumerate(LOAD_ORDER)}
    return [
        ResourceGroup(account_id=account, entity=entity, ids=_sort_ids(ids), deleted_ids=_sort_ids(deleted[key]))
        for key in sorted(fetch, key=lambda k: (k[0], order[k[1]]))
        for account, entity in [key]
        for ids in [fetch[key]]
    ]


def batch_run_request(claim_uuid: str, events: list[webhooks.WebhookEvent]) -> dg.RunRequest:
    claim = f"{INTEGRATION}:{claim_uuid}"
    groups = coalesce(events)
    return dg.RunRequest(
        run_key=f"{INTEGRATION}:batch:{claim_uuid}",
        run_config=dg.RunConfig(
            ops={OP_NAME: WebhookBatchConfig(claim=claim, event_ids=[str(e.id) for e in events], groups=groups)}
        ),
        tags={
            **TAGS,
            "sync_pipelines/webhook_claim": claim,
            "sync_pipelines/webhook_events": str(len(events)),
            "sync_pipelines/webhook_records": str(sum(len(g.ids) for g in groups)),
        },
    )


@dg.op(name=OP_NAME, tags=TAGS)
def fub_apply_webhooks(
    context: dg.OpExecutionContext, config: WebhookBatchConfig, fub: FubResource, warehouse: WarehouseResource
) -> None:
    """Fetch the records a batch of FUB webhook events names, load them, mark the events done."""
    engine = warehouse.engine()
    with warehouse.raw_connection(autocommit=True) as conn:
        owned = webhooks.acquire(conn, config.event_ids, config.claim)
        if not owned:
            context.log.info("batch %s: no event is still ours (done or taken by a later claim)", config.claim)
            return
        by_account: dict[str, list[uuid.UUID]] = defaultdict(list)
        for event in owned:
            by_account[str(event.account_id)].append(event.id)
        known = {str(a.id): a for a in accounts.list_accounts(engine, INTEGRATION, active_only=False)}
        failures: dict[str, str] = {}
        totals: dict[str, BatchCounts] = defaultdict(BatchCounts)
        for account_id, event_ids in by_account.items():
            account = known.get(account_id)
            try:
                if account is None or not account.active:
                    raise LookupError(f"fub account {account_id} is gone or inactive")
                client = fub.client_for(engine, account)
                with client.logging_calls(CallLog(engine.url, INTEGRATION, account.id)):
                    for group in (g for g in config.groups if g.account_id == account_id):
                        spec = SPECS[group.entity]
                        with engine.begin() as sa_conn:
                            mappings.seed_defaults(sa_conn, INTEGRATION, group.entity, spec.mappings)
                        ctx = LoadContext(INTEGRATION, account.id, "realtime", context.run_id, None, SPECS)
                        client.entity = group.entity
                        records = client.fetch_ids(COLLECTIONS[group.entity], group.ids) if group.ids else []
                        _, counts = load_batch(conn, spec, ctx, records)
                        returned = {str(r.get("id")) for r in records}
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
                    "fub webhooks of account %s failed (%s): %d to retry, %d dead",
                    account.name if account else account_id, reason, outcome["failed"], outcome["dead"],
                )  # fmt: skip
    for entity, counts in totals.items():
        context.log_event(
            dg.AssetObservation(
                asset_key=dg.AssetKey([INTEGRATION, "core", entity]),
                metadata={"sync": "webhook", "claim": config.claim, **counts.as_metadata()},
            )
        )
    if failures:
        raise dg.Failure(description=f"fub webhooks: accounts failed, their events will be retried: {failures}")


@dg.job(
    name="fub_webhook_apply",
    description="Follow Up Boss: apply one claimed batch of webhook events (fetch, load, mark done).",
    tags=TAGS,
    executor_def=dg.in_process_executor,
)
def fub_webhook_job() -> None:
    fub_apply_webhooks()


# The daemon evaluates sensors in a loop with a fixed 5 s period (dagster/_daemon/sensor.py:
# MIN_INTERVAL_LOOP_TIME), and skips a sensor whose last tick started less than minimum_interval_seconds ago.
# At 5 the two race: a pass that comes round a few ms early skips the sensor, and events waited 10 s instead
# of 5 (measured: tick gaps of 5.0 and 9.4-10.0 s, bench/bench_webhook_e2e.py). At 1 the sensor runs on every
# pass: the loop alone sets the pace.
@dg.sensor(
    name="fub_webhook_events",
    job=fub_webhook_job,
    minimum_interval_seconds=1,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Claims pending Follow Up Boss webhook events and requests one run per batch.",
)
def fub_webhook_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource) -> dg.SensorResult:
    claim_uuid = new_id().hex
    with warehouse.raw_connection() as conn:
        events = webhooks.claim_batch(conn, INTEGRATION, BATCH_LIMIT, f"{INTEGRATION}:{claim_uuid}")
        conn.commit()
    if not events:
        return dg.SensorResult(skip_reason=dg.SkipReason("no pending fub webhook events"))
    context.log.info("claimed %d fub webhook events as batch %s", len(events), claim_uuid)
    return dg.SensorResult(run_requests=[batch_run_request(claim_uuid, events)])


def pending_count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT count(*) FROM bridge.webhook_events WHERE integration = :i AND status = 'pending'"),
                {"i": INTEGRATION},
            ).scalar_one()
        )
