"""Unified entities across integrations (seed 001's flow): core.participant and core.contact_log.

Each is rebuilt set-based from the integrations' core tables: an upsert that changes nothing writes nothing,
and a row whose source row was soft-deleted is soft-deleted here too.
"""

import json

import dagster as dg
import sqlalchemy as sa

from sync_pipelines.lib.resources import WarehouseResource

# (source table, integration, source_entity, kind, name, email, phone) per integration feeding participant; name,
# email and phone are SQL over the source row `s`.
_LOFTY_NAME = "nullif(concat_ws(' ', s.first_name, s.last_name), '')"
PARTICIPANT_SOURCES = [
    ("core.fub_people", "fub", "people", "lead", "s.name", "s.email", "s.phone"),
    ("core.fub_users", "fub", "users", "agent", "s.name", "s.email", "NULL"),
    ("core.lofty_leads", "lofty", "leads", "lead", _LOFTY_NAME, "s.email", "s.phone"),
    ("core.lofty_users", "lofty", "users", "agent", _LOFTY_NAME, "s.email", "s.phone"),
]
# The participant entity a contact-log row's participant_source_id names, per integration.
CONTACT_PARTICIPANT_ENTITY = {"fub": "people", "lofty": "leads"}
# (source table, integration, source_entity, kind, participant column, agent column, occurred, summary); kind is SQL
# over the source row `s` (a literal, or the row's own channel).
CONTACT_LOG_SOURCES = [
    ("core.fub_calls", "fub", "calls", "'call'", "person_source_id", "user_source_id", "created_at_source",
     "coalesce(outcome, '') || ' (' || coalesce(duration_seconds, 0) || ' s)'"),
    ("core.fub_text_messages", "fub", "text_messages", "'text'", "person_source_id", "user_source_id",
     "created_at_source", "message"),
    ("core.fub_events", "fub", "events", "'event'", "person_source_id", "NULL", "created_at_source",
     "type || coalesce(': ' || message, '')"),
    ("core.fub_appointments", "fub", "appointments", "'appointment'", "person_source_id", "user_source_id",
     "starts_at", "title"),
    # Lofty's calls, texts and emails are one list; each row's channel is its kind.
    ("core.lofty_activities", "lofty", "activities", "coalesce(s.channel, 'activity')", "lead_source_id",
     "agent_source_id", "created_at_source",
     "concat_ws(' ', direction, channel) || coalesce(': ' || calling_outcome, '') || coalesce(' (' || duration_seconds"
     " || ' s)', '') || coalesce(': ' || email_subject, '') || coalesce(': ' || note, '')"),
]  # fmt: skip


def _enabled(keys: list[dg.AssetKey]) -> list[dg.AssetKey]:
    """The keys of enabled integrations (SYNC_INTEGRATIONS): a disabled one's table stays empty and has no asset."""
    from sync_pipelines import registry

    return [key for key in keys if key.path[0] in registry.INTEGRATIONS]


FUB_DEPS = _enabled(
    [dg.AssetKey(["fub", "core", e]) for e in ("people", "users")]
    + [dg.AssetKey(["lofty", "core", e]) for e in ("leads", "users")]
)
CONTACT_DEPS = _enabled(
    [dg.AssetKey(["fub", "core", e]) for e in ("calls", "text_messages", "events", "appointments")]
    + [dg.AssetKey(["lofty", "core", "activities"])]
)


def rebuild_participants(engine: sa.Engine) -> dict[str, int]:
    written = 0
    with engine.begin() as conn:
        for table, integration, entity, kind, name, email, phone in PARTICIPANT_SOURCES:
            written += conn.execute(
                sa.text(
                    f"""
                    INSERT INTO core.participant (integration, account_id, source_entity, source_id, kind, name,
                                                  email, phone, deleted_at)
                    SELECT :integration, s.account_id, :entity, s.source_id, :kind, {name}, {email}, {phone},
                           s.deleted_at
                    FROM {table} s
                    ON CONFLICT (integration, account_id, source_entity, source_id) DO UPDATE
                    SET name = EXCLUDED.name, email = EXCLUDED.email, phone = EXCLUDED.phone,
                        deleted_at = EXCLUDED.deleted_at, _synced_at = now()
                    WHERE (core.participant.name, core.participant.email, core.participant.phone,
                           core.participant.deleted_at)
                          IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.email, EXCLUDED.phone, EXCLUDED.deleted_at)
                    """
                ),
                {"integration": integration, "entity": entity, "kind": kind},
            ).rowcount
        total = conn.execute(sa.text("SELECT count(*) FROM core.participant WHERE deleted_at IS NULL")).scalar_one()
    return {"rows_written": written, "rows_live": int(total)}


def rebuild_contact_log(engine: sa.Engine) -> dict[str, int]:
    written = 0
    with engine.begin() as conn:
        for table, integration, entity, kind, person, agent, occurred, summary in CONTACT_LOG_SOURCES:
            agent_expr = f"s.{agent}" if agent != "NULL" else "NULL"
            written += conn.execute(
                sa.text(
                    f"""
                    INSERT INTO core.contact_log (integration, account_id, source_entity, source_id, kind,
                                                  participant_source_id, agent_source_id, occurred_at, summary,
                                                  deleted_at)
                    SELECT :integration, s.account_id, :entity, s.source_id, {kind}, s.{person}, {agent_expr},
                           s.{occurred}, {summary}, s.deleted_at
                    FROM {table} s
                    ON CONFLICT (integration, account_id, source_entity, source_id) DO UPDATE
                    SET participant_source_id = EXCLUDED.participant_source_id,
                        agent_source_id = EXCLUDED.agent_source_id, occurred_at = EXCLUDED.occurred_at,
                        summary = EXCLUDED.summary, deleted_at = EXCLUDED.deleted_at, _synced_at = now()
                    WHERE (core.contact_log.participant_source_id, core.contact_log.agent_source_id,
                           core.contact_log.occurred_at, core.contact_log.summary, core.contact_log.deleted_at)
                          IS DISTINCT FROM (EXCLUDED.participant_source_id, EXCLUDED.agent_source_id,
                                            EXCLUDED.occurred_at, EXCLUDED.summary, EXCLUDED.deleted_at)
                    """
                ),
                {"integration": integration, "entity": entity},
            ).rowcount
        total = conn.execute(sa.text("SELECT count(*) FROM core.contact_log WHERE deleted_at IS NULL")).scalar_one()
    return {"rows_written": written, "rows_live": int(total)}


@dg.asset(
    key=["core", "participant"],
    group_name="core",
    deps=FUB_DEPS,
    kinds={"postgres"},
    owners=["team:data-platform"],
    description="Everyone the brokerage deals with, across integrations: leads (FUB people, Lofty leads) and agents "
    "(FUB users, Lofty members), keyed by (integration, account, source entity, source id).",
)
def participant(warehouse: WarehouseResource) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata=rebuild_participants(warehouse.engine()))


@dg.asset(
    key=["core", "contact_log"],
    group_name="core",
    deps=CONTACT_DEPS,
    kinds={"postgres"},
    owners=["team:data-platform"],
    description="Every touch with a participant across integrations: FUB calls, texts, events, appointments; Lofty "
    "calls, texts and emails.",
)
def contact_log(warehouse: WarehouseResource) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata=rebuild_contact_log(warehouse.engine()))


@dg.asset_check(asset=contact_log, description="Every contact-log row points at a participant that exists.")
def contact_log_has_no_orphans(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.engine().connect() as conn:
        orphans = conn.execute(
            sa.text(
                """
                SELECT count(*) FROM core.contact_log c
                WHERE c.deleted_at IS NULL AND c.participant_source_id IS NOT NULL AND NOT EXISTS (
                    SELECT 1 FROM core.participant p WHERE p.integration = c.integration
                      AND p.account_id = c.account_id
                      AND p.source_entity = coalesce((CAST(:entities AS jsonb) ->> c.integration), 'people')
                      AND p.source_id = c.participant_source_id)
                """
            ),
            {"entities": json.dumps(CONTACT_PARTICIPANT_ENTITY)},
        ).scalar_one()
    return dg.AssetCheckResult(passed=orphans == 0, metadata={"orphans": int(orphans)})


# Each unified-transaction source's core table, as the asset it is read from.
TRANSACTION_DEPS = _enabled(
    [dg.AssetKey(["rezen", "core", e]) for e in ("transactions", "listings", "agents")]
    + [dg.AssetKey(["skyslope", "core", e]) for e in ("sales", "listings", "users")]
    + [dg.AssetKey(["dotloop", "core", e]) for e in ("loops", "participants")]
)
SYNCED_THROUGH = "synced_through"


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ["core", "transaction"],
            group_name="core",
            deps=TRANSACTION_DEPS,
            kinds={"postgres"},
            owners=["team:data-platform"],
            description="Every deal from every transaction-management source (reZEN now), one row per source "
            "record, status in one vocabulary, a normalised address key shared by the same property sold through "
            "two systems, the agent linked to core.participant by email. Updated from what changed since the "
            "last update, never rebuilt whole.",
        ),
        dg.AssetSpec(
            ["core", "listing"],
            group_name="core",
            deps=TRANSACTION_DEPS,
            kinds={"postgres"},
            owners=["team:data-platform"],
            description="Every listing from every transaction-management source, as core.transaction.",
        ),
    ],
    name="core_transactions_and_listings",
)
def transactions_and_listings(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    from datetime import UTC, datetime

    from sync_pipelines.defs.core.transactions import SINCE_OVERLAP, update_unified

    started = datetime.now(UTC)
    # Where the last update got to, from its own materialization: the next one reads only what changed since.
    last = context.instance.get_latest_materialization_event(dg.AssetKey(["core", "transaction"]))
    through = None
    if last is not None and last.asset_materialization is not None:
        value = last.asset_materialization.metadata.get(SYNCED_THROUGH)
        through = datetime.fromisoformat(str(value.value)) if value is not None else None
    since = through - SINCE_OVERLAP if through else None
    written = update_unified(warehouse.engine(), since)
    metadata = {
        SYNCED_THROUGH: started.isoformat(),
        "since": since.isoformat() if since else "the beginning",
        **{k: v for k, v in written.items()},
    }
    yield dg.MaterializeResult(asset_key=["core", "transaction"], metadata=metadata)
    yield dg.MaterializeResult(asset_key=["core", "listing"], metadata=metadata)
