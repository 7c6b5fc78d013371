"""Retrying the dead-letter queue (bridge.failed_records).

Two ways to retry a record, chosen by what failed:
- **refetch** (the default where the source can return a record by id): the stored payload is what the source
  served, so running it again can only fail again; the record is fetched anew and loaded through the load path.
  A record the source no longer has is resolved as gone and its core row soft-deleted (the source's answer
  without it is the positive evidence); one that fails again refreshes its DLQ row and counts an attempt.
- **reprocess** the stored payload: after a field-mapping fix, or for a record whose id could not be read
  (nothing to fetch it by; a complete re-read of its period resolves it, see load.soft_delete_missing).

Either way a record that loads cleanly is resolved by the batch that loaded it (load._resolve_loaded_failures).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from sync_pipelines.lib.load import EntitySpec, LoadContext, load_batch, retry_failed, soft_delete_ids

# Records by source id; an id the source no longer has is simply absent from the answer.
Fetcher = Callable[[list[str]], list[dict]]
REFETCH_CHUNK = 100


def default_backoff(attempt: int) -> int:
    return min(60 * 2**attempt, 86_400)


@dataclass
class RetryOutcome:
    resolved: int = 0
    gone: int = 0
    still_failing: int = 0
    without_id: int = 0

    def add(self, other: RetryOutcome) -> None:
        self.resolved += other.resolved
        self.gone += other.gone
        self.still_failing += other.still_failing
        self.without_id += other.without_id


def _open_rows(
    conn: psycopg.Connection, spec: EntitySpec, ctx: LoadContext, *, only_due: bool, ids: list[uuid.UUID] | None
) -> list[tuple[uuid.UUID, str | None]]:
    # Named records are retried whatever their state (an operator's choice); otherwise pending ones only.
    where = "resolved_at IS NULL AND integration = %s AND entity_name = %s AND account_id = %s"
    params: list[Any] = [spec.integration, spec.entity, ctx.account_id]
    if ids:
        where += " AND id = ANY(%s)"
        params.append(ids)
    else:
        where += " AND status = 'pending'"
    if only_due:
        where += " AND next_retry_at <= now()"
    rows = conn.execute(
        f"SELECT id, source_id FROM bridge.failed_records WHERE {where} ORDER BY created_at", params
    ).fetchall()
    return [(row[0], row[1]) for row in rows]


def retry(
    conn: psycopg.Connection,
    spec: EntitySpec,
    ctx: LoadContext,
    *,
    fetch: Fetcher | None,
    only_due: bool = False,
    ids: list[uuid.UUID] | None = None,
    backoff: Callable[[int], int] = default_backoff,
) -> RetryOutcome:
    """Retry the open DLQ rows of one entity and account: refetched by id when `fetch` is given, else (and for
    rows without an id) by reprocessing the stored payload. `conn` is in autocommit mode."""
    outcome = RetryOutcome()
    rows = _open_rows(conn, spec, ctx, only_due=only_due, ids=ids)
    by_id = [(row_id, source_id) for row_id, source_id in rows if source_id is not None]
    stored = [row_id for row_id, source_id in rows if source_id is None or fetch is None]
    if fetch is not None:
        for start in range(0, len(by_id), REFETCH_CHUNK):
            outcome.add(_refetch_chunk(conn, spec, ctx, fetch, by_id[start : start + REFETCH_CHUNK], backoff))
    if stored:
        outcome.without_id = sum(1 for _, source_id in rows if source_id is None)
        resolved, failed = retry_failed(conn, spec, ctx, only_due=False, ids=stored, backoff=backoff)
        outcome.resolved += resolved
        outcome.still_failing += failed
    return outcome


def _refetch_chunk(
    conn: psycopg.Connection,
    spec: EntitySpec,
    ctx: LoadContext,
    fetch: Fetcher,
    chunk: list[tuple[uuid.UUID, str | None]],
    backoff: Callable[[int], int],
) -> RetryOutcome:
    outcome = RetryOutcome()
    wanted = sorted({source_id for _, source_id in chunk if source_id is not None})
    records = fetch(wanted)  # outside the transaction: no lock is held while the source answers
    returned = {str(r.get(spec.id_field)) for r in records if isinstance(r, dict) and r.get(spec.id_field) is not None}
    gone = [source_id for source_id in wanted if source_id not in returned]
    row_ids = [row_id for row_id, _ in chunk]
    with conn.transaction():
        if records:
            load_batch(conn, spec, ctx, records)
        if gone:
            outcome.gone = conn.execute(
                "UPDATE bridge.failed_records SET status = 'resolved', resolved_at = now(), updated_at = now(), "
                "resolution = 'refetched: the source no longer has this record' "
                "WHERE id = ANY(%s) AND resolved_at IS NULL AND source_id = ANY(%s)",
                (row_ids, gone),
            ).rowcount
            soft_delete_ids(conn, spec, ctx, gone)
        still_open = conn.execute(
            "SELECT id, retry_count FROM bridge.failed_records WHERE id = ANY(%s) AND resolved_at IS NULL", (row_ids,)
        ).fetchall()
        for row_id, retry_count in still_open:
            attempt = retry_count + 1
            conn.execute(
                "UPDATE bridge.failed_records SET retry_count = %s, updated_at = now(), "
                "next_retry_at = now() + make_interval(secs => %s), "
                "status = CASE WHEN %s >= max_retries THEN 'dead' ELSE 'pending' END WHERE id = %s",
                (attempt, backoff(attempt), attempt, row_id),
            )
    outcome.still_failing = len(still_open)
    outcome.resolved = len(chunk) - outcome.gone - outcome.still_failing
    return outcome
