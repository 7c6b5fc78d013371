"""An integration's syncs as plain functions: backfill of creation months (or whole lists), delta since the
cursor, reconciliation counts, DLQ refetch. The assets, schedules, sensors and the CLI built from a declaration
all call these; nothing here names a source."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg
import sqlalchemy as sa
from psycopg import sql

from sync_pipelines.lib import accounts as account_store
from sync_pipelines.lib import db, mappings, state
from sync_pipelines.lib.accounts import Account
from sync_pipelines.lib.http import ApiClient, AuthError, CallLog, CallStats
from sync_pipelines.lib.integration.declaration import Integration, SourceClient
from sync_pipelines.lib.integration.paging import DONE
from sync_pipelines.lib.load import (
    BatchCounts,
    CompleteReadOutcome,
    EntitySpec,
    LoadContext,
    mark_sync,
    read_cursor,
    read_records_synced,
    record_sync_error,
    retry_failed,
    soft_delete_missing,
)
from sync_pipelines.lib.sync import SyncResult, run_pages

log = logging.getLogger(__name__)


@dataclass
class SyncReport:
    entity: str
    account: str
    counts: BatchCounts = field(default_factory=BatchCounts)
    stats: CallStats = field(default_factory=CallStats)
    batch_ids: list[str] = field(default_factory=list)
    periods: list[str] = field(default_factory=list)
    soft_deleted: int = 0
    # Windows read completely in which soft deletes were withheld, and why (see load.soft_delete_missing).
    soft_delete_skipped: list[str] = field(default_factory=list)
    dlq_resolved: int = 0
    duration_seconds: float = 0.0

    def absorb(self, result: SyncResult) -> None:
        self.counts.add(result.counts)
        self.batch_ids.extend(str(b) for b in result.batch_ids)
        self.duration_seconds += result.duration_seconds

    def metadata(self) -> dict[str, object]:
        return {
            **self.counts.as_metadata(),
            **self.stats.as_metadata(),
            "soft_deleted": self.soft_deleted,
            "soft_delete_skipped": "; ".join(self.soft_delete_skipped) or "none",
            "dlq_resolved": self.dlq_resolved + self.counts.dlq_resolved,
            "duration_seconds": round(self.duration_seconds, 2),
            "batch_ids": ", ".join(self.batch_ids[-5:]) + (" …" if len(self.batch_ids) > 5 else ""),
            "batches": len(self.batch_ids),
        }


ClientFactory = Callable[[Account], ApiClient]


def contiguous_ranges(periods: list[str]) -> list[tuple[str, str]]:
    """['2024-01','2024-02','2024-05'] -> [('2024-01','2024-02'), ('2024-05','2024-05')]."""
    ranges: list[tuple[str, str]] = []
    for period in sorted(set(periods)):
        if ranges and _next_month(ranges[-1][1]) == period:
            ranges[-1] = (ranges[-1][0], period)
        else:
            ranges.append((period, period))
    return ranges


def _next_month(period: str) -> str:
    start = datetime.strptime(period, "%Y-%m")
    return (start + timedelta(days=32)).strftime("%Y-%m")


def _months(first: str, last: str) -> list[str]:
    out = [first]
    while out[-1] != last:
        out.append(_next_month(out[-1]))
    return out


def month_window(period: str) -> tuple[datetime, datetime]:
    """(created after, created before) selecting exactly the month `YYYY-MM`, both bounds strict; a client whose
    source takes inclusive bounds adjusts them."""
    start = datetime.strptime(period, "%Y-%m").replace(tzinfo=UTC)
    end = (start + timedelta(days=32)).replace(day=1)
    return start - timedelta(seconds=1), end


def _ensure_mappings(engine: sa.Engine, integration: Integration, entity: str) -> None:
    with engine.begin() as conn:
        mappings.seed_defaults(conn, integration.name, entity, integration.specs[entity].mappings)


def _context(
    integration: Integration, account: Account, sync_type: str, run_id: str | None, period: str | None
) -> LoadContext:
    return LoadContext(integration.name, account.id, sync_type, run_id, period, integration.specs)


def _core_has_rows(
    conn: psycopg.Connection, spec: EntitySpec, account: Account, window: tuple[str, str] | None
) -> bool:
    """Whether core holds any row (live or soft-deleted) of this account in these creation months (None: at all)."""
    months = sql.SQL(" AND period_key BETWEEN %s AND %s") if window else sql.SQL("")
    row = conn.execute(
        sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE account_id = %s{})").format(
            sql.Identifier(spec.core.schema or "public", spec.core.name), months
        ),
        (account.id, *(window or ())),
    ).fetchone()
    return bool(row and row[0])


def call_log_for(engine: sa.Engine, account: Account) -> CallLog:
    return CallLog(engine.url, account.integration, account.id)


def _source(client: ApiClient) -> SourceClient:
    return client  # type: ignore[return-value]  # every integration's client implements the protocol


def refetcher(integration: Integration, client: ApiClient, entity: str) -> Callable[[list[str]], list[dict]]:
    """Records of `entity` by id, for `dlq retry --refetch`."""
    source = integration.entity(entity).source
    return lambda ids: _source(client).fetch_ids(source, ids)


def backfill(
    engine: sa.Engine,
    integration: Integration,
    client_for: ClientFactory,
    account: Account,
    entity: str,
    periods: list[str] | None,
    *,
    dagster_run_id: str | None = None,
    on_batch: Callable[[SyncResult], None] | None = None,
) -> SyncReport:
    """Read whole creation months (or the whole list, for reference entities) into core; resumable.

    A month read from its start also soft-deletes the core rows the source no longer has. A month resumed
    after a crash only upserts: its deletions are found by the next full read.
    """
    declared = integration.entity(entity)
    spec = declared.spec
    report = SyncReport(entity, account.name, periods=list(periods or []))
    _ensure_mappings(engine, integration, entity)
    client = client_for(account)
    source = _source(client)
    job_id = state.start_job(engine, job_type="backfill", integration=integration.name, account_id=account.id,
                             entity_type=entity, period_key=",".join(periods or []) or None,
                             dagster_run_id=dagster_run_id)  # fmt: skip
    # Contiguous months are one stream (one creation window): a 5-year backfill is a handful of
    # transactions per 2,000 records, not one per month.
    windows: list[tuple[str, str] | None] = (
        [None] if not declared.by_period or not periods else contiguous_ranges(periods)
    )
    current_key: str | None = None  # the window being read, whose cursor row records a failure
    try:
        # Two connections: one batch is staged while the one before it is upserted (see run_pages).
        with (
            client.logging_calls(call_log_for(engine, account), entity),
            db.raw_connection(engine.url, autocommit=True) as conn,
            db.raw_connection(engine.url, autocommit=True) as second,
        ):
            for window in windows:
                label = f"{window[0]}..{window[1]}" if window else "all"
                cursor_key = current_key = f"{entity}@backfill:{label}"
                resume = read_cursor(conn, integration.name, account.id, cursor_key)
                mark_sync(conn, integration.name, account.id, cursor_key, finished=False)
                fresh = resume in (None, DONE)
                after, before = (month_window(window[0])[0], month_window(window[1])[1]) if window else (None, None)
                period = window[0] if window and window[0] == window[1] else None
                pages = source.window_pages(declared.source, after, before, None if fresh else resume)
                ctx = _context(integration, account, "realtime", dagster_run_id, period)
                if fresh and not _core_has_rows(conn, spec, account, window):
                    ctx.insert_first.add(spec.core.fullname)  # a first read: no key of it can be in core yet
                done_before = report.counts.fetched

                def batch_done(partial: SyncResult, done_before: int = done_before) -> None:
                    stored = report.counts.inserted + partial.counts.inserted + partial.counts.updated
                    state.progress(engine, job_id, processed=done_before + partial.counts.fetched, stored=stored)
                    if on_batch is not None:
                        on_batch(partial)

                # A resumed pass counts on from what its cursor already covered.
                records_before = 0 if fresh else read_records_synced(conn, integration.name, account.id, cursor_key)
                result = run_pages(conn, spec, ctx, pages, cursor_key=cursor_key, client=client, on_batch=batch_done,
                                   second=second, records_before=records_before)  # fmt: skip
                report.absorb(result)
                if fresh:
                    closed = CompleteReadOutcome()
                    report.soft_deleted += soft_delete_missing(
                        conn, spec, ctx, period_keys=_months(*window) if window else None,
                        seen_batches=result.batch_ids, outcome=closed, without_id=result.counts.without_id,
                    )  # fmt: skip
                    report.dlq_resolved += closed.dlq_resolved
                    if closed.skipped_reason:
                        report.soft_delete_skipped.append(f"{label}: {closed.skipped_reason}")
                state.progress(engine, job_id, processed=report.counts.fetched,
                               stored=report.counts.inserted + report.counts.updated)  # fmt: skip
                mark_sync(conn, integration.name, account.id, cursor_key, finished=True)
            ctx = _context(integration, account, "realtime", dagster_run_id, None)
            report.dlq_resolved += retry_failed(conn, spec, ctx)[0]
    except AuthError as exc:
        account_store.mark_account(engine, account.id, error=f"{exc.status}: {exc.message}")
        state.finish_job(engine, job_id, error=exc)
        if current_key is not None:
            _record_error(engine, integration, account, current_key, exc)
        raise
    except Exception as exc:
        state.finish_job(engine, job_id, error=exc)
        if current_key is not None:
            _record_error(engine, integration, account, current_key, exc)
        raise
    except BaseException as exc:
        state.finish_job(engine, job_id, error=exc)
        raise
    finally:
        report.stats = client.stats
    account_store.mark_account(engine, account.id, error=None)
    stored = report.counts.inserted + report.counts.updated + report.counts.unchanged
    state.finish_job(engine, job_id, source_count=report.counts.fetched, warehouse_count=stored)
    return report


def delta(
    engine: sa.Engine,
    integration: Integration,
    client_for: ClientFactory,
    account: Account,
    entity: str,
    *,
    dagster_run_id: str | None = None,
    overlap: timedelta = timedelta(seconds=5),
) -> SyncReport:
    """Everything updated since this account's cursor; idempotent, so overlaps and reruns change nothing."""
    declared = integration.entity(entity)
    spec = declared.spec
    report = SyncReport(entity, account.name)
    _ensure_mappings(engine, integration, entity)
    client = client_for(account)
    source = _source(client)
    cursor_key = f"{entity}@delta"
    ctx = _context(integration, account, "realtime", dagster_run_id, None)
    try:
        with (
            client.logging_calls(call_log_for(engine, account), entity),
            db.raw_connection(engine.url, autocommit=True) as conn,
        ):
            cursor = read_cursor(conn, integration.name, account.id, cursor_key)
            mark_sync(conn, integration.name, account.id, cursor_key, finished=False)
            since = parse_time(cursor) if cursor else _newest_in_core(conn, spec, account)
            departures = (
                integration.departures if integration.departures and entity in integration.departures.entities else None
            )
            before = departures.before(conn, entity, account.id) if departures else []
            pages = source.updated_pages(declared.source, since, overlap)
            synced_before = read_records_synced(conn, integration.name, account.id, cursor_key)
            result = run_pages(conn, spec, ctx, pages, cursor_key=cursor_key, client=client,
                               records_before=synced_before)  # fmt: skip
            report.absorb(result)
            if departures is not None:
                closed = departures.close(conn, client, ctx, entity, before, result.batch_ids)
                report.counts.add(closed)
                report.soft_deleted += closed.deleted
            report.dlq_resolved += retry_failed(conn, spec, ctx)[0]
            mark_sync(conn, integration.name, account.id, cursor_key, finished=True)
    except AuthError as exc:
        account_store.mark_account(engine, account.id, error=f"{exc.status}: {exc.message}")
        _record_error(engine, integration, account, cursor_key, exc)
        raise
    except Exception as exc:
        # Not the account's fault (a 5xx storm, a timeout): it stays active, and `status` shows the reason.
        _record_error(engine, integration, account, cursor_key, exc)
        raise
    finally:
        report.stats = client.stats
    account_store.mark_account(engine, account.id, error=None)
    return report


def _record_error(
    engine: sa.Engine, integration: Integration, account: Account, cursor_key: str, exc: Exception
) -> None:
    with db.raw_connection(engine.url, autocommit=True) as conn:
        record_sync_error(conn, integration.name, account.id, cursor_key, f"{type(exc).__name__}: {exc}")


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def fmt_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _newest_in_core(conn: object, spec: EntitySpec, account: Account) -> datetime:
    """A first delta starts from what a backfill already brought in, not from the beginning of time."""
    core = spec.core
    row = conn.execute(  # type: ignore[attr-defined]
        f"SELECT max(_source_updated_at) FROM {core.schema}.{core.name} WHERE account_id = %s", (account.id,)
    ).fetchone()
    return row[0] if row and row[0] else datetime(1970, 1, 1, tzinfo=UTC)


def warehouse_count(engine: sa.Engine, spec: EntitySpec, account: Account, period: str | None) -> int:
    core = spec.core
    query = sa.select(sa.func.count()).where(core.c.account_id == account.id, core.c.deleted_at.is_(None))
    if period:
        query = query.where(core.c.period_key == period)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def reconcile(
    engine: sa.Engine,
    integration: Integration,
    client_for: ClientFactory,
    account: Account,
    entity: str,
    periods: list[str] | None,
) -> list[dict[str, object]]:
    """Source total vs warehouse count per period (the seeds' source-vs-warehouse counts). A source that reports no
    total for a list gives None, which the check reports as unchecked rather than as a mismatch."""
    declared = integration.entity(entity)
    client = client_for(account)
    rows = []
    with client.logging_calls(call_log_for(engine, account), entity):
        for period in [None] if not declared.by_period or not periods else periods:
            after, before = month_window(period) if period else (None, None)
            source = _source(client).total(declared.source, after, before)
            warehouse = warehouse_count(engine, declared.spec, account, period)
            rows.append({"account": account.name, "period": period or "all", "source": source,
                         "warehouse": warehouse})  # fmt: skip
    return rows


def orphan_children(engine: sa.Engine, integration: str, max_age: timedelta) -> int:
    """Children still waiting for their parent after `max_age`."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM bridge.pending_children WHERE integration = :i AND status = 'pending' "
                    "AND created_at < now() - make_interval(secs => :age)"
                ),
                {"i": integration, "age": max_age.total_seconds()},
            ).scalar_one()
        )


__all__ = ["backfill", "delta", "fmt_time", "month_window", "parse_time", "reconcile"]
