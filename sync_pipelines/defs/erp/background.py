"""The night-window engine: a multi-day background pass over each ERP table, then the delta path.

One `bridge.background_sync_schedule` row per table drives it:

- `create` counts the source table and fixes the pass: everything up to the table's highest rowversion
  right now (the checkpoint `current_offset` holds `{"after": <last rowversion moved>, "until": <that
  ceiling>}`), `rows_per_day` = ceil(rows / days_to_complete).
- Every tick inside the window (default 19:00-07:00 in the schedule's time zone) moves chunks
  (`chunk_size`, 50,000 by default). Each chunk commits its rows, its `sync_batches` row (sync_type
  `background`) and the checkpoint in one transaction, so a crash at any point resumes at the last chunk
  that committed, with nothing lost and nothing twice.
- A tick stops cleanly when tonight's quota is met or the window closes, whichever comes first; the next
  night resumes at the checkpoint.
- The pass runs on two lanes (two warehouse connections): chunk k+1 is relayed into staging, normalised and
  validated while chunk k upserts into core, and k+1 touches core only once k has committed (load_batch's
  `before_apply`, as the kit's run_pages does). Each chunk stays one transaction with its checkpoint and
  they commit in order, so the checkpoint is never ahead of a commit, and a chunk that fails rolls the one
  behind it back too.
- A tick works on two tables at once (`TABLES_AT_ONCE`): the next table in load order starts reading once
  this one has read all it will read tonight (its last chunk is in staging), so the source serves one table's
  reads at a time. A child table (order lines) writes nothing to the DLQ or core until its parent's turn in
  the tick is done, so its relay and normalising overlap the parent's last upsert and core sees a parent's
  commits before its children's; a table with no parent in the tick upserts beside the table before it. Each
  table keeps its own lock, transactions and checkpoint.
- When the pass has read everything up to its ceiling, the table switches to the delta path
  (`rowversion > erp_sync_state.last_sync_rowversion`): rows changed during the multi-day pass moved
  above the ceiling, and the delta catches every one of them up.
- A source that does not answer marks the schedule in error with the reason; the next tick retries.

Time comes from a `Clock`: tests and the demo run a seven-night pass in seconds, and nothing here sleeps.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg
import sqlalchemy as sa
from psycopg import sql
from psycopg.rows import dict_row
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import URL

from sync_pipelines.defs.erp import source
from sync_pipelines.defs.erp.entities import ACCOUNT_NAME, INTEGRATION, LOAD_ORDER, SOURCE_SYSTEM, SPECS
from sync_pipelines.lib import db, mappings, schema
from sync_pipelines.lib.load import BatchCounts, LoadContext, Staged, load_batch

log = logging.getLogger(__name__)

DEFAULT_WINDOW = (time(19, 0), time(7, 0))
DEFAULT_DAYS = 7
DEFAULT_CHUNK = 50_000
TICK_INTERVAL = timedelta(minutes=15)
_LOCK_CLASS = 7_000_003  # advisory lock namespace: one running tick per table
LANES = 2  # warehouse connections a pass overlaps its chunks on
TABLES_AT_ONCE = 2  # tables a tick works on at once (see the module docstring); 1: one after another
LANE_APPLICATION_NAME = "sync_pipelines_erp_lane"


# ----------------------------------------------------------------------------------------------
# Clocks
# ----------------------------------------------------------------------------------------------


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class SimulatedClock:
    """A clock that only moves when told to: `advance` or `set`."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("SimulatedClock needs an aware datetime")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = moment

    def advance(self, delta: timedelta) -> datetime:
        self._now += delta
        return self._now


# ----------------------------------------------------------------------------------------------
# Windows
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    night: date  # the local date on which this window opened
    start: datetime
    end: datetime


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}; expected an IANA name like Europe/Stockholm") from None


def _window_of(night: date, start: time, end: time, tz: ZoneInfo) -> Window:
    opens = datetime.combine(night, start, tz)
    closes_on = night + timedelta(days=1) if end <= start else night
    return Window(night, opens.astimezone(UTC), datetime.combine(closes_on, end, tz).astimezone(UTC))


def window_at(start: time, end: time, tz_name: str, now: datetime) -> Window | None:
    """The window open at `now`, or None. A window whose end is not after its start runs past midnight."""
    tz = zone(tz_name)
    today = now.astimezone(tz).date()
    for night in (today, today - timedelta(days=1)):
        window = _window_of(night, start, end, tz)
        if window.start <= now < window.end:
            return window
    return None


def next_window_start(start: time, end: time, tz_name: str, now: datetime) -> datetime:
    """The first window opening strictly after `now`."""
    tz = zone(tz_name)
    day = now.astimezone(tz).date()
    while True:
        window = _window_of(day, start, end, tz)
        if window.start > now:
            return window.start
        day += timedelta(days=1)


def parse_window(text: str) -> tuple[time, time]:
    """'19:00-07:00' -> (19:00, 07:00)."""
    try:
        first, second = text.split("-")
        return time.fromisoformat(first.strip()), time.fromisoformat(second.strip())
    except ValueError:
        raise ValueError(f"window {text!r}: expected HH:MM-HH:MM, like 19:00-07:00") from None


def window_crons(start: time, end: time) -> list[str]:
    """Cron lines firing at `start` and every 15 minutes after it while the window is open."""
    minutes_by_hour: dict[int, list[int]] = {}
    base = datetime.combine(date(2000, 1, 1), start)
    stop = datetime.combine(date(2000, 1, 2) if end <= start else date(2000, 1, 1), end)
    moment = base
    while moment < stop:
        minutes_by_hour.setdefault(moment.hour, []).append(moment.minute)
        moment += TICK_INTERVAL
    hours_by_minutes: dict[tuple[int, ...], list[int]] = {}
    for hour, minutes in minutes_by_hour.items():
        hours_by_minutes.setdefault(tuple(sorted(set(minutes))), []).append(hour)
    return [
        f"{','.join(map(str, minutes))} {','.join(map(str, sorted(hours)))} * * *"
        for minutes, hours in hours_by_minutes.items()
    ]


# ----------------------------------------------------------------------------------------------
# The checkpoint
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    after: int  # the last rowversion moved (committed)
    until: int  # the pass's ceiling: the highest rowversion when the pass started

    def dump(self) -> str:
        return json.dumps({"after": self.after, "until": self.until}, separators=(",", ":"))

    @classmethod
    def load(cls, text: str | None) -> Checkpoint:
        if not text:
            raise ValueError("background schedule has no checkpoint: create it again")
        value = json.loads(text)
        return cls(int(value["after"]), int(value["until"]))


# ----------------------------------------------------------------------------------------------
# Progress
# ----------------------------------------------------------------------------------------------


@dataclass
class Progress:
    entity: str
    status: str
    rows_done: int
    total_rows: int
    rows_per_day: int
    rows_done_today: int
    percent: float
    rows_left: int
    nights_left: int
    projected_finish_night: date | None
    next_run_at: datetime | None
    last_run_at: datetime | None
    error_message: str | None
    window: str
    timezone: str
    checkpoint: str | None

    def metadata(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "rows_done": self.rows_done,
            "total_rows": self.total_rows,
            "percent": round(self.percent, 1),
            "rows_left": self.rows_left,
            "nights_left": self.nights_left,
            "projected_finish_night": str(self.projected_finish_night or "-"),
            "next_run_at": str(self.next_run_at or "-"),
            "checkpoint": self.checkpoint or "-",
            "error": self.error_message or "none",
        }


def _percent_short_of_done(done: int, total: int) -> float:
    """Rounded down to a tenth and never 100 before the pass has completed: 539,144 of 540,000 rows is 99.8%,
    and 539,990 is 99.9%, not a 100% that says the table is finished when it is not."""
    if total <= 0:
        return 0.0
    return min(99.9, math.floor(1000 * done / total) / 10)


def progress_of(row: dict[str, Any], now: datetime) -> Progress:
    total = int(row["total_rows"] or 0)
    done = int(row["rows_done"] or 0)
    per_day = max(1, int(row["rows_per_day"] or 1))
    completed = row["status"] == "completed" or row["completed_at"] is not None
    left = 0 if completed else max(0, total - done)
    start, end, tz_name = row["sync_window_start"], row["sync_window_end"], row["timezone"]
    nights_left = 0
    finish: date | None = row["completed_at"].astimezone(zone(tz_name)).date() if row["completed_at"] else None
    if left:
        open_now = window_at(start, end, tz_name, now)
        if open_now is not None and row["night_started_on"] == open_now.night.isoformat():
            tonight_left = max(0, per_day - int(row["rows_done_today"] or 0))
        else:
            tonight_left = per_day if open_now is not None else 0
        if open_now is not None and tonight_left:
            first = open_now.night
            nights_left = 1 + math.ceil(max(0, left - tonight_left) / per_day)
        else:
            first = next_window_start(start, end, tz_name, now).astimezone(zone(tz_name)).date()
            nights_left = math.ceil(left / per_day)
        finish = first + timedelta(days=nights_left - 1)
    return Progress(
        entity=row["entity_name"],
        status=row["status"],
        rows_done=done,
        total_rows=total,
        rows_per_day=per_day,
        rows_done_today=int(row["rows_done_today"] or 0),
        percent=100.0 if completed else _percent_short_of_done(done, total),
        rows_left=left,
        nights_left=nights_left,
        projected_finish_night=finish,
        next_run_at=row["next_run_at"],
        last_run_at=row["last_run_at"],
        error_message=row["error_message"],
        window=f"{start:%H:%M}-{end:%H:%M}",
        timezone=tz_name,
        checkpoint=row["current_offset"],
    )


# ----------------------------------------------------------------------------------------------
# Managing schedules
# ----------------------------------------------------------------------------------------------

_TABLE = schema.background_sync_schedule


def _entities(entities: Iterable[str] | None) -> list[str]:
    chosen = list(entities) if entities else list(LOAD_ORDER)
    for entity in chosen:
        if entity not in SPECS:
            raise ValueError(f"unknown ERP entity {entity!r}; expected one of {', '.join(LOAD_ORDER)}")
    return [e for e in LOAD_ORDER if e in chosen]


def ensure_account(engine: sa.Engine) -> Any:
    """The one account every ERP row belongs to in core."""
    with engine.begin() as conn:
        conn.execute(
            insert(schema.accounts)
            .values(integration=INTEGRATION, name=ACCOUNT_NAME, status="active")
            .on_conflict_do_nothing(index_elements=["integration", "name"])
        )
        return conn.execute(
            sa.select(schema.accounts.c.id).where(
                schema.accounts.c.integration == INTEGRATION, schema.accounts.c.name == ACCOUNT_NAME
            )
        ).scalar_one()


def create(
    engine: sa.Engine,
    erp_url: URL | str,
    entities: Iterable[str] | None = None,
    *,
    window: tuple[time, time] = DEFAULT_WINDOW,
    timezone: str = "UTC",
    days: int = DEFAULT_DAYS,
    chunk_size: int = DEFAULT_CHUNK,
    restart: bool = False,
    clock: Clock | None = None,
) -> list[Progress]:
    """Plan a pass per table from the source's row count; `restart` starts an existing one over."""
    if days < 1 or chunk_size < 1:
        raise ValueError("days and chunk size must be at least 1")
    zone(timezone)
    clock = clock or SystemClock()
    chosen = _entities(entities)
    with engine.connect() as conn:
        existing = set(
            conn.execute(
                sa.select(_TABLE.c.entity_name).where(
                    _TABLE.c.source_system == SOURCE_SYSTEM, _TABLE.c.entity_name.in_(chosen)
                )
            ).scalars()
        )
    if existing and not restart:
        raise ValueError(
            f"background sync already exists for {', '.join(sorted(existing))}: "
            "use `background status`, or create with --restart to start the pass over"
        )
    ensure_account(engine)
    now = clock.now()
    with source.connect(erp_url) as erp:
        plans = {entity: source.high_water(erp, entity) for entity in chosen}
    with engine.begin() as conn:
        for entity in chosen:
            mappings.seed_defaults(conn, INTEGRATION, entity, SPECS[entity].mappings)
            ceiling, rows = plans[entity]
            values = {
                "is_enabled": True,
                "sync_window_start": window[0],
                "sync_window_end": window[1],
                "timezone": timezone,
                "days_to_complete": days,
                "rows_per_day": max(1, math.ceil(rows / days)),
                "chunk_size": chunk_size,
                "total_rows": rows,
                "rows_done": 0,
                "rows_done_today": 0,
                "current_offset": Checkpoint(0, ceiling).dump(),
                "night_started_on": None,
                "next_run_at": None,
                "last_run_at": None,
                "status": "active",
                "error_message": None,
                "started_at": now,
                "completed_at": None,
                "updated_at": sa.func.now(),
            }
            conn.execute(
                insert(_TABLE)
                .values(source_system=SOURCE_SYSTEM, entity_name=entity, **values)
                .on_conflict_do_update(index_elements=["source_system", "entity_name"], set_=values)
            )
    return status(engine, chosen, clock=clock)


def _rows(engine: sa.Engine, entities: Iterable[str] | None) -> list[dict[str, Any]]:
    query = sa.select(_TABLE).where(_TABLE.c.source_system == SOURCE_SYSTEM)
    if entities:
        query = query.where(_TABLE.c.entity_name.in_(_entities(entities)))
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
    order = {e: i for i, e in enumerate(LOAD_ORDER)}
    return sorted(rows, key=lambda r: order.get(r["entity_name"], 99))


def status(engine: sa.Engine, entities: Iterable[str] | None = None, *, clock: Clock | None = None) -> list[Progress]:
    now = (clock or SystemClock()).now()
    return [progress_of(row, now) for row in _rows(engine, entities)]


def pause(engine: sa.Engine, entities: Iterable[str] | None = None) -> list[str]:
    """Stop moving rows until `resume`; a tick that is running finishes its current chunk and stops."""
    with engine.begin() as conn:
        return list(
            conn.execute(
                sa.update(_TABLE)
                .where(_TABLE.c.source_system == SOURCE_SYSTEM, _TABLE.c.entity_name.in_(_entities(entities)))
                .where(_TABLE.c.status != "paused")
                .values(status="paused", updated_at=sa.func.now())
                .returning(_TABLE.c.entity_name)
            ).scalars()
        )


def resume(engine: sa.Engine, entities: Iterable[str] | None = None) -> list[str]:
    """Back to the pass (or the delta path, if the pass had completed); due at the next tick."""
    with engine.begin() as conn:
        return list(
            conn.execute(
                sa.update(_TABLE)
                .where(_TABLE.c.source_system == SOURCE_SYSTEM, _TABLE.c.entity_name.in_(_entities(entities)))
                .where(_TABLE.c.status == "paused")
                .values(
                    status=sa.case((_TABLE.c.completed_at.is_not(None), "completed"), else_="active"),
                    error_message=None,
                    next_run_at=None,
                    updated_at=sa.func.now(),
                )
                .returning(_TABLE.c.entity_name)
            ).scalars()
        )


# ----------------------------------------------------------------------------------------------
# Ticks
# ----------------------------------------------------------------------------------------------


@dataclass
class TickResult:
    entity: str
    outcome: str  # skipped | moved | error
    reason: str
    rows_moved: int = 0
    delta_rows: int = 0
    counts: BatchCounts = field(default_factory=BatchCounts)
    batch_ids: list[str] = field(default_factory=list)
    progress: Progress | None = None

    def metadata(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "outcome": self.outcome,
            "stopped_because": self.reason,
            "rows_moved_this_run": self.rows_moved,
            "delta_rows_this_run": self.delta_rows,
            "batches_this_run": len(self.batch_ids),
            **self.counts.as_metadata(),
        }
        if self.progress is not None:
            out.update(self.progress.metadata())
        return out


OnChunk = Callable[[str, int], None]


def tick(
    engine: sa.Engine,
    erp_url: URL | str,
    entities: Iterable[str] | None = None,
    *,
    clock: Clock | None = None,
    dagster_run_id: str | None = None,
    on_chunk: OnChunk | None = None,
) -> list[TickResult]:
    """One scheduled tick: every table's schedule, parents first. Never raises for a table's failure:
    the schedule is marked in error with the reason and the result says so."""
    return list(run_entities(engine, erp_url, entities, clock=clock, dagster_run_id=dagster_run_id,
                             on_chunk=on_chunk))  # fmt: skip


class _TickStopped(BaseException):
    """A table's run stops because the tick stopped (an earlier table or the caller raised): its chunk in
    flight rolls back, its committed chunks and checkpoint stay. Not an Exception: it must not reach the
    schedule as the table's error."""


@dataclass
class _Turn:
    """One table's run inside a tick that overlaps tables."""

    entity: str
    finished: threading.Event = field(default_factory=threading.Event)  # run_entity returned or raised
    raised: bool = False
    read_done: bool = False  # as the driver knows it
    done: bool = False  # as the driver knows it
    future: Future[TickResult] | None = None


def run_entities(
    engine: sa.Engine,
    erp_url: URL | str,
    entities: Iterable[str] | None = None,
    *,
    clock: Clock | None = None,
    dagster_run_id: str | None = None,
    on_chunk: OnChunk | None = None,
) -> Iterator[TickResult]:
    """`run_entity` for each table with a schedule, in load order, yielding each result in that order as it is
    ready. Up to `TABLES_AT_ONCE` tables at once: table i+1 starts once table i has read from the source all it
    will read this tick, and a child table's chunks wait for its parent's turn to finish before they touch
    core (a table whose parent is not in the tick, or that has none, waits for no one). `on_chunk` is called
    on the caller's thread; if it raises (or the caller stops iterating), every table stops after the chunk it
    has in hand: committed chunks and checkpoints stay, the rest rolls back, and the exception propagates."""
    clock = clock or SystemClock()
    present = {row["entity_name"] for row in _rows(engine, entities)}
    chosen = [entity for entity in _entities(entities) if entity in present]
    if TABLES_AT_ONCE < 2 or len(chosen) < 2:
        for entity in chosen:
            yield run_entity(engine, erp_url, entity, clock=clock, dagster_run_id=dagster_run_id, on_chunk=on_chunk)
        return
    events: queue.SimpleQueue[tuple[str, _Turn, int]] = queue.SimpleQueue()
    stop = threading.Event()
    turns: list[_Turn] = []

    def run(turn: _Turn, parents: list[_Turn]) -> TickResult:
        def gate() -> None:
            for parent in parents:
                parent.finished.wait()
            if stop.is_set() or any(parent.raised for parent in parents):
                raise _TickStopped

        def chunk_moved(entity: str, rows: int) -> None:
            events.put(("chunk", turn, rows))
            if stop.is_set():
                raise _TickStopped

        try:
            return run_entity(engine, erp_url, turn.entity, clock=clock, dagster_run_id=dagster_run_id,
                              on_chunk=chunk_moved, gate=gate,
                              read_done=lambda: events.put(("read", turn, 0)))  # fmt: skip
        except BaseException:
            turn.raised = True
            raise
        finally:
            turn.finished.set()
            events.put(("done", turn, 0))

    with ThreadPoolExecutor(max_workers=TABLES_AT_ONCE, thread_name_prefix="erp-table") as pool:
        try:
            yielded = 0
            while yielded < len(chosen):
                # Start the next table once the last one started reads no more, while a worker is free.
                while (
                    len(turns) < len(chosen)
                    and not stop.is_set()
                    and (not turns or turns[-1].read_done or turns[-1].done)
                    and sum(1 for t in turns if not t.done) < TABLES_AT_ONCE
                ):
                    turn = _Turn(chosen[len(turns)])
                    parent = SPECS[turn.entity].parent
                    parents = [t for t in turns if parent is not None and t.entity == parent.entity]
                    turn.future = pool.submit(run, turn, parents)
                    turns.append(turn)
                while yielded < len(turns) and turns[yielded].done:
                    future = turns[yielded].future
                    assert future is not None
                    yielded += 1
                    yield future.result()
                if yielded == len(chosen):
                    break
                kind, turn, rows = events.get()
                if kind == "chunk" and on_chunk is not None:
                    on_chunk(turn.entity, rows)
                elif kind == "read":
                    turn.read_done = True
                elif kind == "done":
                    turn.done = True
        except BaseException:
            stop.set()
            raise
        finally:
            wait([t.future for t in turns if t.future is not None])


def _read(conn: psycopg.Connection, entity: str) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT * FROM bridge.background_sync_schedule WHERE source_system = %s AND entity_name = %s",
            (SOURCE_SYSTEM, entity),
        ).fetchone()


def _update(conn: psycopg.Connection, entity: str, **values: Any) -> None:
    sets = ", ".join(f"{name} = %({name})s" for name in values)
    conn.execute(
        f"UPDATE bridge.background_sync_schedule SET {sets}, updated_at = now() "
        "WHERE source_system = %(_system)s AND entity_name = %(_entity)s",
        {**values, "_system": SOURCE_SYSTEM, "_entity": entity},
    )


def run_entity(
    engine: sa.Engine,
    erp_url: URL | str,
    entity: str,
    *,
    clock: Clock,
    dagster_run_id: str | None = None,
    on_chunk: OnChunk | None = None,
    gate: Callable[[], None] | None = None,
    read_done: Callable[[], None] | None = None,
) -> TickResult:
    """One table's share of a tick. `gate` is called before each chunk first touches core (run_entities: the
    table's parent has finished its turn); `read_done` once the table will read nothing more from the source
    for the pass this tick."""
    with db.raw_connection(engine.url, autocommit=True) as conn:
        _watch_client(conn)
        locked = conn.execute(
            "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (_LOCK_CLASS, f"{SOURCE_SYSTEM}/{entity}")
        ).fetchone()
        if not locked or not locked[0]:
            return TickResult(entity, "skipped", "another run is moving this table")
        row = _read(conn, entity)
        if row is None:
            return TickResult(entity, "skipped", "no background schedule")
        now = clock.now()
        result = _skip_reason(row, now)
        if result is not None:
            return TickResult(entity, "skipped", result, progress=progress_of(row, now))
        window = window_at(row["sync_window_start"], row["sync_window_end"], row["timezone"], now)
        assert window is not None
        if row["night_started_on"] != window.night.isoformat():
            with conn.transaction():
                _update(conn, entity, night_started_on=window.night.isoformat(), rows_done_today=0)
        result_obj = TickResult(entity, "moved", "")
        try:
            with source.connect(erp_url) as erp:
                if row["status"] == "error":
                    with conn.transaction():
                        _update(conn, entity, status="completed" if row["completed_at"] else "active",
                                error_message=None)  # fmt: skip
                _run(engine.url, conn, erp, entity, window, clock, dagster_run_id, on_chunk, result_obj, gate,
                     read_done)  # fmt: skip
        except Exception as exc:  # the reason goes to the schedule; the next tick retries
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            log.warning("erp background %s: %s", entity, reason)
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.rollback()
            with conn.transaction():
                _update(conn, entity, status="error", error_message=reason[:2000], next_run_at=now + TICK_INTERVAL,
                        last_run_at=now)  # fmt: skip
            result_obj.outcome, result_obj.reason = "error", reason
        final = _read(conn, entity)
        assert final is not None
        result_obj.progress = progress_of(final, clock.now())
        return result_obj


def _watch_client(conn: psycopg.Connection) -> None:
    if conn.info.server_version >= 140000:
        # A killed worker's backend notices within seconds (even while it waits on a lock), rolls back
        # its chunk and frees this table's lock for the next tick.
        conn.execute("SET client_connection_check_interval = '2s'")


@contextmanager
def _lanes(url: URL) -> Iterator[list[psycopg.Connection]]:
    with ExitStack() as stack:
        lanes = []
        for _ in range(LANES):
            lane = stack.enter_context(db.raw_connection(url, autocommit=True))
            _watch_client(lane)
            lane.execute("SELECT set_config('application_name', %s, false)", (LANE_APPLICATION_NAME,))
            lanes.append(lane)
        yield lanes


def _skip_reason(row: dict[str, Any], now: datetime) -> str | None:
    if row["status"] == "paused" or not row["is_enabled"]:
        return "paused"
    if window_at(row["sync_window_start"], row["sync_window_end"], row["timezone"], now) is None:
        return "outside the window"
    if row["next_run_at"] is not None and now < row["next_run_at"]:
        return f"not due before {row['next_run_at'].isoformat()}"
    return None


def _context(conn: psycopg.Connection, dagster_run_id: str | None) -> LoadContext:
    row = conn.execute(
        "SELECT id FROM bridge.accounts WHERE integration = %s AND name = %s", (INTEGRATION, ACCOUNT_NAME)
    ).fetchone()
    if row is None:
        raise RuntimeError("the ERP account is missing: run `sync-pipelines background create` first")
    return LoadContext(INTEGRATION, row[0], "background", dagster_run_id, None, SPECS)


def _move_chunk(
    conn: psycopg.Connection,
    chunk: source.Chunk,
    ctx: LoadContext,
    *,
    on_staged: Callable[[], None] | None = None,
    before_apply: Callable[[], None] | None = None,
    before_validate: Callable[[], None] | None = None,
) -> tuple[int, Any, BatchCounts]:
    """Load one keyset chunk; the caller's open transaction commits it with the checkpoint. `on_staged` is
    called once the chunk is in staging (its rows and last rowversion known, the source connection free);
    `before_validate` once it is normalised, before it writes rows another table's batch could also write
    (DLQ rows); `before_apply` once it is validated, before it touches core."""
    if not source.has_rows(chunk.conn, chunk.entity, chunk.after, chunk.until):
        return 0, None, BatchCounts()
    spec = SPECS[chunk.entity]
    staging = sql.Identifier(spec.staging.schema or "staging", spec.staging.name)

    def relay(warehouse: psycopg.Connection, batch_id: uuid.UUID) -> Staged:
        staged = chunk.relay(warehouse, staging, batch_id, ctx.account_id)
        if on_staged is not None:
            on_staged()
        return staged

    batch_id, counts = load_batch(conn, spec, ctx, (), stager=relay, before_apply=before_apply,
                                  before_validate=before_validate)  # fmt: skip
    conn.execute(
        "UPDATE bridge.sync_batches SET cursor_before = %s, cursor_after = %s WHERE id = %s",
        (str(chunk.after), str(chunk.last_rowversion), batch_id),
    )
    return chunk.rows, batch_id, counts


def _run(
    url: URL,
    conn: psycopg.Connection,
    erp: psycopg.Connection,
    entity: str,
    window: Window,
    clock: Clock,
    dagster_run_id: str | None,
    on_chunk: OnChunk | None,
    result: TickResult,
    gate: Callable[[], None] | None = None,
    read_done: Callable[[], None] | None = None,
) -> None:
    ctx = _context(conn, dagster_run_id)
    row = _read(conn, entity)
    assert row is not None
    if row["status"] == "active":
        # A pass reads keys in order from where it last committed: core has none of them unless a delta or a
        # webhook got there first, and the load path falls back to the upsert when it meets one.
        ctx.insert_first.add(SPECS[entity].core.fullname)
        try:
            with _lanes(url) as lanes:
                finished = _run_pass(conn, lanes, erp, entity, row, window, clock, ctx, on_chunk, result, gate,
                                     read_done)  # fmt: skip
        finally:
            ctx.insert_first.clear()
        if not finished:
            return
    _run_delta(conn, erp, entity, row, window, clock, ctx, on_chunk, result, gate)


@dataclass
class _InFlight:
    chunk: source.Chunk
    future: Future[tuple[int, Any, BatchCounts]]
    staged: threading.Event


def _pass_chunk(
    lane: psycopg.Connection,
    chunk: source.Chunk,
    ctx: LoadContext,
    until: int,
    now: datetime,
    staged: threading.Event,
    previous: Future[tuple[int, Any, BatchCounts]] | None,
    gate: Callable[[], None] | None = None,
) -> tuple[int, Any, BatchCounts]:
    """One chunk of the pass on its lane, in one transaction with the checkpoint after it."""

    def after_previous() -> None:
        # Up to here this chunk wrote only rows of its own; it touches core (and the schedule row) only once
        # the chunk before it has committed, and rolls back if that one failed.
        if previous is not None:
            previous.result()

    try:
        with lane.transaction():
            # Every chunk waits at the gate (its parent table's turn in the tick has finished) before it writes
            # a DLQ row: a parent table releasing its children can write the child table's DLQ rows.
            moved, batch_id, counts = _move_chunk(lane, chunk, ctx, on_staged=staged.set, before_apply=after_previous,
                                                  before_validate=gate)  # fmt: skip
            if moved:
                checkpoint = Checkpoint(int(chunk.last_rowversion or chunk.after), until)
                lane.execute(
                    "UPDATE bridge.background_sync_schedule SET rows_done = rows_done + %s, "
                    "rows_done_today = rows_done_today + %s, current_offset = %s, last_run_at = %s, "
                    "updated_at = now() WHERE source_system = %s AND entity_name = %s",
                    (moved, moved, checkpoint.dump(), now, SOURCE_SYSTEM, chunk.entity),
                )
    finally:
        staged.set()
    return moved, batch_id, counts


def _inactive_reason(row: dict[str, Any] | None) -> str | None:
    """Why a pass must not start another chunk on this schedule row, or None while it is active."""
    if row is not None and row["status"] == "active":
        return None
    return "paused" if row is not None and row["status"] == "paused" else "no longer active"


def _run_pass(
    conn: psycopg.Connection,
    lanes: list[psycopg.Connection],
    erp: psycopg.Connection,
    entity: str,
    row: dict[str, Any],
    window: Window,
    clock: Clock,
    ctx: LoadContext,
    on_chunk: OnChunk | None,
    result: TickResult,
    gate: Callable[[], None] | None = None,
    read_done: Callable[[], None] | None = None,
) -> bool:
    """Move chunks of the pass; True once the pass has read everything up to its ceiling.

    Chunk k+1's keyset starts where chunk k's staged rows end, so it is planned (and its relay started on the
    other lane) as soon as k is in staging: its relay, normalising and validating overlap k's upsert. The
    source connection serves one relay at a time, and only one chunk per lane is ever in flight, so at
    most two chunks sit in staging and memory stays flat."""
    checkpoint = Checkpoint.load(row["current_offset"])
    per_day, chunk_size = int(row["rows_per_day"]), int(row["chunk_size"])
    planned_today = int(row["rows_done_today"])  # committed tonight, plus what the chunks in flight carry
    after = checkpoint.after
    in_flight: deque[_InFlight] = deque()
    submitted = 0
    finished = share_read = False
    stop_reason: str | None = None

    def collect() -> None:
        item = in_flight.popleft()
        moved, batch_id, counts = item.future.result()
        result.counts.add(counts)
        if batch_id is not None:
            result.batch_ids.append(str(batch_id))
        result.rows_moved += moved
        if moved and on_chunk is not None:
            on_chunk(entity, moved)

    with ThreadPoolExecutor(max_workers=len(lanes), thread_name_prefix="erp-lane") as pool:
        try:
            while True:
                # Whether tonight's share is all read is known before a lane is free: the table says so at once
                # (read_done below) while its chunks still upsert, so the next table's relay overlaps them.
                # What that means for the pass is decided once they have committed (below).
                quota_left = per_day - planned_today
                if quota_left <= 0:
                    share_read = True
                    break
                if len(in_flight) == len(lanes):
                    collect()  # frees the lane the next chunk is about to use
                now = clock.now()
                if now >= window.end:
                    stop_reason = "the window closed"
                    break
                inactive = _inactive_reason(_read(conn, entity))
                if inactive is not None:
                    result.reason = inactive
                    break
                limit = min(chunk_size, quota_left)
                chunk = source.Chunk(erp, entity, after, checkpoint.until, limit)
                staged = threading.Event()
                previous = in_flight[-1].future if in_flight else None
                future = pool.submit(_pass_chunk, lanes[submitted % len(lanes)], chunk, ctx, checkpoint.until,
                                     now, staged, previous, gate)  # fmt: skip
                submitted += 1
                in_flight.append(_InFlight(chunk, future, staged))
                # The next chunk's keyset needs this one's last rowversion, known once it is in staging.
                while not staged.wait(0.05):
                    if future.done():
                        break
                if not staged.is_set() or (future.done() and future.exception() is not None):
                    while in_flight:
                        collect()  # raises the first failure, in commit order
                planned_today += chunk.rows
                if chunk.rows < limit:
                    finished = True
                    break
                after = int(chunk.last_rowversion or after)
            if read_done is not None:
                read_done()  # every chunk of tonight's share is in staging: the next table may start reading
            while in_flight:
                collect()
        finally:
            # On an error the chunks still in flight commit or roll back before their connections close.
            wait([item.future for item in in_flight])
    if share_read:
        # A pause that came while tonight's last chunks committed holds, as it would before any other chunk.
        inactive = _inactive_reason(_read(conn, entity))
        if inactive is not None:
            result.reason = inactive
        elif not source.has_rows(erp, entity, after, checkpoint.until):
            finished = True
        else:
            stop_reason = "tonight's quota is met"
    if stop_reason is not None:
        _stop(conn, entity, window, row, clock.now(), result, stop_reason)
    if not finished:
        return False
    # Everything up to the ceiling is in core: from here on the delta path takes rows above it.
    now = clock.now()
    with conn.transaction():
        _update(conn, entity, status="completed", completed_at=now, last_run_at=now, next_run_at=None)
        conn.execute(
            """
            INSERT INTO bridge.erp_sync_state (entity_name, source_system, last_sync_rowversion, last_sync_timestamp,
                                               rows_synced, status, error_message, updated_at)
            VALUES (%s, %s, %s, %s, %s, 'idle', NULL, now())
            ON CONFLICT (entity_name, source_system) DO UPDATE
            SET last_sync_rowversion = EXCLUDED.last_sync_rowversion,
                last_sync_timestamp = EXCLUDED.last_sync_timestamp, rows_synced = EXCLUDED.rows_synced,
                status = 'idle', error_message = NULL, updated_at = now()
            """,
            (entity, SOURCE_SYSTEM, checkpoint.until, now, int(row["rows_done"]) + result.rows_moved),
        )
    result.reason = "the pass is complete"
    return True


def _run_delta(
    conn: psycopg.Connection,
    erp: psycopg.Connection,
    entity: str,
    row: dict[str, Any],
    window: Window,
    clock: Clock,
    ctx: LoadContext,
    on_chunk: OnChunk | None,
    result: TickResult,
    gate: Callable[[], None] | None = None,
) -> None:
    """Everything above the last rowversion seen, in chunks, until caught up or the window closes."""
    state = conn.execute(
        "SELECT last_sync_rowversion FROM bridge.erp_sync_state WHERE entity_name = %s AND source_system = %s",
        (entity, SOURCE_SYSTEM),
    ).fetchone()
    after = int(state[0]) if state and state[0] is not None else 0
    chunk_size = int(row["chunk_size"])
    while True:
        now = clock.now()
        if now >= window.end:
            _stop(conn, entity, window, row, now, result, "the window closed")
            return
        current = _read(conn, entity)
        if current is None or current["status"] != "completed":
            result.reason = "paused" if current and current["status"] == "paused" else "no longer active"
            return
        chunk = source.Chunk(erp, entity, after, None, chunk_size)
        with conn.transaction():
            moved, batch_id, counts = _move_chunk(conn, chunk, ctx, before_validate=gate)
            result.counts.add(counts)
            if batch_id is not None:
                result.batch_ids.append(str(batch_id))
            if moved:
                after = int(chunk.last_rowversion or after)
                conn.execute(
                    "UPDATE bridge.erp_sync_state SET last_sync_rowversion = %s, last_sync_timestamp = %s, "
                    "last_batch_id = %s, rows_synced = rows_synced + %s, status = 'idle', error_message = NULL, "
                    "updated_at = now() WHERE entity_name = %s AND source_system = %s",
                    (after, now, batch_id, moved, entity, SOURCE_SYSTEM),
                )
        result.delta_rows += moved
        if moved and on_chunk is not None:
            on_chunk(entity, moved)
        if moved < chunk_size:
            break
    now = clock.now()
    with conn.transaction():
        _update(conn, entity, last_run_at=now, next_run_at=now + TICK_INTERVAL)
    result.reason = (result.reason + "; " if result.reason else "") + "the delta is caught up"


def _stop(
    conn: psycopg.Connection,
    entity: str,
    window: Window,
    row: dict[str, Any],
    now: datetime,
    result: TickResult,
    reason: str,
) -> None:
    upcoming = next_window_start(row["sync_window_start"], row["sync_window_end"], row["timezone"], now)
    with conn.transaction():
        _update(conn, entity, next_run_at=upcoming, last_run_at=now)
    result.reason = (result.reason + "; " if result.reason else "") + reason


def count_core(engine: sa.Engine, entity: str) -> int:
    core = SPECS[entity].core
    with engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(core).where(core.c.deleted_at.is_(None))).scalar_one()
        )


def core_checksum(engine: sa.Engine, entity: str) -> tuple[int, str]:
    """Live core rows of an entity and the checksum over their primary keys and rowversions, comparable with
    `source.checksum` of the source table."""
    from sync_pipelines.defs.erp.entities import PRIMARY_KEYS

    core = SPECS[entity].core
    keys = ", ".join(PRIMARY_KEYS[entity])
    with db.raw_connection(engine.url, autocommit=True) as conn:
        # source.checksum reads a table named like the source's: a view of the key columns stands in for it.
        conn.execute("CREATE SCHEMA IF NOT EXISTS erp_check")
        conn.execute(
            f"CREATE OR REPLACE VIEW erp_check.{entity} AS SELECT {keys}, rowversion "
            f"FROM {core.schema}.{core.name} WHERE deleted_at IS NULL"
        )
        return count_core(engine, entity), source.checksum(conn, f"erp_check.{entity}")


def simulate_nights(
    engine: sa.Engine,
    erp_url: URL | str,
    nights: int,
    clock: SimulatedClock,
    entities: Iterable[str] | None = None,
    on_night: Callable[[int, list[TickResult]], None] | None = None,
) -> list[Progress]:
    """Run `nights` nights in simulated time: each night a tick at its window's start and one a quarter of an
    hour later (what the schedule would do; the later one finds tonight's quota met). For demos and tests."""
    rows = _rows(engine, entities)
    if not rows:
        raise ValueError("no background sync yet: create one first")
    first = rows[0]
    for night in range(nights):
        clock.set(
            next_window_start(first["sync_window_start"], first["sync_window_end"], first["timezone"], clock.now())
        )
        results = tick(engine, erp_url, entities, clock=clock)
        clock.advance(TICK_INTERVAL)
        results += [r for r in tick(engine, erp_url, entities, clock=clock) if r.outcome != "skipped"]
        if on_night is not None:
            on_night(night + 1, results)
    return status(engine, entities, clock=clock)
