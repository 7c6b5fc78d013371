"""What DotLoop's client and delta need from the warehouse besides the load path: where a loop or a participant
lives (a fetch by id needs the profile and the loop in its path), the pointer from a merged loop to the loop it
went into, and the participants a delta's re-read lists no longer have."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg import sql

from sync_pipelines.defs.dotloop.entities import INTEGRATION, SPECS
from sync_pipelines.lib.load import BatchCounts, LoadContext, soft_delete_ids


def _lookup(
    engine: sa.Engine, account_id: uuid.UUID, entity: str, column: str, raw_field: str, ids: list[str]
) -> dict[str, str]:
    """{source id: column} from core, or, for a record core does not hold because it failed validation, from its
    open DLQ row's payload (where `dlq retry --refetch` finds it)."""
    core = SPECS[entity].core
    query = sa.text(
        f"""
        SELECT source_id, {column} FROM {core.schema}.{core.name}
        WHERE account_id = :account AND source_id = ANY(:ids)
        UNION ALL
        SELECT source_id, raw_data ->> :raw_field FROM bridge.failed_records
        WHERE integration = :integration AND account_id = :account AND entity_name = :entity
          AND resolved_at IS NULL AND source_id = ANY(:ids)
        """
    )
    params = {"account": account_id, "ids": ids, "raw_field": raw_field, "integration": INTEGRATION, "entity": entity}
    found: dict[str, str] = {}
    with engine.connect() as conn:
        for source_id, value in conn.execute(query, params):
            if value and source_id not in found:
                found[source_id] = str(value)
    return found


def loop_profiles(engine: sa.Engine, account_id: uuid.UUID, loop_ids: list[str]) -> dict[str, str]:
    """Loop id -> the profile it was read from."""
    return _lookup(engine, account_id, "loops", "profile_source_id", "_profileId", loop_ids)


def participant_loops(engine: sa.Engine, account_id: uuid.UUID, participant_ids: list[str]) -> dict[str, str]:
    """Participant id -> the loop it is on."""
    return _lookup(engine, account_id, "participants", "loop_source_id", "_loopId", participant_ids)


def point_merged_loop(engine: sa.Engine, account_id: uuid.UUID, merged: str, survivor: str) -> int:
    """DotLoop merged loop `merged` into `survivor` (its id now answers with the survivor): the row is soft-deleted
    and points at the survivor, with its DELETE audit row. Returns the rows changed (0 if already so)."""
    with engine.begin() as conn:
        return conn.execute(
            sa.text(
                """
                WITH merged AS (
                    UPDATE core.dotloop_loops t
                    SET merged_into_source_id = :survivor, deleted_at = coalesce(t.deleted_at, now()),
                        _synced_at = now()
                    WHERE t.account_id = :account AND t.source_id = :merged
                      AND (t.merged_into_source_id IS DISTINCT FROM :survivor OR t.deleted_at IS NULL)
                    RETURNING t.id, t.source_id, t.deleted_at
                )
                INSERT INTO bridge.audit_log (action, integration, entity_type, entity_id, source_id, account_id,
                                              old_value, new_value)
                SELECT 'DELETE', :integration, 'loops', m.id, m.source_id, :account,
                       jsonb_build_object('source_id', m.source_id),
                       jsonb_build_object('deleted_at', m.deleted_at, 'merged_into_source_id', :survivor)
                FROM merged m
                """
            ),
            {"account": account_id, "merged": merged, "survivor": survivor, "integration": INTEGRATION},
        ).rowcount


def participants_before(conn: Any, entity: str, account_id: Any) -> list[str]:
    """Nothing to note before the walk: the lists it re-reads are known only as it reads them."""
    return []


def close_participant_lists(
    conn: psycopg.Connection, client: Any, ctx: LoadContext, entity: str, before: list[str], batch_ids: list[Any]
) -> BatchCounts:
    """After a delta re-read the participant lists of the loops that changed: a participant core holds on one of
    those loops that the list no longer has was removed from the loop (a list is read whole, so its answer is
    positive evidence). A batch with a participant whose id could not be read deletes nothing: that record could
    be any of them."""
    counts = BatchCounts()
    loops = sorted(getattr(client, "participant_lists_read", set()))
    spec = SPECS[entity]
    if not loops:
        return counts
    staging = sql.Identifier(spec.staging.schema or "staging", spec.staging.name)
    unreadable = conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE _batch_id = ANY(%s) AND source_id IS NULL").format(staging),
        (batch_ids,),
    ).fetchone()
    if unreadable and unreadable[0]:
        return counts
    rows = conn.execute(
        sql.SQL(
            """
            SELECT t.source_id FROM {core} t
            WHERE t.account_id = %(account)s AND t.deleted_at IS NULL AND t.loop_source_id = ANY(%(loops)s)
              AND NOT EXISTS (SELECT 1 FROM {staging} s WHERE s._batch_id = ANY(%(batches)s)
                              AND s.source_id = t.source_id)
            """
        ).format(core=sql.Identifier(spec.core.schema or "core", spec.core.name), staging=staging),
        {"account": ctx.account_id, "loops": loops, "batches": batch_ids},
    ).fetchall()
    counts.deleted = soft_delete_ids(conn, spec, ctx, [r[0] for r in rows])
    return counts
