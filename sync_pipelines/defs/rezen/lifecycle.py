"""reZEN's lifecycle groups: which states each group holds, the warehouse's count per group (the seeds'
tc_rezen / tc_ad / tc_mismatch check), and how a delta catches the records that left an open group.

reZEN lists transactions and listings only per lifecycle group and has no updated-after filter, so a delta
reads the groups whose records can still change (OPEN; LISTING_ACTIVE) again. A record that changed *out* of
such a group (an open transaction that closed or was terminated, or one deleted) is then simply absent from
the walk. `close_departures` finds those rows (held as open in core, not returned by the walk), fetches them
by id, loads what comes back and soft-deletes what the source no longer has (a 404 by id is positive evidence).
The states are the ones the evidence and the sandbox know (docs/integrations/rezen.md); a state outside these
lists counts as UNKNOWN in the reconciliation, so a new state shows up as a mismatch instead of being lost.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Protocol

import psycopg
from psycopg import sql

from sync_pipelines.defs.rezen.entities import SPECS
from sync_pipelines.lib.load import BatchCounts, LoadContext, load_batch, soft_delete_ids

UNKNOWN = "UNKNOWN"
# Group -> states, per entity, in the order the client reads the groups: the groups whose records can still
# change come first, so a record that moves on while a full read is under way is seen twice, never missed.
GROUP_STATES: dict[str, dict[str, tuple[str, ...]]] = {
    "transactions": {
        "OPEN": (
            "NEW",
            "NEEDS_COMMISSION_VALIDATION",
            "COMMISSION_VALIDATED",
            "COMMISSION_DOCUMENT_GENERATED",
            "APPROVED_FOR_CLOSING",
        ),
        "CLOSED": ("CLOSED", "PAYMENT_ACCEPTED", "SETTLED"),
        "TERMINATED": ("TERMINATED",),
    },
    "listings": {
        "LISTING_ACTIVE": ("LISTING_ACTIVE", "LISTING_IN_CONTRACT"),
        "CLOSED": ("LISTING_CLOSED",),
        "TERMINATED": ("TERMINATED", "EXPIRED"),
    },
}
GROUPS = {entity: tuple(groups) for entity, groups in GROUP_STATES.items()}
# What a delta reads again: the groups whose records still change.
CHANGEABLE_GROUPS = {"transactions": ("OPEN",), "listings": ("LISTING_ACTIVE",)}


def group_of(entity: str, state: str | None) -> str:
    for group, states in GROUP_STATES[entity].items():
        if state in states:
            return group
    return UNKNOWN


def changeable_states(entity: str) -> list[str]:
    return [state for group in CHANGEABLE_GROUPS[entity] for state in GROUP_STATES[entity][group]]


def warehouse_counts_by_group(conn: psycopg.Connection, entity: str, account_id: uuid.UUID) -> dict[str, int]:
    """Live core rows of one account (one agent: a key is its owner's view) per lifecycle group, to set against
    the source's lifecycle-group-counts. Every group is present, UNKNOWN only when some state is unknown."""
    core = SPECS[entity].core
    rows = conn.execute(
        sql.SQL(
            "SELECT lifecycle_state, count(*) FROM {} WHERE account_id = %s AND deleted_at IS NULL GROUP BY 1"
        ).format(sql.Identifier(core.schema or "core", core.name)),
        (account_id,),
    ).fetchall()
    counts = dict.fromkeys(GROUPS[entity], 0)
    for state, n in rows:
        group = group_of(entity, state)
        counts[group] = counts.get(group, 0) + int(n)
    return counts


def open_in_core(conn: psycopg.Connection, entity: str, account_id: uuid.UUID) -> list[str]:
    """Source ids of the live rows core holds in a changeable group: read before a delta's re-walk."""
    core = SPECS[entity].core
    rows = conn.execute(
        sql.SQL(
            "SELECT source_id FROM {} WHERE account_id = %s AND deleted_at IS NULL AND lifecycle_state = ANY(%s)"
        ).format(sql.Identifier(core.schema or "core", core.name)),
        (account_id, changeable_states(entity)),
    ).fetchall()
    return [row[0] for row in rows]


def seen_in_batches(conn: psycopg.Connection, entity: str, batch_ids: Iterable[uuid.UUID]) -> set[str]:
    staging = SPECS[entity].staging
    rows = conn.execute(
        sql.SQL("SELECT DISTINCT source_id FROM {} WHERE _batch_id = ANY(%s) AND source_id IS NOT NULL").format(
            sql.Identifier(staging.schema or "staging", staging.name)
        ),
        (list(batch_ids),),
    ).fetchall()
    return {row[0] for row in rows}


class FetchesIds(Protocol):
    def fetch_ids(self, entity: str, ids: list[str]) -> list[dict]: ...


def close_departures(
    conn: psycopg.Connection,
    client: FetchesIds,
    ctx: LoadContext,
    entity: str,
    open_before: Iterable[str],
    batch_ids: Iterable[uuid.UUID],
) -> BatchCounts:
    """After a delta's re-walk of the changeable groups (its batches `batch_ids`): the rows that were open before
    it (`open_before`, from `open_in_core`) and that it did not return are fetched by id and loaded in their new
    state; those the source answers 404 for are soft-deleted. One request per departed record: a handful per
    delta, where reading the closed group again would cost a page per 100 records it holds."""
    spec = SPECS[entity]
    departed = sorted(set(open_before) - seen_in_batches(conn, entity, batch_ids))
    if not departed:
        return BatchCounts()
    records = client.fetch_ids(entity, departed)
    _, counts = load_batch(conn, spec, ctx, records)
    returned = {str(r.get(spec.id_field)) for r in records if isinstance(r, dict)}
    counts.deleted += soft_delete_ids(conn, spec, ctx, [i for i in departed if i not in returned])
    return counts
