"""The load path every integration shares: records in, one transaction per batch.

    COPY raw records into staging  ->  normalise with bridge.field_mappings (SQL)  ->  validate
    ->  invalid rows to bridge.failed_records  ->  children without a parent to bridge.pending_children
    ->  one set-based upsert into core with a change guard  ->  audit rows  ->  children whose parent
    just landed  ->  sync_batches metrics  ->  the cursor in bridge.sync_state

All of it commits together, so the cursor can never get ahead of the rows it covers. A batch of records in
which no id repeats and no row can wait for a parent (most of them) does the steps from normalise to the audit
rows in one statement; the others go through temp tables that dedupe and hold orphans, and so does a chunk a
stager relays from a source database, which normalises and validates before it waits for the chunk ahead of it
to commit.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

import orjson
import psycopg
from psycopg import sql
from sqlalchemy import Table

from sync_pipelines.lib.call_log import CallRecord
from sync_pipelines.lib.ids import new_id
from sync_pipelines.lib.mappings import FieldMapping, normalise_plan

log = logging.getLogger(__name__)
_T = TypeVar("_T")

# The first Postgres version whose RETURNING can name an updated row's OLD values.
RETURNING_OLD_SINCE = 180_000
# Columns every core entity table has, filled by the load path itself rather than by mappings.
SYSTEM_COLUMNS = ("source_id", "created_at_source", "_source_updated_at")


@dataclass(frozen=True)
class ParentRef:
    """A child row points at a parent by the parent's source id in `column`."""

    entity: str
    column: str


@dataclass(frozen=True)
class EntitySpec:
    integration: str
    entity: str
    staging: Table
    core: Table
    mappings: tuple[FieldMapping, ...]
    parent: ParentRef | None = None
    id_field: str = "id"
    created_field: str = "created"

    @property
    def name(self) -> str:
        return f"{self.integration}/{self.entity}"


@dataclass
class BatchCounts:
    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    pending: int = 0
    deleted: int = 0
    children_resolved: int = 0
    dlq_resolved: int = 0
    # Records staged without a readable id (a complete read that had any soft-deletes nothing: soft_delete_missing).
    without_id: int = 0

    def add(self, other: BatchCounts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_metadata(self) -> dict[str, int]:
        return {f"rows_{f.name}": getattr(self, f.name) for f in fields(self)}


@dataclass
class LoadContext:
    """What one sync run knows while it loads batches."""

    integration: str
    account_id: uuid.UUID
    sync_type: str = "realtime"
    dagster_run_id: str | None = None
    period_key: str | None = None
    registry: Mapping[str, EntitySpec] = field(default_factory=dict)
    max_retries: int = 5
    # Per core table: (rows it had when last analysed, rows this run has inserted since). See _keep_statistics.
    statistics: dict[str, tuple[float, int]] = field(default_factory=dict)
    # Core tables (fullname) whose batches are expected to hold only keys core does not have yet (a first read
    # of a window, a first pass over a source): they try a plain INSERT before the upsert. See _insert_first.
    insert_first: set[str] = field(default_factory=set)


# Fills staging for one batch itself (e.g. a COPY relayed from a source database) instead of from records.
Stager = Callable[[psycopg.Connection, uuid.UUID], "Staged"]


def _ident(table: Table) -> sql.Composable:
    return sql.Identifier(table.schema or "public", table.name)


def read_mappings(conn: psycopg.Connection, spec: EntitySpec) -> list[FieldMapping]:
    rows = conn.execute(
        """
        SELECT source_field, target_field, data_type, transformation, default_value, is_required
        FROM bridge.field_mappings
        WHERE integration = %s AND entity_name = %s AND is_active
        ORDER BY position, target_field
        """,
        (spec.integration, spec.entity),
    ).fetchall()
    mappings = [FieldMapping(*row) for row in rows] or list(spec.mappings)
    known = {c.name for c in spec.core.columns}
    for mapping in mappings:
        mapping.validate()
        if mapping.target_field not in known:
            raise ValueError(
                f"field mapping {spec.name}: target {mapping.target_field!r} is not a column of "
                f"{spec.core.schema}.{spec.core.name}"
            )
    return mappings


@dataclass
class Staged:
    """What COPY put into staging for one batch."""

    rows: int = 0
    # Whether one source id came more than once (an overlap window): only then does the batch need a dedupe.
    repeated_ids: bool = False
    # Records without a readable id; None when the stager did not count them.
    without_id: int | None = None


# Rows are written to COPY in blocks of about this many bytes.
_COPY_BLOCK = 256 * 1024


def _copy_text(value: object) -> bytes:
    """A value in COPY's text format, where a backslash starts an escape and tab, newline and carriage return
    end fields and rows."""
    if value is None:
        return b"\\N"
    text = value if isinstance(value, str) else str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text.encode()


def _copy_to_staging(
    conn: psycopg.Connection, spec: EntitySpec, ctx: LoadContext, batch_id: uuid.UUID, records: Iterable[dict]
) -> Staged:
    """COPY the records into staging as text rows built here: per record that is one orjson dump, its md5 and
    a few byte joins, where psycopg's per-value adaptation of the same row costs several times as much."""
    columns = sql.SQL(", ").join(
        map(sql.Identifier, ("_batch_id", "account_id", "source_id", "period_key", "raw", "_raw_hash"))
    )
    staged = Staged(without_id=0)
    seen: set[str] = set()
    id_field, created_field = spec.id_field, spec.created_field
    prefix = f"{batch_id}\t{ctx.account_id}\t".encode()
    block = bytearray()
    with conn.cursor().copy(sql.SQL("COPY {} ({}) FROM STDIN").format(_ident(spec.staging), columns)) as copy:
        for record in records:
            source_id = record.get(id_field) if isinstance(record, dict) else None
            created = record.get(created_field) if isinstance(record, dict) else None
            period = created[:7] if isinstance(created, str) and len(created) >= 7 else None
            raw = orjson.dumps(record)
            # JSON text may contain \u0000, which Postgres jsonb refuses: keep the record, lose the NUL.
            if b"\\u0000" in raw:
                raw = raw.replace(b"\\u0000", b"")
            key = None if source_id is None else str(source_id)
            if key is not None:
                if key in seen:
                    staged.repeated_ids = True
                seen.add(key)
            else:
                staged.without_id += 1
            # orjson escapes every control character inside strings, so a backslash is all raw JSON can hold
            # that COPY's text format would read as an escape.
            block += prefix
            block += _copy_text(key)
            block += b"\t"
            block += _copy_text(period)
            block += b"\t"
            block += raw.replace(b"\\", b"\\\\")
            block += b"\t"
            block += hashlib.md5(raw).hexdigest().encode()
            block += b"\n"
            staged.rows += 1
            if len(block) >= _COPY_BLOCK:
                copy.write(bytes(block))
                block.clear()
        if block:
            copy.write(bytes(block))
    return staged


def load_batch(
    conn: psycopg.Connection,
    spec: EntitySpec,
    ctx: LoadContext,
    records: Iterable[dict],
    *,
    cursor: tuple[str, str | None] | None = None,
    calls: list[CallRecord] | None = None,
    records_synced: int | None = None,
    stager: Stager | None = None,
    before_apply: Callable[[], None] | None = None,
    before_validate: Callable[[], None] | None = None,
) -> tuple[uuid.UUID, BatchCounts]:
    """Load one batch in one transaction; `cursor` = (entity_type, value) moves in the same commit. `calls`
    are the source calls behind the batch, for its metrics (the calls themselves go to bridge.sync_logs
    through the client's CallLog, outside this transaction).
    With `stager`, it fills staging for the batch and `records` is not read. `before_apply` is called before
    the batch touches core (see sync.run_pages: it waits there for the previous batch to commit); an exception
    from it rolls the batch back. `before_validate` is called before the batch writes its first row that
    another batch could also write (its DLQ rows). A batch on the temp-table path calls them once it is
    normalised (before_validate) and validated (before_apply); one that goes from staging to core in one
    statement calls both once it is staged (see _load_rows)."""
    started = time.monotonic()
    batch_id = new_id()
    with conn.transaction():
        conn.execute(
            """
            INSERT INTO bridge.sync_batches (id, integration, account_id, entity_name, source_system, sync_type,
                                             status, period_key, dagster_run_id, cursor_before)
            VALUES (%s, %s, %s, %s, %s, %s, 'running', %s, %s, %s)
            """,
            (batch_id, spec.integration, ctx.account_id, spec.entity, spec.integration, ctx.sync_type,
             ctx.period_key, ctx.dagster_run_id, None),
        )  # fmt: skip
        counts = _load_rows(conn, spec, ctx, batch_id, records, stager, before_apply, before_validate)
        conn.execute(
            """
            UPDATE bridge.sync_batches
            SET status = 'completed', completed_at = now(), rows_fetched = %s, rows_normalized = %s,
                rows_inserted = %s, rows_updated = %s, rows_unchanged = %s, rows_failed = %s,
                rows_pending = %s, rows_deleted = %s, pages = %s, api_calls = %s, rate_limited = %s,
                duration_ms = %s, cursor_after = %s
            WHERE id = %s
            """,
            (
                counts.fetched, counts.fetched - counts.failed, counts.inserted, counts.updated, counts.unchanged,
                counts.failed, counts.pending, counts.deleted,
                sum(1 for c in calls or [] if c.status == 200), len(calls or []),
                sum(1 for c in calls or [] if c.status == 429),
                int((time.monotonic() - started) * 1000), cursor[1] if cursor else None, batch_id,
            ),
        )  # fmt: skip
        if cursor is not None:
            save_cursor(conn, spec.integration, ctx.account_id, cursor[0], cursor[1], records_synced)
    return batch_id, counts


def save_cursor(
    conn: psycopg.Connection,
    integration: str,
    account_id: uuid.UUID,
    entity_type: str,
    cursor: str | None,
    records_synced: int | None = None,
    status: str = "running",
) -> None:
    conn.execute(
        """
        INSERT INTO bridge.sync_state (integration, account_id, entity_type, cursor, status, records_synced,
                                       last_sync_at, updated_at)
        VALUES (%s, %s, %s, %s, %s, coalesce(%s, 0), now(), now())
        ON CONFLICT (integration, account_id, entity_type) DO UPDATE
        SET cursor = EXCLUDED.cursor, status = EXCLUDED.status, error_message = NULL,
            records_synced = coalesce(%s, bridge.sync_state.records_synced),
            last_sync_at = now(), updated_at = now()
        """,
        (integration, account_id, entity_type, cursor, status, records_synced, records_synced),
    )


def read_cursor(conn: psycopg.Connection, integration: str, account_id: uuid.UUID, entity_type: str) -> str | None:
    row = conn.execute(
        "SELECT cursor FROM bridge.sync_state WHERE integration = %s AND account_id = %s AND entity_type = %s",
        (integration, account_id, entity_type),
    ).fetchone()
    return row[0] if row else None


def read_records_synced(conn: psycopg.Connection, integration: str, account_id: uuid.UUID, entity_type: str) -> int:
    row = conn.execute(
        "SELECT records_synced FROM bridge.sync_state WHERE integration = %s AND account_id = %s AND entity_type = %s",
        (integration, account_id, entity_type),
    ).fetchone()
    return int(row[0]) if row and row[0] else 0


def mark_sync(
    conn: psycopg.Connection, integration: str, account_id: uuid.UUID, entity_type: str, *, finished: bool
) -> None:
    """A sync of this cursor starts (status running, last_started_at) or finishes (completed, last_finished_at,
    the error cleared). The cursor itself moves only with the batches it covers."""
    if finished:
        change = "status = 'completed', last_finished_at = now(), error_message = NULL"
    else:
        change = "status = 'running', last_started_at = now()"
    conn.execute(
        f"""
        INSERT INTO bridge.sync_state (integration, account_id, entity_type, status, last_started_at,
                                       last_finished_at, updated_at)
        VALUES (%s, %s, %s, %s, CASE WHEN %s THEN NULL ELSE now() END, CASE WHEN %s THEN now() END, now())
        ON CONFLICT (integration, account_id, entity_type) DO UPDATE SET {change}, updated_at = now()
        """,
        (integration, account_id, entity_type, "completed" if finished else "running", finished, finished),
    )


def record_sync_error(
    conn: psycopg.Connection, integration: str, account_id: uuid.UUID, entity_type: str, message: str
) -> None:
    """A sync of this cursor failed: its row says so (status 'error' and the reason) until the next commit of
    the cursor clears it. The cursor itself stays where the last commit left it."""
    conn.execute(
        """
        INSERT INTO bridge.sync_state (integration, account_id, entity_type, status, error_message, updated_at)
        VALUES (%s, %s, %s, 'error', %s, now())
        ON CONFLICT (integration, account_id, entity_type) DO UPDATE
        SET status = 'error', error_message = EXCLUDED.error_message, last_finished_at = now(), updated_at = now()
        """,
        (integration, account_id, entity_type, message[:2000]),
    )


def _mappings_fingerprint(mappings: list[FieldMapping]) -> str:
    """Changes whenever a mapping does, so a runtime mapping edit rewrites rows whose raw record did not change."""
    return hashlib.md5(repr([tuple(vars(m).values()) for m in mappings]).encode()).hexdigest()[:12]


# Invalid rows (`bad`, aliased n: normalised rows and their errors) to the DLQ with the raw payload, the
# normalised attempt and the reasons. A record that already has an open DLQ row refreshes it (one open row per
# record), so repeat failures do not pile up; of two failing copies of one record in a batch, the later wins.
_QUEUE_INVALID = """
    INSERT INTO bridge.failed_records (batch_id, integration, account_id, entity_name, source_id, raw_data,
                                       normalized_data, stage_failed, error_message, max_retries, next_retry_at)
    SELECT DISTINCT ON (coalesce(n._staged_source_id, n._row_id::text))
           %(batch)s, %(integration)s, %(account)s, %(entity)s, n._staged_source_id, s.raw,
           to_jsonb(n) - '_errors' - '_row_id' - '_row_hash', 'validation',
           array_to_string(n._errors, '; '), %(max_retries)s, now() + interval '1 minute'
    FROM bad n JOIN {staging} s ON s._row_id = n._row_id
    ORDER BY coalesce(n._staged_source_id, n._row_id::text), n._row_id DESC
    ON CONFLICT (integration, account_id, entity_name, source_id) WHERE resolved_at IS NULL
    DO UPDATE SET batch_id = EXCLUDED.batch_id, raw_data = EXCLUDED.raw_data,
                  normalized_data = EXCLUDED.normalized_data, stage_failed = EXCLUDED.stage_failed,
                  error_message = EXCLUDED.error_message, updated_at = now()
    RETURNING 1
"""

# Open DLQ rows of records this batch has just loaded cleanly ({loaded_ids}) are resolved by it: whatever was
# wrong with the copy that failed, the source has since served a good one. (A row failed in this very batch
# stays open: its good twin in the batch is an older or newer version, not a repair.)
_RESOLVE_LOADED = """
    UPDATE bridge.failed_records f
    SET status = 'resolved', resolved_at = now(), updated_at = now(),
        resolution = 'loaded cleanly by batch ' || %(batch)s::text
    WHERE f.resolved_at IS NULL AND f.integration = %(integration)s AND f.account_id = %(account)s
      AND f.entity_name = %(entity)s AND f.batch_id IS DISTINCT FROM %(batch)s
      AND f.source_id IN ({loaded_ids})
"""


def _batch_params(spec: EntitySpec, ctx: LoadContext, batch_id: uuid.UUID) -> dict[str, Any]:
    return {"account": ctx.account_id, "batch": batch_id, "integration": spec.integration, "entity": spec.entity,
            "max_retries": ctx.max_retries}  # fmt: skip


def _load_rows(
    conn: psycopg.Connection,
    spec: EntitySpec,
    ctx: LoadContext,
    batch_id: uuid.UUID,
    records: Iterable[dict],
    stager: Stager | None = None,
    before_apply: Callable[[], None] | None = None,
    before_validate: Callable[[], None] | None = None,
) -> BatchCounts:
    staged = stager(conn, batch_id) if stager else _copy_to_staging(conn, spec, ctx, batch_id, records)
    counts = BatchCounts(fetched=staged.rows)
    if counts.fetched == 0:
        if before_validate is not None:
            before_validate()
        if before_apply is not None:
            before_apply()
        return counts
    # Sort and hash in memory: the default 4 MB spills a 50,000-row chunk to disk. JIT compiles each big
    # statement for longer than it then runs.
    conn.execute("SELECT set_config('work_mem', '64MB', true), set_config('jit', 'off', true)")
    mappings = read_mappings(conn, spec)
    targets = [m.target_field for m in mappings]
    data_columns = [t for t in targets if t not in SYSTEM_COLUMNS]
    normalised = _normalise_query(spec, mappings)
    # Staging saw the records' ids (spec.id_field); a mapping that takes source_id from elsewhere could repeat.
    id_mapped_as_staged = any(m.target_field == "source_id" and m.source_field == spec.id_field for m in mappings)
    if stager is None and spec.parent is None and id_mapped_as_staged and not staged.repeated_ids:
        # Nothing to dedupe and no orphan to hold: one statement from staging to core (see _load_in_one_statement).
        counts.without_id = staged.without_id or 0
        if before_validate is not None:
            before_validate()
        if before_apply is not None:
            before_apply()
        _load_in_one_statement(conn, spec, ctx, batch_id, normalised, data_columns, counts)
        _keep_statistics(conn, spec, ctx, counts.inserted)
        counts.children_resolved = _release_children(conn, spec, ctx)
        return counts
    conn.execute("DROP TABLE IF EXISTS _norm, _valid")
    conn.execute(sql.SQL("CREATE TEMP TABLE _norm ON COMMIT DROP AS {}").format(normalised), {"batch": batch_id})
    if staged.without_id is None:  # a stager filled staging: count from what it staged, before the DLQ takes any
        row = conn.execute("SELECT count(*) FROM _norm WHERE _staged_source_id IS NULL").fetchone()
        staged.without_id = int(row[0]) if row else 0
    if before_validate is not None:
        before_validate()
    row = conn.execute(
        sql.SQL(
            """
            WITH bad AS (DELETE FROM _norm n WHERE cardinality(n._errors) > 0 RETURNING n.*),
            queued AS ({queue})
            SELECT (SELECT count(*) FROM bad), (SELECT count(*) FROM queued)
            """
        ).format(queue=sql.SQL(_QUEUE_INVALID).format(staging=_ident(spec.staging))),
        _batch_params(spec, ctx, batch_id),
    ).fetchone()
    counts.failed = int(row[0]) if row else 0
    counts.without_id = staged.without_id
    if staged.repeated_ids or not id_mapped_as_staged:
        # The latest version of each record wins inside a batch (an overlap window can return it twice).
        conn.execute(
            """
            CREATE TEMP TABLE _valid ON COMMIT DROP AS
            SELECT DISTINCT ON (n.source_id) n.* FROM _norm n
            ORDER BY n.source_id, n._source_updated_at DESC NULLS LAST, n._row_id DESC
            """
        )
    else:
        conn.execute("ALTER TABLE _norm RENAME TO _valid")
    # Up to here the batch wrote only rows of its own (staging, its temp tables, its DLQ and batch rows), so
    # it cannot wait on a lock held by a batch committing before it.
    if before_apply is not None:
        before_apply()
    if spec.parent is not None:
        parent_spec = ctx.registry.get(spec.parent.entity)
        if parent_spec is not None:
            counts.pending = _hold_orphans(conn, spec, ctx, batch_id, parent_spec)
    inserted, updated, total = _upsert(conn, spec, ctx, batch_id, data_columns)
    _keep_statistics(conn, spec, ctx, inserted)
    counts.inserted, counts.updated = inserted, updated
    counts.unchanged = total - inserted - updated
    counts.dlq_resolved = _resolve_loaded_failures(conn, spec, ctx, batch_id)
    counts.children_resolved = _release_children(conn, spec, ctx)
    return counts


def _resolve_loaded_failures(conn: psycopg.Connection, spec: EntitySpec, ctx: LoadContext, batch_id: uuid.UUID) -> int:
    return conn.execute(
        sql.SQL(_RESOLVE_LOADED).format(loaded_ids=sql.SQL("SELECT v.source_id FROM _valid v")),
        _batch_params(spec, ctx, batch_id),
    ).rowcount


def _keep_statistics(conn: psycopg.Connection, spec: EntitySpec, ctx: LoadContext, inserted: int) -> None:
    """ANALYZE a core table each time a run has doubled it. Autovacuum lags a bulk load, and on the
    statistics of a nearly empty table the planner picks plans (index choice, joins) that read the whole
    table for every batch."""
    name = spec.core.fullname
    if name not in ctx.statistics:
        row = conn.execute("SELECT greatest(reltuples, 0) FROM pg_class WHERE oid = %s::regclass", (name,)).fetchone()
        ctx.statistics[name] = (float(row[0]) if row else 0.0, 0)
    known, since = ctx.statistics[name]
    since += inserted
    if since > max(10_000, known):
        # Autovacuum's full ANALYZE follows later.
        _analyze_sample(conn, spec.core, ("account_id", "source_id", "period_key"))
        known, since = known + since, 0
    ctx.statistics[name] = (known, since)


def _analyze_sample(conn: psycopg.Connection, table: Table, columns: Iterable[str]) -> None:
    """ANALYZE only the columns a plan hinges on, from a small sample: row counts and key distributions are
    all those plans need, where a default ANALYZE of every column costs seconds per million rows."""
    previous = conn.execute(
        "SELECT current_setting('default_statistics_target'), set_config('default_statistics_target', '10', false)"
    ).fetchone()
    # SKIP_LOCKED: an autovacuum at work on the table would make ANALYZE wait a deadlock_timeout for it to yield.
    conn.execute(
        sql.SQL("ANALYZE (SKIP_LOCKED) {} ({})").format(_ident(table), sql.SQL(", ").join(map(sql.Identifier, columns)))
    )
    conn.execute("SELECT set_config('default_statistics_target', %s, false)", (previous[0] if previous else "100",))


def _hold_orphans(
    conn: psycopg.Connection, spec: EntitySpec, ctx: LoadContext, batch_id: uuid.UUID, parent: EntitySpec
) -> int:
    assert spec.parent is not None
    column = sql.Identifier(spec.parent.column)
    # OFFSET 0 keeps NOT EXISTS a per-row probe of the parent's unique index. As an anti-join, planned on
    # statistics that lag a bulk load, it can read the parent's whole table for every batch: O(N^2).
    orphan = sql.SQL(
        "v.{col} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE p.account_id = %(account)s "
        "AND p.source_id = v.{col} OFFSET 0)"
    ).format(col=column, parent=_ident(parent.core))
    params = {"account": ctx.account_id, "batch": batch_id, "integration": spec.integration,
              "child": spec.entity, "parent_entity": parent.entity}  # fmt: skip
    held = conn.execute(
        sql.SQL(
            """
            INSERT INTO bridge.pending_children (batch_id, integration, account_id, child_entity, child_source_id,
                                                 parent_entity, parent_source_id, parent_bk_hash, child_payload)
            SELECT %(batch)s, %(integration)s, %(account)s, %(child)s, v.source_id, %(parent_entity)s, v.{col},
                   md5(%(account)s::text || ':' || v.{col}), s.raw
            FROM _valid v JOIN {staging} s ON s._row_id = v._row_id WHERE {orphan}
            ON CONFLICT (integration, account_id, child_entity, child_source_id) WHERE status = 'pending'
            DO UPDATE SET child_payload = EXCLUDED.child_payload, batch_id = EXCLUDED.batch_id,
                          parent_source_id = EXCLUDED.parent_source_id, parent_bk_hash = EXCLUDED.parent_bk_hash
            """
        ).format(col=column, orphan=orphan, staging=_ident(spec.staging)),
        params,
    ).rowcount
    if held:
        conn.execute(sql.SQL("DELETE FROM _valid v WHERE {orphan}").format(orphan=orphan), params)
    return held


def _normalise_query(spec: EntitySpec, mappings: list[FieldMapping]) -> sql.Composable:
    """The batch's staged rows (%(batch)s) as typed columns, each row's validation errors and its row hash."""
    plan = normalise_plan(mappings, sql.SQL("s.raw"))
    # OFFSET 0 keeps each layer a separate subquery: inlined, Postgres would read every JSON path once per
    # place that uses it (validity, cast, error message), several times per row.
    return sql.SQL(
        """
        SELECT x._row_id, x._staged_source_id, {columns}, {errors} AS _errors,
               coalesce(x._raw_hash, md5(x.raw::text)) || ':' || {fingerprint} AS _row_hash
        FROM (
            SELECT e.*, {checks} FROM (
                SELECT s._row_id, s.source_id AS _staged_source_id, s.raw, s._raw_hash, {extracts}
                FROM {staging} s WHERE s._batch_id = %(batch)s OFFSET 0
            ) e OFFSET 0
        ) x
        """
    ).format(
        columns=sql.SQL(", ").join(plan.columns),
        errors=plan.errors,
        fingerprint=sql.Literal(_mappings_fingerprint(mappings)),
        checks=sql.SQL(", ").join(plan.checks) if plan.checks else sql.SQL("true AS _no_checks"),
        extracts=sql.SQL(", ").join(plan.extracts),
        staging=_ident(spec.staging),
    )


def _load_in_one_statement(
    conn: psycopg.Connection,
    spec: EntitySpec,
    ctx: LoadContext,
    batch_id: uuid.UUID,
    normalised: sql.Composable,
    data_columns: list[str],
    counts: BatchCounts,
) -> None:
    """Normalise, validate, queue the invalid rows, upsert the rest with their audit rows and resolve the open
    DLQ rows of what loaded, in one statement: the normalised rows stay in memory between those steps instead
    of going through temp tables, each read once more per step. Only for a batch in which no id repeats and
    no row waits for a parent, so no two steps write the same row: a record is either queued or loaded, and
    the DLQ rows it refreshes (its own id's) are never the ones it resolves (other ids')."""
    upsert = _upsert_parts(conn, spec, data_columns)
    params = _batch_params(spec, ctx, batch_id)

    def statement(conflict: bool) -> sql.Composable:
        return sql.SQL(
            """
            WITH n AS MATERIALIZED ({normalised}),
            bad AS (SELECT * FROM n WHERE cardinality(n._errors) > 0),
            queued AS ({queue}),
            {upsert},
            resolved AS ({resolve} RETURNING 1)
            SELECT (SELECT count(*) FROM up WHERE _inserted), (SELECT count(*) FROM up WHERE NOT _inserted),
                   (SELECT count(*) FROM n WHERE cardinality(n._errors) = 0), (SELECT count(*) FROM bad),
                   (SELECT count(*) FROM audit), (SELECT count(*) FROM queued), (SELECT count(*) FROM resolved)
            """
        ).format(
            normalised=normalised,
            queue=sql.SQL(_QUEUE_INVALID).format(staging=_ident(spec.staging)),
            upsert=upsert(sql.SQL("n v WHERE cardinality(v._errors) = 0"), conflict=conflict),
            resolve=sql.SQL(_RESOLVE_LOADED).format(
                loaded_ids=sql.SQL("SELECT v.source_id FROM n v WHERE cardinality(v._errors) = 0")
            ),
        )

    def run(conflict: bool) -> tuple[Any, ...] | None:
        return conn.execute(statement(conflict), params).fetchone()

    row = _insert_first(conn, spec, ctx, run)
    assert row is not None
    inserted, updated, valid, failed = int(row[0]), int(row[1]), int(row[2]), int(row[3])
    counts.inserted, counts.updated, counts.unchanged = inserted, updated, valid - inserted - updated
    counts.failed, counts.dlq_resolved = failed, int(row[6])


def _upsert_parts(conn: psycopg.Connection, spec: EntitySpec, data_columns: list[str]) -> Callable[..., sql.Composable]:
    """The `up` (the upsert into core with its change guard) and `audit` (its CREATE and UPDATE rows) parts of a
    WITH clause, for valid rows read `FROM` the given relation, aliased `v`; with conflict=False a plain INSERT
    that fails on a key core already has. Parameters: %(account)s, %(batch)s, %(integration)s, %(entity)s."""
    core = _ident(spec.core)
    insert_columns = ["account_id", "source_id", "period_key", "created_at_source", *data_columns,
                      "_source_updated_at", "_row_hash", "_batch_id", "_synced_at", "deleted_at"]  # fmt: skip
    values = [
        sql.SQL("%(account)s"),
        sql.SQL("v.source_id"),
        sql.SQL("to_char(v.created_at_source AT TIME ZONE 'UTC', 'YYYY-MM')"),
        sql.SQL("v.created_at_source"),
        *[sql.SQL("v.{}").format(sql.Identifier(c)) for c in data_columns],
        sql.SQL("v._source_updated_at"),
        sql.SQL("v._row_hash"),
        sql.SQL("%(batch)s"),
        sql.SQL("now()"),
        sql.SQL("NULL"),
    ]
    updates = sql.SQL(", ").join(
        sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c))
        for c in insert_columns
        if c not in ("account_id", "source_id")
    )
    audited_columns = ["source_id", "period_key", "created_at_source", *data_columns, "_source_updated_at"]

    def audited(alias: str) -> sql.Composable:
        return sql.SQL(", ").join(
            sql.SQL("{}, {}.{}").format(sql.Literal(c), sql.Identifier(alias), sql.Identifier(c))
            for c in audited_columns
        )

    # Postgres 18 returns an updated row's old values from the upsert itself; before 18 a subquery reads them
    # by the unique index (every part of one statement sees the snapshot from before it), for updates only.
    returns_old = conn.info.server_version >= RETURNING_OLD_SINCE
    if returns_old:
        old_returned = sql.SQL(", ").join(
            sql.SQL("old.{} AS {}").format(sql.Identifier(c), sql.Identifier(f"_old_{c}")) for c in audited_columns
        )
        old_value = sql.SQL("jsonb_build_object({})").format(
            sql.SQL(", ").join(
                sql.SQL("{}, t.{}").format(sql.Literal(c), sql.Identifier(f"_old_{c}")) for c in audited_columns
            )
        )
    else:
        old_returned = sql.SQL("NULL AS _no_old")
        old_value = sql.SQL(
            "(SELECT jsonb_build_object({}) FROM {} o WHERE o.account_id = %(account)s AND o.source_id = t.source_id)"
        ).format(audited("o"), core)
    template = sql.SQL(
        """
        up AS (
            INSERT INTO {core} AS t ({columns})
            SELECT {values} FROM {source}
            {on_conflict}
            RETURNING t.id, {returned_columns}, {old_returned}, (t.xmax = 0) AS _inserted
        ), audit AS (
            INSERT INTO bridge.audit_log (action, integration, entity_type, entity_id, source_id, account_id,
                                          batch_id, old_value, new_value)
            SELECT CASE WHEN t._inserted THEN 'CREATE' ELSE 'UPDATE' END, %(integration)s, %(entity)s, t.id,
                   t.source_id, %(account)s, %(batch)s,
                   CASE WHEN t._inserted THEN NULL ELSE {old_value} END,
                   jsonb_build_object({audited})
            FROM up t
            RETURNING 1
        )
        """
    )

    on_conflict = sql.SQL(
        """ON CONFLICT (account_id, source_id) DO UPDATE SET {updates}
            WHERE (t._row_hash IS DISTINCT FROM EXCLUDED._row_hash OR t.deleted_at IS NOT NULL)
              AND (t._source_updated_at IS NULL OR EXCLUDED._source_updated_at IS NULL
                   OR EXCLUDED._source_updated_at >= t._source_updated_at)"""
    ).format(updates=updates)

    def upsert_from(source: sql.Composable, *, conflict: bool = True) -> sql.Composable:
        return template.format(
            core=core,
            columns=sql.SQL(", ").join(map(sql.Identifier, insert_columns)),
            values=sql.SQL(", ").join(values),
            source=source,
            on_conflict=on_conflict if conflict else sql.SQL(""),
            audited=audited("t"),
            old_value=old_value,
            old_returned=old_returned,
            returned_columns=sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in audited_columns),
        )

    return upsert_from


def _upsert(
    conn: psycopg.Connection, spec: EntitySpec, ctx: LoadContext, batch_id: uuid.UUID, data_columns: list[str]
) -> tuple[int, int, int]:
    upsert_from = _upsert_parts(conn, spec, data_columns)
    params = {"account": ctx.account_id, "batch": batch_id, "integration": spec.integration, "entity": spec.entity}

    def run(conflict: bool) -> tuple[int, int, int]:
        row = conn.execute(
            sql.SQL(
                """
                WITH {upsert}
                SELECT count(*) FILTER (WHERE _inserted), count(*) FILTER (WHERE NOT _inserted),
                       (SELECT count(*) FROM _valid), (SELECT count(*) FROM audit)
                FROM up
                """
            ).format(upsert=upsert_from(sql.SQL("_valid v"), conflict=conflict)),
            params,
        ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1]), int(row[2])

    return _insert_first(conn, spec, ctx, run)


def _insert_first(conn: psycopg.Connection, spec: EntitySpec, ctx: LoadContext, run: Callable[[bool], _T]) -> _T:
    """`run(conflict)` with conflict=False first when the batch's keys are expected to be new to core. A plain
    INSERT skips what an upsert does for every row (the probe for a conflict, the speculative insertion and its
    confirmation): 4 to 6 µs a row of backend CPU. The first key core already has rolls it back to a savepoint,
    and the table upserts for the rest of the run."""
    name = spec.core.fullname
    if name in ctx.insert_first:
        try:
            with conn.transaction():
                return run(False)
        except psycopg.errors.UniqueViolation:
            ctx.insert_first.discard(name)
    return run(True)


def _release_children(conn: psycopg.Connection, parent: EntitySpec, ctx: LoadContext) -> int:
    """Children waiting for a parent that is now in core are loaded now, in this same transaction."""
    rows = conn.execute(
        sql.SQL(
            """
            SELECT pc.id, pc.child_entity, pc.child_payload FROM bridge.pending_children pc
            WHERE pc.status = 'pending' AND pc.integration = %s AND pc.account_id = %s AND pc.parent_entity = %s
              AND EXISTS (SELECT 1 FROM {parent} p WHERE p.account_id = pc.account_id
                          AND p.source_id = pc.parent_source_id OFFSET 0)
            FOR UPDATE SKIP LOCKED
            """
        ).format(parent=_ident(parent.core)),
        (parent.integration, ctx.account_id, parent.entity),
    ).fetchall()
    if not rows:
        return 0
    by_child: dict[str, list[tuple[Any, dict]]] = {}
    for row_id, child_entity, payload in rows:
        by_child.setdefault(child_entity, []).append((row_id, payload))
    released = 0
    for child_entity, items in by_child.items():
        child_spec = ctx.registry.get(child_entity)
        if child_spec is None:
            continue
        nested_batch = new_id()
        conn.execute(
            """
            INSERT INTO bridge.sync_batches (id, integration, account_id, entity_name, source_system, sync_type,
                                             status, dagster_run_id)
            VALUES (%s, %s, %s, %s, %s, %s, 'completed', %s)
            """,
            (nested_batch, child_spec.integration, ctx.account_id, child_entity, child_spec.integration,
             ctx.sync_type, ctx.dagster_run_id),
        )  # fmt: skip
        counts = _load_rows(conn, child_spec, ctx, nested_batch, [payload for _, payload in items])
        conn.execute(
            "UPDATE bridge.sync_batches SET rows_fetched = %s, rows_inserted = %s, rows_updated = %s, "
            "rows_failed = %s, completed_at = now() WHERE id = %s",
            (counts.fetched, counts.inserted, counts.updated, counts.failed, nested_batch),
        )
        conn.execute(
            "UPDATE bridge.pending_children SET status = 'resolved', resolved_at = now() WHERE id = ANY(%s)",
            ([row_id for row_id, _ in items],),
        )
        released += len(items)
    return released


@dataclass
class CompleteReadOutcome:
    """What closing a complete read of a window did besides soft deletes (see soft_delete_missing)."""

    skipped_reason: str | None = None
    dlq_resolved: int = 0


def soft_delete_missing(
    conn: psycopg.Connection,
    spec: EntitySpec,
    ctx: LoadContext,
    *,
    period_keys: list[str] | None,
    seen_batches: list[uuid.UUID],
    outcome: CompleteReadOutcome | None = None,
    without_id: int | None = None,
) -> int:
    """After a complete read of these periods (None: everything of the account), core rows the source no
    longer has are soft-deleted.

    Only positive evidence deletes: a live core row is soft-deleted when a read of its whole window from
    the start, in which every record's id could be read, did not return it. A record sent to the DLQ with a
    readable id was still seen (it is in staging), so its row stays live. A window in which any record's id
    could not be read soft-deletes nothing: that record could be any row core holds. Such a clean read also
    closes the window's DLQ rows that have no id: every record the source has there is now loaded or in the
    DLQ under its own id. `without_id`: how many records of those batches had no readable id, as loading counted
    them (BatchCounts.without_id); None reads it back from staging, a scan of every staged row of the read.
    """
    outcome = outcome if outcome is not None else CompleteReadOutcome()
    if without_id is None:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {} s WHERE s._batch_id = ANY(%s) AND s.source_id IS NULL").format(
                _ident(spec.staging)
            ),
            (seen_batches,),
        ).fetchone()
        without_id = int(row[0]) if row else 0
    if without_id:
        outcome.skipped_reason = (
            f"{without_id} record(s) without a readable {spec.id_field!r}: no soft delete in this window"
        )
        log.warning("%s: %s", spec.name, outcome.skipped_reason)
        return 0
    outcome.dlq_resolved += _resolve_idless_failures(conn, spec, ctx, period_keys)
    # A row one of the read's own batches wrote was in that batch's staging, so only the others are probed: after a
    # first backfill there are none, and no hash of the staged ids is built (with `without_id` counted
    # while staging, this step fell from 3.8 to 0.6 s after a first backfill of 1M records).
    # Right after a bulk load the planner's statistics say these tables are nearly empty and it picks a
    # nested-loop anti-join: O(N^2) at a million rows. Fresh statistics, and no nested loop for this one
    # statement, make it a hash anti-join whatever the volume.
    _analyze_sample(conn, spec.core, ("account_id", "source_id", "period_key", "deleted_at"))
    _analyze_sample(conn, spec.staging, ("_batch_id", "source_id"))
    with conn.transaction():
        conn.execute("SET LOCAL enable_nestloop = off")
        return conn.execute(
            sql.SQL(
                """
                WITH gone AS (
                    UPDATE {core} t SET deleted_at = now(), _synced_at = now()
                    WHERE t.account_id = %(account)s AND t.deleted_at IS NULL
                      AND (%(all_periods)s OR t.period_key = ANY(%(periods)s))
                      AND (t._batch_id IS NULL OR t._batch_id <> ALL(%(batches)s))
                      AND NOT EXISTS (SELECT 1 FROM {staging} s WHERE s._batch_id = ANY(%(batches)s)
                                      AND s.source_id = t.source_id)
                    RETURNING t.*
                )
                INSERT INTO bridge.audit_log (action, integration, entity_type, entity_id, source_id, account_id,
                                              old_value, new_value)
                SELECT 'DELETE', %(integration)s, %(entity)s, g.id, g.source_id, %(account)s,
                       jsonb_build_object('source_id', g.source_id, 'period_key', g.period_key),
                       jsonb_build_object('deleted_at', g.deleted_at)
                FROM gone g
                """
            ).format(core=_ident(spec.core), staging=_ident(spec.staging)),
            {
                "account": ctx.account_id,
                "periods": period_keys or [],
                "all_periods": period_keys is None,
                "batches": seen_batches,
                "integration": spec.integration,
                "entity": spec.entity,
            },
        ).rowcount


def _resolve_idless_failures(
    conn: psycopg.Connection, spec: EntitySpec, ctx: LoadContext, period_keys: list[str] | None
) -> int:
    """DLQ rows without an id, of a window just read completely with every id readable (see
    soft_delete_missing). Their period is read from the raw record as staging reads it."""
    return conn.execute(
        """
        UPDATE bridge.failed_records f
        SET status = 'resolved', resolved_at = now(), updated_at = now(),
            resolution = 'its period was re-read completely with every id readable'
        WHERE f.resolved_at IS NULL AND f.source_id IS NULL AND f.integration = %(integration)s
          AND f.account_id = %(account)s AND f.entity_name = %(entity)s
          AND (%(all_periods)s OR left(f.raw_data ->> %(created)s, 7) = ANY(%(periods)s))
        """,
        {"integration": spec.integration, "account": ctx.account_id, "entity": spec.entity,
         "all_periods": period_keys is None, "periods": period_keys or [], "created": spec.created_field},
    ).rowcount  # fmt: skip


def soft_delete_ids(conn: psycopg.Connection, spec: EntitySpec, ctx: LoadContext, source_ids: list[str]) -> int:
    """The source told us (a webhook, a 404 on re-fetch) that these records are gone."""
    if not source_ids:
        return 0
    with conn.transaction():
        return conn.execute(
            sql.SQL(
                """
                WITH gone AS (
                    UPDATE {core} t SET deleted_at = now(), _synced_at = now()
                    WHERE t.account_id = %(account)s AND t.source_id = ANY(%(ids)s) AND t.deleted_at IS NULL
                    RETURNING t.*
                )
                INSERT INTO bridge.audit_log (action, integration, entity_type, entity_id, source_id, account_id,
                                              old_value, new_value)
                SELECT 'DELETE', %(integration)s, %(entity)s, g.id, g.source_id, %(account)s,
                       jsonb_build_object('source_id', g.source_id), jsonb_build_object('deleted_at', g.deleted_at)
                FROM gone g
                """
            ).format(core=_ident(spec.core)),
            {
                "account": ctx.account_id,
                "ids": source_ids,
                "integration": spec.integration,
                "entity": spec.entity,
            },
        ).rowcount


def retry_failed(
    conn: psycopg.Connection,
    spec: EntitySpec,
    ctx: LoadContext,
    *,
    only_due: bool = True,
    ids: list[uuid.UUID] | None = None,
    backoff: Callable[[int], int] = lambda attempt: min(60 * 2**attempt, 86_400),
) -> tuple[int, int]:
    """Run DLQ records through the load path again (mappings may have been fixed). Returns (resolved, failed)."""
    where = "resolved_at IS NULL AND status = 'pending' AND integration = %s AND entity_name = %s AND account_id = %s"
    params: list[Any] = [spec.integration, spec.entity, ctx.account_id]
    if only_due:
        where += " AND next_retry_at <= now()"
    if ids:
        where += " AND id = ANY(%s)"
        params.append(ids)
    rows = conn.execute(
        f"SELECT id, raw_data, retry_count, max_retries FROM bridge.failed_records WHERE {where} ORDER BY created_at",
        params,
    ).fetchall()
    resolved = failed = 0
    for row_id, raw, retry_count, _max_retries in rows:
        if raw is None:
            continue
        outcome: BatchCounts | None = None
        try:
            with conn.transaction():
                _, outcome = load_batch(conn, spec, ctx, [raw])
                if outcome.failed:
                    raise _StillFailing
        except _StillFailing:
            pass
        with conn.transaction():
            if outcome is not None and not outcome.failed:
                conn.execute(
                    "UPDATE bridge.failed_records SET status = 'resolved', resolved_at = now(), "
                    "resolution = 'reprocessed', updated_at = now() WHERE id = %s",
                    (row_id,),
                )
                resolved += 1
            else:
                attempt = retry_count + 1
                conn.execute(
                    "UPDATE bridge.failed_records SET retry_count = %s, updated_at = now(), "
                    "next_retry_at = now() + make_interval(secs => %s), "
                    "status = CASE WHEN %s >= max_retries THEN 'dead' ELSE 'pending' END WHERE id = %s",
                    (attempt, backoff(attempt), attempt, row_id),
                )
                failed += 1
    return resolved, failed


class _StillFailing(Exception):
    """Rolls back a DLQ retry whose record still does not pass validation."""
