"""The ERP background sync over night windows, against a generated sandbox ERP and a real warehouse.

Time is a SimulatedClock: a seven-night pass runs in seconds and nothing waits for a window.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time as walltime
from datetime import UTC, date, datetime, time, timedelta

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from sync_pipelines.defs.erp import background
from sync_pipelines.defs.erp.background import SimulatedClock
from sync_pipelines.defs.erp.entities import LOAD_ORDER, SPECS
from sync_pipelines.lib import db
from sync_pipelines.sandbox import erp
from sync_pipelines_tests.test_defs.erp.conftest import SEED, core_state, scalar, source_state

TZ = "Europe/Stockholm"
# Monday 23 November 2026, noon UTC (13:00 in Stockholm): before tonight's window.
NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _night_start(n: int) -> datetime:
    """19:00 Stockholm on the n-th night from 23 November (CET, UTC+1 then)."""
    return datetime(2026, 11, 23, 18, 0, tzinfo=UTC) + timedelta(days=n)


def _progress(engine: sa.Engine, clock: SimulatedClock) -> dict[str, background.Progress]:
    return {p.entity: p for p in background.status(engine, clock=clock)}


def test_window_arithmetic_follows_the_time_zone_and_runs_past_midnight() -> None:
    start, end = background.parse_window("19:00-07:00")
    assert (start, end) == (time(19), time(7))
    window = background.window_at(start, end, TZ, datetime(2026, 11, 24, 5, 59, tzinfo=UTC))
    assert window is not None and window.night == date(2026, 11, 23)
    assert window.start == _night_start(0) and window.end == datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
    assert background.window_at(start, end, TZ, datetime(2026, 11, 24, 6, 0, tzinfo=UTC)) is None
    assert background.next_window_start(start, end, TZ, NOON) == _night_start(0)
    assert background.next_window_start(start, end, TZ, _night_start(0)) == _night_start(1)
    # Summer time: 19:00 in Stockholm is 17:00 UTC.
    assert background.next_window_start(start, end, TZ, datetime(2026, 7, 1, tzinfo=UTC)) == datetime(
        2026, 7, 1, 17, 0, tzinfo=UTC
    )
    crons = background.window_crons(start, end)
    assert crons == ["0,15,30,45 0,1,2,3,4,5,6,19,20,21,22,23 * * *"]
    assert background.window_crons(time(19, 10), time(20, 0)) == ["10,25,40,55 19 * * *"]
    with pytest.raises(ValueError, match="HH:MM-HH:MM"):
        background.parse_window("7pm")


@pytest.mark.parametrize(("done", "shown"), [(539_144, "99.8%"), (539_990, "99.9%"), (540_000, "99.9%")])
def test_progress_never_shows_100_percent_before_the_pass_has_completed(done: int, shown: str) -> None:
    row = {
        "entity_name": "customer_order", "status": "active", "total_rows": 540_000, "rows_done": done,
        "rows_per_day": 100_000, "rows_done_today": 0, "completed_at": None, "sync_window_start": time(19),
        "sync_window_end": time(7), "timezone": "UTC", "night_started_on": None, "next_run_at": None,
        "last_run_at": None, "error_message": None, "current_offset": None,
    }  # fmt: skip
    progress = background.progress_of(row, datetime(2026, 11, 23, 12, tzinfo=UTC))
    assert f"{progress.percent:.1f}%" == shown
    assert progress.metadata()["percent"] < 100
    completed = background.progress_of({**row, "status": "completed", "completed_at": datetime.now(UTC)},
                                       datetime(2026, 11, 23, 12, tzinfo=UTC))  # fmt: skip
    assert completed.percent == 100.0


def test_seven_night_pass_ends_with_core_equal_to_source(database_url: URL, erp_url: URL) -> None:
    erp.generate(erp_url, seed=SEED, scale=3000)
    engine = db.get_engine(database_url)
    clock = SimulatedClock(NOON)
    created = background.create(engine, erp_url, timezone=TZ, days=7, chunk_size=100, clock=clock)
    counts = erp.row_counts(erp_url)
    assert {p.entity: (p.total_rows, p.rows_per_day) for p in created} == {
        t: (n, -(-n // 7)) for t, n in counts.items()
    }
    assert all(p.nights_left == 7 and p.projected_finish_night == date(2026, 11, 29) for p in created)

    # Daytime: nothing moves.
    assert {r.reason for r in background.tick(engine, erp_url, clock=clock)} == {"outside the window"}
    assert scalar(database_url, "SELECT count(*) FROM bridge.sync_batches") == 0

    for night in range(7):
        clock.set(_night_start(night))
        results = background.tick(engine, erp_url, clock=clock)
        assert all(r.outcome == "moved" for r in results), [(r.entity, r.reason) for r in results]
        # A quarter of an hour later the quota is met: the tick is a no-op until tomorrow's window.
        clock.advance(timedelta(minutes=15))
        later = background.tick(engine, erp_url, clock=clock)
        if night < 6:
            assert all(r.outcome == "skipped" and r.reason.startswith("not due") for r in later)
        else:  # completed: every tick runs the delta path, which finds nothing new
            assert all(r.rows_moved == r.delta_rows == 0 and "caught up" in r.reason for r in later)
        progress = _progress(engine, clock)
        for table, total in counts.items():
            p = progress[table]
            if night < 6:
                assert p.status == "active"
                assert p.rows_done == min(total, p.rows_per_day * (night + 1))
                assert p.nights_left == 6 - night
                assert p.next_run_at == _night_start(night + 1)
            else:
                assert p.status == "completed" and p.percent == 100.0 and p.nights_left == 0
                assert p.rows_done == total

    assert core_state(database_url) == source_state(erp_url)
    # Every chunk was a background batch that committed, with its keyset range.
    with db.get_engine(database_url).connect() as conn:
        batches = conn.execute(
            sa.text(
                "SELECT sync_type, status, count(*), sum(rows_fetched) FROM bridge.sync_batches "
                "WHERE cursor_after IS NOT NULL GROUP BY 1, 2"
            )
        ).all()
        states = dict(
            conn.execute(sa.text("SELECT entity_name, last_sync_rowversion FROM bridge.erp_sync_state")).all()
        )
    assert [(b[0], b[1]) for b in batches] == [("background", "completed")]
    assert batches[0][3] == sum(counts.values())
    assert states == {t: max_rv for t, max_rv in _max_rowversions(erp_url).items()}


def _max_rowversions(url: URL) -> dict[str, int]:
    with psycopg.connect(db.libpq_uri(url)) as conn:
        return {t: conn.execute(f"SELECT max(rowversion) FROM ifsapp.{t}").fetchone()[0] for t in erp.TABLES}


def test_a_pass_over_rows_core_already_has_upserts_them_with_no_duplicate_and_no_loss(
    database_url: URL, erp_url: URL
) -> None:
    # A pass tries a plain INSERT first (core has none of its keys unless something got there first); here its
    # checkpoint is rewound, so its chunks meet every key again and must fall back to the upsert.
    erp.generate(erp_url, seed=SEED, scale=1500)
    engine = db.get_engine(database_url)
    clock = SimulatedClock(NOON)
    background.create(engine, erp_url, timezone=TZ, days=2, chunk_size=150, clock=clock)
    clock.set(_night_start(0))
    assert all(r.outcome == "moved" for r in background.tick(engine, erp_url, clock=clock))
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE bridge.background_sync_schedule SET rows_done = 0, rows_done_today = 0, "
                "current_offset = jsonb_set(current_offset::jsonb, '{after}', '0')::text"
            )
        )
    for night in (1, 2, 3):
        clock.set(_night_start(night))
        background.tick(engine, erp_url, clock=clock)
    assert {p.entity: p.status for p in _progress(engine, clock).values()} == dict.fromkeys(LOAD_ORDER, "completed")
    assert core_state(database_url) == source_state(erp_url)
    with engine.connect() as conn:
        audit = dict(
            conn.execute(
                sa.text("SELECT action, count(*) FROM bridge.audit_log WHERE integration = 'erp' GROUP BY action")
            ).all()
        )
    # One CREATE per row and no UPDATE: the rows read twice were unchanged, and the change guard said so.
    assert audit == {"CREATE": sum(erp.row_counts(erp_url).values())}


def test_window_closing_mid_pass_stops_cleanly_and_the_next_night_resumes_there(
    database_url: URL, erp_url: URL
) -> None:
    erp.generate(erp_url, seed=SEED, scale=2000)
    engine = db.get_engine(database_url)
    entity = "inventory_transaction_hist"
    clock = SimulatedClock(NOON)
    (plan,) = background.create(engine, erp_url, [entity], timezone=TZ, days=2, chunk_size=40, clock=clock)
    assert plan.rows_per_day == 300

    clock.set(_night_start(0))
    # Every chunk takes (simulated) five hours from its commit to the next's, and two lanes run chunks side by
    # side: chunks 1 and 2 start at 19:00, 3 at 00:00 and 4 at 05:00; none starts after 07:00.
    (result,) = background.tick(engine, erp_url, [entity], clock=clock,
                                on_chunk=lambda _e, _n: clock.advance(timedelta(hours=5)))  # fmt: skip
    assert (result.outcome, result.reason, result.rows_moved) == ("moved", "the window closed", 160)
    core = SPECS[entity].core
    in_core = scalar(database_url, f"SELECT count(*) FROM core.{core.name}")
    top = scalar(database_url, f"SELECT max(rowversion) FROM core.{core.name}")
    assert in_core == 160
    assert result.progress is not None
    assert result.progress.rows_done == 160 and result.progress.next_run_at == _night_start(1)
    assert background.Checkpoint.load(result.progress.checkpoint).after == top

    # Still inside the window but after the close bookkeeping: not due until tomorrow night.
    clock.set(_night_start(1) - timedelta(minutes=1))
    assert background.tick(engine, erp_url, [entity], clock=clock)[0].outcome == "skipped"

    clock.set(_night_start(1))
    (resumed,) = background.tick(engine, erp_url, [entity], clock=clock)
    assert resumed.reason == "tonight's quota is met" and resumed.rows_moved == 300
    first_batch_cursor = scalar(
        database_url,
        "SELECT cursor_before FROM bridge.sync_batches WHERE id = CAST(:id AS uuid)",
        {"id": resumed.batch_ids[0]},
    )
    assert first_batch_cursor == str(top)
    clock.set(_night_start(2))
    background.tick(engine, erp_url, [entity], clock=clock)
    clock.set(_night_start(3))
    (last,) = background.tick(engine, erp_url, [entity], clock=clock)
    assert last.progress is not None and last.progress.status == "completed"
    assert core_state(database_url)[entity] == source_state(erp_url)[entity]
    duplicates = scalar(
        database_url, f"SELECT count(*) - count(DISTINCT rowversion) FROM core.{core.name}"
    )  # one row per source row
    assert duplicates == 0


def test_rows_changed_during_the_pass_are_current_after_the_delta_catch_up(database_url: URL, erp_url: URL) -> None:
    erp.generate(erp_url, seed=SEED, scale=3000)
    engine = db.get_engine(database_url)
    clock = SimulatedClock(NOON)
    background.create(engine, erp_url, timezone=TZ, days=4, chunk_size=150, clock=clock)
    for night in range(2):
        clock.set(_night_start(night))
        background.tick(engine, erp_url, clock=clock)
    # Business hours: the ERP changes, some rows the pass has already moved, some it has not reached yet.
    step = erp.mutate(erp_url, seed=SEED, step=1, updates=120, inserts=80)
    assert sum(step.updated.values()) == 120
    for night in range(2, 4):
        clock.set(_night_start(night))
        results = background.tick(engine, erp_url, clock=clock)
    assert {r.entity: r.progress.status for r in results if r.progress} == dict.fromkeys(LOAD_ORDER, "completed")
    # The last night's tick switched each table to the delta path, which took every change since the start.
    assert sum(r.delta_rows for r in results) >= 120 + 80
    assert core_state(database_url) == source_state(erp_url)

    # Later nights: lines that arrive before their order wait in pending_children, then land with it.
    held = erp.mutate(erp_url, seed=SEED, step=2, updates=30, inserts=40, child_before_parent=True)
    assert held.withheld_orders
    clock.set(_night_start(4))
    background.tick(engine, erp_url, ["customer_order_line"], clock=clock)
    pending = scalar(database_url, "SELECT count(*) FROM bridge.pending_children WHERE status = 'pending'")
    assert pending and pending > 0
    erp.mutate(erp_url, seed=SEED, step=3, updates=10, inserts=0)  # supplies the withheld orders
    clock.advance(timedelta(minutes=15))
    background.tick(engine, erp_url, clock=clock)
    assert scalar(database_url, "SELECT count(*) FROM bridge.pending_children WHERE status = 'pending'") == 0
    assert core_state(database_url) == source_state(erp_url)


def test_pause_and_resume(database_url: URL, erp_url: URL) -> None:
    erp.generate(erp_url, seed=SEED, scale=1000)
    engine = db.get_engine(database_url)
    clock = SimulatedClock(NOON)
    entity = "customer_order_line"
    background.create(engine, erp_url, [entity, "customer_order"], timezone=TZ, days=3, chunk_size=50, clock=clock)
    assert background.pause(engine, [entity]) == [entity]
    clock.set(_night_start(0))
    results = {r.entity: r for r in background.tick(engine, erp_url, clock=clock)}
    assert (results[entity].outcome, results[entity].reason) == ("skipped", "paused")
    assert results["customer_order"].outcome == "moved"
    assert _progress(engine, clock)[entity].rows_done == 0

    assert background.resume(engine, [entity]) == [entity]
    (moved,) = background.tick(engine, erp_url, [entity], clock=clock)
    assert moved.outcome == "moved" and moved.rows_moved == _progress(engine, clock)[entity].rows_per_day

    # A pause during a run takes effect after the chunks in flight commit: on two lanes, the first chunk and
    # the one already relayed behind it.
    clock.set(_night_start(1))
    (stopped,) = background.tick(engine, erp_url, [entity], clock=clock,
                                 on_chunk=lambda e, _n: background.pause(engine, [e]))  # fmt: skip
    assert (stopped.reason, stopped.rows_moved) == ("paused", 100)
    assert _progress(engine, clock)[entity].status == "paused"
    background.resume(engine, [entity])
    (rest,) = background.tick(engine, erp_url, [entity], clock=clock)
    assert rest.rows_moved == _progress(engine, clock)[entity].rows_per_day - 100


def test_a_pause_while_the_last_chunks_of_the_pass_commit_leaves_the_table_paused(
    database_url: URL, erp_url: URL
) -> None:
    """The pass's last two chunks are both in staging (tonight's share read) when the pause comes: they commit,
    and the table stays paused rather than completing and going on to its delta."""
    erp.generate(erp_url, seed=SEED, scale=1000)
    engine = db.get_engine(database_url)
    entity = "inventory_transaction_hist"
    total = erp.row_counts(erp_url)[entity]
    clock = SimulatedClock(NOON)
    background.create(engine, erp_url, [entity], timezone=TZ, days=1, chunk_size=-(-total // 2), clock=clock)
    clock.set(_night_start(0))
    (stopped,) = background.tick(engine, erp_url, [entity], clock=clock,
                                 on_chunk=lambda e, _n: background.pause(engine, [e]))  # fmt: skip
    assert (stopped.reason, stopped.rows_moved) == ("paused", total)
    progress = _progress(engine, clock)[entity]
    assert (progress.status, progress.rows_done) == ("paused", total)
    background.resume(engine, [entity])
    clock.advance(background.TICK_INTERVAL)
    background.tick(engine, erp_url, [entity], clock=clock)
    assert _progress(engine, clock)[entity].status == "completed"
    assert core_state(database_url)[entity] == source_state(erp_url)[entity]


def test_unreachable_source_at_window_start_marks_the_schedule_in_error_and_the_next_tick_retries(
    database_url: URL, erp_url: URL
) -> None:
    erp.generate(erp_url, seed=SEED, scale=500)
    engine = db.get_engine(database_url)
    clock = SimulatedClock(NOON)
    entity = "customer_order"
    background.create(engine, erp_url, [entity], timezone=TZ, chunk_size=1000, clock=clock)
    down = "postgresql://sync:secret@127.0.0.1:9/erp"
    clock.set(_night_start(0))
    (failed,) = background.tick(engine, down, [entity], clock=clock)
    assert failed.outcome == "error"
    assert "cannot reach the ERP database at host 127.0.0.1, port 9" in failed.reason and "secret" not in failed.reason
    (p,) = background.status(engine, [entity], clock=clock)
    assert p.status == "error" and p.error_message == failed.reason
    assert p.next_run_at == _night_start(0) + background.TICK_INTERVAL

    # The next tick retries; the source is back, so the pass goes on from its checkpoint.
    clock.advance(background.TICK_INTERVAL)
    (retried,) = background.tick(engine, erp_url, [entity], clock=clock)
    assert retried.outcome == "moved" and retried.rows_moved == p.rows_per_day
    (after,) = background.status(engine, [entity], clock=clock)
    assert after.status == "active" and after.error_message is None


_CHILD = """
import sys
from datetime import datetime
from sync_pipelines.defs.erp import background
from sync_pipelines.lib import db
engine = db.get_engine(sys.argv[1])
clock = background.SimulatedClock(datetime.fromisoformat(sys.argv[3]))
print(background.tick(engine, sys.argv[2], sys.argv[4].split(","), clock=clock), flush=True)
"""


def test_sigkill_mid_chunk_then_the_next_tick_resumes_with_no_loss_and_no_duplicates(
    database_url: URL, erp_url: URL
) -> None:
    erp.generate(erp_url, seed=SEED, scale=4000)
    engine = db.get_engine(database_url)
    entity = "customer_order_line"
    core = SPECS[entity].core
    clock = SimulatedClock(NOON)
    background.create(engine, erp_url, [entity, "customer_order"], timezone=TZ, days=1, chunk_size=100, clock=clock)
    clock.set(_night_start(0))
    background.tick(engine, erp_url, ["customer_order"], clock=clock)

    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, db.render_secret_url(database_url), db.render_secret_url(erp_url),
         clock.now().isoformat(), entity],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ),
    )  # fmt: skip
    lock_conn = psycopg.connect(db.libpq_uri(database_url))
    try:
        deadline = walltime.monotonic() + 60
        while int(scalar(database_url, "SELECT rows_done FROM bridge.background_sync_schedule "  # type: ignore[arg-type]
                         "WHERE entity_name = :e", {"e": entity})) < 300:  # fmt: skip
            assert child.poll() is None, child.communicate()
            assert walltime.monotonic() < deadline
            walltime.sleep(0.01)
        # Block core writes: the chunk in flight commits first, the next one stops inside its transaction,
        # after its sync_batches row and its staging COPY, at the upsert into core.
        lock_conn.execute(f"LOCK TABLE core.{core.name} IN SHARE MODE")
        while not scalar(
            database_url,
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()",
        ):
            assert child.poll() is None, child.communicate()
            assert walltime.monotonic() < deadline
            walltime.sleep(0.01)
        running = scalar(database_url, "SELECT count(*) FROM bridge.sync_batches WHERE status = 'running'")
        assert running == 0  # uncommitted: invisible from here
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        lock_conn.rollback()
        lock_conn.close()
    done = int(scalar(database_url, "SELECT rows_done FROM bridge.background_sync_schedule "  # type: ignore[arg-type]
                      "WHERE entity_name = :e", {"e": entity}))  # fmt: skip
    assert done >= 300 and done % 100 == 0
    assert scalar(database_url, f"SELECT count(*) FROM core.{core.name}") == done

    # The killed worker's backend rolls its chunk back and lets go of the table's lock within seconds;
    # until then a tick says so and moves nothing.
    while scalar(database_url, "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                 "WHERE l.locktype = 'advisory' AND d.datname = current_database()"):  # fmt: skip
        assert walltime.monotonic() < deadline + 30
        walltime.sleep(0.05)
    (resumed,) = background.tick(engine, erp_url, [entity], clock=clock)
    assert resumed.outcome == "moved", resumed.reason
    assert core_state(database_url)[entity] == source_state(erp_url)[entity]
    fetched = scalar(
        database_url,
        "SELECT sum(rows_fetched) FROM bridge.sync_batches WHERE entity_name = :e AND cursor_after IS NOT NULL",
        {"e": entity},
    )
    assert fetched == erp.row_counts(erp_url)[entity]  # every row moved exactly once
    assert scalar(database_url, "SELECT count(*) FROM bridge.sync_batches WHERE status <> 'completed'") == 0


def test_values_relayed_from_the_source_land_in_core_exactly(database_url: URL, erp_url: URL) -> None:
    """The chunk COPY relays JSON the source renders: numbers keep every digit, times stay the same instant."""
    erp.generate(erp_url, seed=SEED, scale=1500)
    engine = db.get_engine(database_url)
    clock = SimulatedClock(_night_start(0))
    background.create(engine, erp_url, timezone=TZ, days=1, chunk_size=400, clock=clock)
    assert all(r.outcome == "moved" for r in background.tick(engine, erp_url, clock=clock))
    columns = (
        "order_no, customer_no, {} AS created, wanted_delivery_date, currency_code, state, total_amount, rowversion"
    )
    with psycopg.connect(db.libpq_uri(erp_url)) as src, psycopg.connect(db.libpq_uri(database_url)) as dst:
        source_rows = src.execute(
            f"SELECT {columns.format('order_date')} FROM ifsapp.customer_order ORDER BY order_no"
        ).fetchall()
        core_rows = dst.execute(
            f"SELECT {columns.format('created_at_source')} FROM core.erp_customer_order ORDER BY order_no"
        ).fetchall()
        lines = "order_no, line_no, rel_no, buy_qty_due, sale_unit_price, rowversion"
        source_lines = src.execute(f"SELECT {lines} FROM ifsapp.customer_order_line ORDER BY 1, 2, 3").fetchall()
        core_lines = dst.execute(f"SELECT {lines} FROM core.erp_customer_order_line ORDER BY 1, 2, 3").fetchall()
    assert source_rows and core_rows == source_rows
    assert source_lines and core_lines == source_lines


def _lanes_in_flight(url: URL) -> tuple[int, int]:
    """(lane backends waiting on a lock, lane backends idle inside a transaction) of the pass."""
    with psycopg.connect(db.libpq_uri(url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE wait_event_type = 'Lock'), "
            "count(*) FILTER (WHERE state = 'idle in transaction') "
            "FROM pg_stat_activity WHERE application_name = %s AND datname = current_database()",
            (background.LANE_APPLICATION_NAME,),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_sigkill_with_both_lanes_in_flight_then_a_rerun_ends_with_core_equal_to_source(
    database_url: URL, erp_url: URL
) -> None:
    erp.generate(erp_url, seed=SEED, scale=2000)
    engine = db.get_engine(database_url)
    entity = "inventory_transaction_hist"
    core = SPECS[entity].core
    clock = SimulatedClock(NOON)
    background.create(engine, erp_url, [entity], timezone=TZ, days=1, chunk_size=50, clock=clock)
    clock.set(_night_start(0))

    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, db.render_secret_url(database_url), db.render_secret_url(erp_url),
         clock.now().isoformat(), entity],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ),
    )  # fmt: skip
    done_sql = "SELECT rows_done FROM bridge.background_sync_schedule WHERE entity_name = :e"
    lock_conn = psycopg.connect(db.libpq_uri(database_url))
    try:
        deadline = walltime.monotonic() + 60
        while int(scalar(database_url, done_sql, {"e": entity})) < 100:  # type: ignore[arg-type]
            assert child.poll() is None, child.communicate()
            assert walltime.monotonic() < deadline
            walltime.sleep(0.01)
        # Core writes blocked: one lane's chunk waits at its upsert, the other lane's chunk, relayed and
        # validated behind it, waits for it inside its own transaction. The kill catches both open.
        lock_conn.execute(f"LOCK TABLE core.{core.name} IN SHARE MODE")
        while _lanes_in_flight(database_url) != (1, 1):
            assert child.poll() is None, child.communicate()
            assert walltime.monotonic() < deadline
            walltime.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        lock_conn.rollback()
        lock_conn.close()
    done = int(scalar(database_url, done_sql, {"e": entity}))  # type: ignore[arg-type]
    assert done >= 100 and done % 50 == 0
    assert scalar(database_url, f"SELECT count(*) FROM core.{core.name}") == done

    while scalar(database_url, "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                 "WHERE l.locktype = 'advisory' AND d.datname = current_database()"):  # fmt: skip
        assert walltime.monotonic() < deadline + 30
        walltime.sleep(0.05)
    (rerun,) = background.tick(engine, erp_url, [entity], clock=clock)
    assert rerun.outcome == "moved" and rerun.reason.startswith("the pass is complete"), rerun.reason
    assert core_state(database_url)[entity] == source_state(erp_url)[entity]
    fetched = scalar(
        database_url,
        "SELECT sum(rows_fetched) FROM bridge.sync_batches WHERE entity_name = :e AND cursor_after IS NOT NULL",
        {"e": entity},
    )
    assert fetched == erp.row_counts(erp_url)[entity]  # every row moved exactly once


def test_sigkill_with_two_tables_in_flight_then_a_rerun_ends_with_core_equal_to_source(
    database_url: URL, erp_url: URL
) -> None:
    """A tick overlaps a table with the next one in load order: the child table is relayed and normalised while
    its parent upserts, and touches nothing shared (DLQ, core) before the parent has finished."""
    erp.generate(erp_url, seed=SEED, scale=2000)
    engine = db.get_engine(database_url)
    parent, child = "customer_order", "customer_order_line"
    counts = erp.row_counts(erp_url)
    clock = SimulatedClock(NOON)
    # The parent's whole night is one chunk, so the child table starts as soon as that chunk is in staging.
    background.create(engine, erp_url, [parent, child], timezone=TZ, days=1, chunk_size=counts[parent], clock=clock)
    clock.set(_night_start(0))
    done_sql = "SELECT rows_done FROM bridge.background_sync_schedule WHERE entity_name = :e"
    lock_conn = psycopg.connect(db.libpq_uri(database_url))
    try:
        # The parent's chunk waits at its upsert; the child's chunks, one per lane, wait for the parent to finish.
        lock_conn.execute(f"LOCK TABLE core.{SPECS[parent].core.name} IN SHARE MODE")
        child_process = subprocess.Popen(
            [sys.executable, "-c", _CHILD, db.render_secret_url(database_url), db.render_secret_url(erp_url),
             clock.now().isoformat(), f"{parent},{child}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ),
        )  # fmt: skip
        deadline = walltime.monotonic() + 60
        while _lanes_in_flight(database_url) != (1, 2):
            assert child_process.poll() is None, child_process.communicate()
            assert walltime.monotonic() < deadline
            walltime.sleep(0.01)
        # And they stay so: the child's chunks wait for the parent, they do not just pass between statements.
        walltime.sleep(1.0)
        assert _lanes_in_flight(database_url) == (1, 2)
        assert scalar(database_url, done_sql, {"e": child}) == 0
        child_process.send_signal(signal.SIGKILL)
        child_process.wait(30)
    finally:
        lock_conn.rollback()
        lock_conn.close()
    for entity in (parent, child):
        assert scalar(database_url, done_sql, {"e": entity}) == 0
        assert scalar(database_url, f"SELECT count(*) FROM core.{SPECS[entity].core.name}") == 0
    assert scalar(database_url, "SELECT count(*) FROM bridge.failed_records") == 0

    while scalar(database_url, "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                 "WHERE l.locktype = 'advisory' AND d.datname = current_database()"):  # fmt: skip
        assert walltime.monotonic() < deadline + 30
        walltime.sleep(0.05)
    results = background.tick(engine, erp_url, [parent, child], clock=clock)
    assert [(r.entity, r.outcome) for r in results] == [(parent, "moved"), (child, "moved")]
    assert all(r.reason.startswith("the pass is complete") for r in results), [r.reason for r in results]
    state, source = core_state(database_url), source_state(erp_url)
    assert {e: state[e] for e in (parent, child)} == {e: source[e] for e in (parent, child)}
    # Every line found its order: none was held as an orphan, so none waited for a parent that was on its way.
    assert scalar(database_url, "SELECT count(*) FROM bridge.pending_children") == 0
    for entity in (parent, child):
        fetched = scalar(
            database_url,
            "SELECT sum(rows_fetched) FROM bridge.sync_batches WHERE entity_name = :e AND cursor_after IS NOT NULL",
            {"e": entity},
        )
        assert fetched == counts[entity]  # every row moved exactly once


def test_a_table_with_no_parent_upserts_and_commits_while_the_table_before_it_is_still_upserting(
    database_url: URL, erp_url: URL
) -> None:
    """Tables overlap beyond the relay: once the orders have read their last chunk (both lanes busy, the first
    chunk waiting at its upsert) inventory starts reading, and as only a child waits for its parent, inventory
    (no parent) lands in core while the orders before it in load order still wait."""
    erp.generate(erp_url, seed=SEED, scale=2000)
    engine = db.get_engine(database_url)
    first, independent = "customer_order", "inventory_transaction_hist"
    counts = erp.row_counts(erp_url)
    clock = SimulatedClock(NOON)
    # The orders' night is two chunks, one per lane.
    background.create(engine, erp_url, [first, independent], timezone=TZ, days=1,
                      chunk_size=-(-counts[first] // 2), clock=clock)  # fmt: skip
    clock.set(_night_start(0))
    done_sql = "SELECT rows_done FROM bridge.background_sync_schedule WHERE entity_name = :e"
    results: list[background.TickResult] = []
    lock_conn = psycopg.connect(db.libpq_uri(database_url))
    try:
        lock_conn.execute(f"LOCK TABLE core.{SPECS[first].core.name} IN SHARE MODE")  # the orders' upsert waits
        ticking = threading.Thread(target=lambda: results.extend(background.tick(engine, erp_url, clock=clock)))
        ticking.start()
        deadline = walltime.monotonic() + 60
        while scalar(database_url, done_sql, {"e": independent}) != counts[independent]:
            assert ticking.is_alive() and walltime.monotonic() < deadline, results
            walltime.sleep(0.02)
        assert scalar(database_url, done_sql, {"e": first}) == 0
        assert scalar(database_url, f"SELECT count(*) FROM core.{SPECS[independent].core.name}") == counts[independent]
    finally:
        lock_conn.rollback()
        lock_conn.close()
    ticking.join(60)
    assert [(r.entity, r.outcome) for r in results] == [(first, "moved"), (independent, "moved")]  # in load order
    state, source = core_state(database_url), source_state(erp_url)
    assert {e: state[e] for e in (first, independent)} == {e: source[e] for e in (first, independent)}


def test_an_interrupt_from_on_chunk_stops_every_table_of_the_tick_at_a_commit_and_the_next_tick_goes_on(
    database_url: URL, erp_url: URL
) -> None:
    """on_chunk runs on the caller's thread even while two tables are in flight; what it raises stops the tick:
    each table keeps the chunks it committed, with its checkpoint, and nothing else."""
    erp.generate(erp_url, seed=SEED, scale=2000)
    engine = db.get_engine(database_url)
    clock = SimulatedClock(NOON)
    background.create(engine, erp_url, timezone=TZ, days=1, chunk_size=60, clock=clock)
    clock.set(_night_start(0))
    caller = threading.get_ident()
    seen: list[tuple[str, int]] = []

    def on_chunk(entity: str, rows: int) -> None:
        assert threading.get_ident() == caller
        seen.append((entity, rows))
        if entity == "customer_order" and len(seen) > 2:
            raise KeyboardInterrupt("stop")

    with pytest.raises(KeyboardInterrupt, match="stop"):
        background.tick(engine, erp_url, clock=clock, on_chunk=on_chunk)
    done = {p.entity: p.rows_done for p in background.status(engine, clock=clock)}
    for entity in LOAD_ORDER:
        core_rows = scalar(database_url, f"SELECT count(*) FROM core.{SPECS[entity].core.name}")
        assert core_rows == done[entity], entity  # the checkpoint is where the committed rows end
    assert done["customer_order"] > 0 and done["customer_order"] % 60 == 0
    assert done["inventory_transaction_hist"] == 0  # never started
    assert scalar(database_url, "SELECT count(*) FROM bridge.sync_batches WHERE status <> 'completed'") == 0
    assert not any(p.status == "error" for p in background.status(engine, clock=clock))

    clock.advance(background.TICK_INTERVAL)
    assert all(r.outcome == "moved" for r in background.tick(engine, erp_url, clock=clock))
    assert core_state(database_url) == source_state(erp_url)


def test_a_failed_chunk_rolls_back_the_chunk_relayed_behind_it_and_the_checkpoint_stays_before_it(
    database_url: URL, erp_url: URL
) -> None:
    erp.generate(erp_url, seed=SEED, scale=2000)
    engine = db.get_engine(database_url)
    entity = "inventory_transaction_hist"
    core = SPECS[entity].core
    clock = SimulatedClock(NOON)
    background.create(engine, erp_url, [entity], timezone=TZ, days=1, chunk_size=50, clock=clock)
    with psycopg.connect(db.libpq_uri(erp_url)) as src:
        versions = [
            int(v) for (v,) in src.execute(f"SELECT rowversion FROM ifsapp.{entity} ORDER BY rowversion LIMIT 200")
        ]
    chunk2_end, chunk3_first = versions[99], versions[100]
    # Chunk 3 fails at its upsert into core, slowly enough that chunk 4 is relayed and validated on the other
    # lane meanwhile (a real error from Postgres, raised by a trigger).
    with psycopg.connect(db.libpq_uri(database_url), autocommit=True) as conn:
        conn.execute(
            f"""
            CREATE FUNCTION core.fail_chunk_3() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.rowversion = {chunk3_first} THEN
                    PERFORM pg_sleep(1);
                    RAISE EXCEPTION 'injected failure in chunk 3';
                END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER fail_chunk_3 BEFORE INSERT ON core.{core.name}
            FOR EACH ROW EXECUTE FUNCTION core.fail_chunk_3();
            """
        )
    clock.set(_night_start(0))
    (failed,) = background.tick(engine, erp_url, [entity], clock=clock)
    assert failed.outcome == "error" and "injected failure in chunk 3" in failed.reason
    assert failed.progress is not None and failed.progress.rows_done == 100
    assert background.Checkpoint.load(failed.progress.checkpoint).after == chunk2_end
    # Chunk 4 committed nothing: no rows past chunk 2 in core, no batch beyond chunk 2's.
    assert scalar(database_url, f"SELECT count(*) FROM core.{core.name}") == 100
    assert scalar(database_url, f"SELECT max(rowversion) FROM core.{core.name}") == chunk2_end
    assert scalar(database_url, "SELECT count(*) FROM bridge.sync_batches") == 2

    with psycopg.connect(db.libpq_uri(database_url), autocommit=True) as conn:
        conn.execute(f"DROP TRIGGER fail_chunk_3 ON core.{core.name}")
    clock.advance(background.TICK_INTERVAL)
    (retried,) = background.tick(engine, erp_url, [entity], clock=clock)
    assert retried.outcome == "moved" and retried.reason.startswith("the pass is complete"), retried.reason
    assert core_state(database_url)[entity] == source_state(erp_url)[entity]
