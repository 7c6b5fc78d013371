"""Follow Up Boss syncs as plain functions: backfill of creation months, delta since the cursor,
reconciliation counts. Dagster assets, schedules, sensors and the CLI all call these."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from sync_pipelines.defs.fub.client import DONE, FubClient, fmt_time, parse_time
from sync_pipelines.defs.fub.entities import COLLECTIONS, INTEGRATION, REFERENCE_ENTITIES, SPECS
from sync_pipelines.lib import accounts as account_store
from sync_pipelines.lib import db, mappings, state
from sync_pipelines.lib.accounts import Account
from sync_pipelines.lib.http import AuthError, CallLog, CallStats
from sync_pipelines.lib.load import (
    BatchCounts,
    CompleteReadOutcome,
    LoadContext,
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


ClientFactory = Callable[[Account], FubClient]


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
    """(createdAfter, createdBefore) selecting exactly the month `YYYY-MM` (FUB's bounds are strict)."""
    start = datetime.strptime(period, "%Y-%m").replace(tzinfo=UTC)
    end = (start + timedelta(days=32)).replace(day=1)
    return start - timedelta(seconds=1), end


def _ensure_mappings(engine: sa.Engine, entity: str) -> None:
    with engine.begin() as conn:
        mappings.seed_defaults(conn, INTEGRATION, entity, SPECS[entity].mappings)


def _context(account: Account, sync_type: str, run_id: str | None, period: str | None) -> LoadContext:
    return LoadContext(INTEGRATION, account.id, sync_type, run_id, period, SPECS)


def call_log_for(engine: sa.Engine, account: Account) -> CallLog:
    return CallLog(engine.url, INTEGRATION, account.id)


def refetcher(client: FubClient, entity: str) -> Callable[[list[str]], list[dict]]:
    """Records of `entity` by id, for `dlq retry --refetch`."""
    return lambda ids: client.fetch_ids(COLLECTIONS[entity], ids)


def backfill(
    engine: sa.Engine,
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
    spec = SPECS[entity]
    report = SyncReport(entity, account.name, periods=list(periods or []))
    _ensure_mappings(engine, entity)
    client = client_for(account)
    job_id = state.start_job(engine, job_type="backfill", integration=INTEGRATION, account_id=account.id,
                             entity_type=entity, period_key=",".join(periods or []) or None,
                             dagster_run_id=dagster_run_id)  # fmt: skip
    # Contiguous months are one stream (one creation window): a 5-year backfill is a handful of
    # transactions per 2,000 records, not one per month.
    windows: list[tuple[str, str] | None] = (
        [None] if entity in REFERENCE_ENTITIES or not periods else contiguous_ranges(periods)
    )
    try:
        # Two connections: one batch is staged while the one before it is upserted (see run_pages).
        with (
            client.logging_calls(call_log_for(engine, account), entity),
            db.raw_connection(engine.url, autocommit=True) as conn,
            db.raw_connection(engine.url, autocommit=True) as second,
        ):
            for window in windows:
                label = f"{window[0]}..{window[1]}" if window else "all"
                cursor_key = f"{entity}@backfill:{label}"
                resume = read_cursor(conn, INTEGRATION, account.id, cursor_key)
                fresh = resume in (None, DONE)
                after, before = (month_window(window[0])[0], month_window(window[1])[1]) if window else (None, None)
                period = window[0] if window and window[0] == window[1] else None
                pages = client.window_pages(COLLECTIONS[entity], after, before, None if fresh else resume)
                ctx = _context(account, "realtime", dagster_run_id, period)
                done_before = report.counts.fetched

                def batch_done(partial: SyncResult, done_before: int = done_before) -> None:
                    stored = report.counts.inserted + partial.counts.inserted + partial.counts.updated
                    state.progress(engine, job_id, processed=done_before + partial.counts.fetched, stored=stored)
                    if on_batch is not None:
                        on_batch(partial)

                # A resumed pass counts on from what its cursor already covered.
                records_before = 0 if fresh else read_records_synced(conn, INTEGRATION, account.id, cursor_key)
                result = run_pages(conn, spec, ctx, pages, cursor_key=cursor_key, client=client, on_batch=batch_done,
                                   second=second, records_before=records_before)  # fmt: skip
                report.absorb(result)
                if fresh:
                    closed = CompleteReadOutcome()
                    report.soft_deleted += soft_delete_missing(
                        conn, spec, ctx, period_keys=_months(*window) if window else None,
                        seen_batches=result.batch_ids, outcome=closed,
                    )  # fmt: skip
                    report.dlq_resolved += closed.dlq_resolved
                    if closed.skipped_reason:
                        report.soft_delete_skipped.append(f"{label}: {closed.skipped_reason}")
                state.progress(engine, job_id, processed=report.counts.fetched,
                               stored=report.counts.inserted + report.counts.updated)  # fmt: skip
            report.dlq_resolved += retry_failed(conn, spec, _context(account, "realtime", dagster_run_id, None))[0]
    except AuthError as exc:
        account_store.mark_account(engine, account.id, error=f"{exc.status}: {exc.message}")
        state.finish_job(engine, job_id, error=exc)
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
    client_for: ClientFactory,
    account: Account,
    entity: str,
    *,
    dagster_run_id: str | None = None,
    overlap: timedelta = timedelta(seconds=5),
) -> SyncReport:
    """Everything updated since this account's cursor; idempotent, so overlaps and reruns change nothing."""
    spec = SPECS[entity]
    report = SyncReport(entity, account.name)
    _ensure_mappings(engine, entity)
    client = client_for(account)
    cursor_key = f"{entity}@delta"
    try:
        with (
            client.logging_calls(call_log_for(engine, account), entity),
            db.raw_connection(engine.url, autocommit=True) as conn,
        ):
            cursor = read_cursor(conn, INTEGRATION, account.id, cursor_key)
            since = parse_time(cursor) if cursor else _newest_in_core(conn, account, entity)
            pages = client.updated_pages(COLLECTIONS[entity], since, overlap)
            synced_before = read_records_synced(conn, INTEGRATION, account.id, cursor_key)
            result = run_pages(conn, spec, _context(account, "realtime", dagster_run_id, None), pages,
                               cursor_key=cursor_key, client=client, records_before=synced_before)  # fmt: skip
            report.absorb(result)
            report.dlq_resolved += retry_failed(conn, spec, _context(account, "realtime", dagster_run_id, None))[0]
    except AuthError as exc:
        account_store.mark_account(engine, account.id, error=f"{exc.status}: {exc.message}")
        _record_error(engine, account, cursor_key, exc)
        raise
    except Exception as exc:
        # Not the account's fault (a 5xx storm, a timeout): it stays active, and `status` shows the reason.
        _record_error(engine, account, cursor_key, exc)
        raise
    finally:
        report.stats = client.stats
    account_store.mark_account(engine, account.id, error=None)
    return report


def _record_error(engine: sa.Engine, account: Account, cursor_key: str, exc: Exception) -> None:
    with db.raw_connection(engine.url, autocommit=True) as conn:
        record_sync_error(conn, INTEGRATION, account.id, cursor_key, f"{type(exc).__name__}: {exc}")


def _newest_in_core(conn: object, account: Account, entity: str) -> datetime:
    """A first delta starts from what a backfill already brought in, not from the beginning of time."""
    core = SPECS[entity].core
    row = conn.execute(  # type: ignore[attr-defined]
        f"SELECT max(_source_updated_at) FROM {core.schema}.{core.name} WHERE account_id = %s", (account.id,)
    ).fetchone()
    return row[0] if row and row[0] else datetime(1970, 1, 1, tzinfo=UTC)


def warehouse_count(engine: sa.Engine, account: Account, entity: str, period: str | None) -> int:
    core = SPECS[entity].core
    query = sa.select(sa.func.count()).where(core.c.account_id == account.id, core.c.deleted_at.is_(None))
    if period:
        query = query.where(core.c.period_key == period)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def reconcile(
    engine: sa.Engine, client_for: ClientFactory, account: Account, entity: str, periods: list[str] | None
) -> list[dict[str, object]]:
    """Source total vs warehouse count per period (the seeds' FUB-vs-AD counts)."""
    client = client_for(account)
    rows = []
    with client.logging_calls(call_log_for(engine, account), entity):
        for period in [None] if entity in REFERENCE_ENTITIES or not periods else periods:
            after, before = month_window(period) if period else (None, None)
            source = client.total(COLLECTIONS[entity], after, before)
            warehouse = warehouse_count(engine, account, entity, period)
            rows.append({"account": account.name, "period": period or "all", "source": source,
                         "warehouse": warehouse})  # fmt: skip
    return rows


def orphan_children(engine: sa.Engine, max_age: timedelta) -> int:
    """Children still waiting for their parent after `max_age`."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM bridge.pending_children WHERE integration = :i AND status = 'pending' "
                    "AND created_at < now() - make_interval(secs => :age)"
                ),
                {"i": INTEGRATION, "age": max_age.total_seconds()},
            ).scalar_one()
        )


__all__ = ["backfill", "delta", "fmt_time", "month_window", "reconcile"]
