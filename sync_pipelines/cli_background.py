"""`sync-pipelines background`: the ERP's multi-night background sync (create, status, pause, resume, tick)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click

from sync_pipelines.cli_errors import fail_cleanly
from sync_pipelines.lib import db, interrupts

# Each chunk commits with its checkpoint; an interrupted chunk rolls back.
STOPPED = "stopped at the last committed chunk; the next tick resumes from there"


def _source_unreachable() -> type[BaseException]:
    from sync_pipelines.defs.erp.source import SourceUnreachable

    return SourceUnreachable


# Bad windows, zones and entity names come back from the background module as ValueError.
_fail_cleanly = fail_cleanly(_source_unreachable(), ValueError)


def _engine() -> Any:
    from sync_pipelines.lib import migrations

    url = db.ensure_databases()
    migrations.upgrade(url)
    return db.get_engine(url)


def _clock(now: str | None) -> Any:
    from sync_pipelines.defs.erp import background

    if not now:
        return background.SystemClock()
    moment = datetime.fromisoformat(now)
    if moment.tzinfo is None:
        raise ValueError(f"--now {now!r}: give a time zone, like 2026-11-23T19:00:00+01:00")
    return background.SimulatedClock(moment)


_ENTITIES = click.argument("entities", nargs=-1)
_NOW = click.option("--now", help="Act as if it were this ISO 8601 instant (a simulated night).")


@click.group("background")
def background_group() -> None:
    """The ERP's background sync: each table moved over several nights, inside a night window."""


@background_group.command("create")
@_ENTITIES
@click.option("--window", default=lambda: os.environ.get("SYNC_ERP_WINDOW", "19:00-07:00"), show_default="19:00-07:00",
              help="Night window HH:MM-HH:MM in --timezone; an end before the start runs past midnight.")  # fmt: skip
@click.option("--timezone", "tz", default=lambda: os.environ.get("SYNC_ERP_TIMEZONE", "UTC"), show_default="UTC",
              help="IANA time zone of the window (the site's), e.g. Europe/Stockholm.")  # fmt: skip
@click.option("--days", default=7, show_default=True, help="Nights the pass is spread over.")
@click.option("--chunk-size", default=50_000, show_default=True, help="Rows per committed chunk.")
@click.option("--restart", is_flag=True, help="Start an existing table's pass over from the beginning.")
@_NOW
@_fail_cleanly
def background_create(
    entities: tuple[str, ...], window: str, tz: str, days: int, chunk_size: int, restart: bool, now: str | None
) -> None:
    """Plan a pass for ENTITIES (default: every ERP table) from the source's row counts."""
    from sync_pipelines.defs.erp import background
    from sync_pipelines.defs.erp.source import erp_url

    engine = _engine()
    plans = background.create(engine, erp_url(), entities or None, window=background.parse_window(window),
                              timezone=tz, days=days, chunk_size=chunk_size, restart=restart,
                              clock=_clock(now))  # fmt: skip
    for p in plans:
        click.echo(
            f"{p.entity}: {p.total_rows} rows over {days} nights, {p.rows_per_day} a night in {p.window} {p.timezone}"
            f"; projected finish night {p.projected_finish_night}"
        )


@background_group.command("status")
@_ENTITIES
@_NOW
@_fail_cleanly
def background_status(entities: tuple[str, ...], now: str | None) -> None:
    """Progress per table: rows done, percent, rows left, nights left and the projected finish night."""
    from sync_pipelines.defs.erp import background

    rows = background.status(_engine(), entities or None, clock=_clock(now))
    if not rows:
        click.echo("no background sync yet: `sync-pipelines background create`")
        return
    click.echo(
        f"{'table':<28}{'status':<11}{'done':>10}{'total':>10}{'pct':>7}{'left':>10}{'nights':>7}  "
        "finish night / next run"
    )
    for p in rows:
        click.echo(
            f"{p.entity:<28}{p.status:<11}{p.rows_done:>10}{p.total_rows:>10}{p.percent:>6.1f}%{p.rows_left:>10}"
            f"{p.nights_left:>7}  {p.projected_finish_night or '-'} / {p.next_run_at or '-'}"
            + (f"  error: {p.error_message}" if p.error_message else "")
        )


@background_group.command("pause")
@_ENTITIES
@_fail_cleanly
def background_pause(entities: tuple[str, ...]) -> None:
    """Stop moving ENTITIES (default: all) until resumed; a running chunk still commits."""
    from sync_pipelines.defs.erp import background

    changed = background.pause(_engine(), entities or None)
    click.echo(f"paused: {', '.join(changed) or 'nothing (already paused, or no schedule)'}")


@background_group.command("resume")
@_ENTITIES
@_fail_cleanly
def background_resume(entities: tuple[str, ...]) -> None:
    """Resume ENTITIES (default: all) at their checkpoint from the next tick inside the window."""
    from sync_pipelines.defs.erp import background

    changed = background.resume(_engine(), entities or None)
    click.echo(f"resumed: {', '.join(changed) or 'nothing (none was paused)'}")


@background_group.command("tick")
@_ENTITIES
@_NOW
@_fail_cleanly
@interrupts.exit_on_interrupt(STOPPED)
def background_tick(entities: tuple[str, ...], now: str | None) -> None:
    """Run one tick now, as the schedule would: move what the window and tonight's quota allow."""
    from sync_pipelines.defs.erp import background
    from sync_pipelines.defs.erp.source import erp_url

    # A checkpoint after each committed chunk: an interrupt that surfaced as a table's error stops the tick too.
    results = background.tick(
        _engine(), erp_url(), entities or None, clock=_clock(now), on_chunk=lambda _e, _n: interrupts.check(STOPPED)
    )
    failed = False
    for r in results:
        failed |= r.outcome == "error"
        click.echo(f"{r.entity}: {r.outcome}, {r.rows_moved} pass rows, {r.delta_rows} delta rows ({r.reason})")
    sys.exit(1 if failed else 0)


def _night_report(engine: Any, clock: Any, entities: tuple[str, ...], echo: Callable[[str], Any]) -> Callable:
    from sync_pipelines.defs.erp import background

    def report(night: int, results: list[Any]) -> None:
        interrupts.check(STOPPED)  # the next night must not start after an interrupt a table's error absorbed
        moved = sum(r.rows_moved + r.delta_rows for r in results)
        echo(f"night {night} ({clock.now():%Y-%m-%d %H:%M} UTC): moved {moved} rows")
        for p in background.status(engine, entities or None, clock=clock):
            echo(
                f"  {p.entity:<28}{p.status:<11}{p.rows_done:>9}/{p.total_rows:<9}{p.percent:>6.1f}%  "
                f"nights left {p.nights_left}" + (f"  error: {p.error_message}" if p.error_message else "")
            )
        for r in results:
            if r.outcome == "error":
                echo(f"  {r.entity}: error: {r.reason}")

    return report


@background_group.command("simulate")
@_ENTITIES
@click.option("--nights", default=3, show_default=True, help="Nights to run in simulated time.")
@click.option("--now", "start", required=True, help="Simulated start, ISO 8601 with a zone; nights follow it.")
@_fail_cleanly
@interrupts.exit_on_interrupt(STOPPED)
def background_simulate(entities: tuple[str, ...], nights: int, start: str) -> None:
    """Run NIGHTS nights of the schedule in simulated time (seconds, not days) and print progress each night."""
    from sync_pipelines.defs.erp import background
    from sync_pipelines.defs.erp.source import erp_url

    clock = _clock(start)
    engine = _engine()
    report = _night_report(engine, clock, entities, click.echo)
    background.simulate_nights(engine, erp_url(), nights, clock, entities or None, on_night=report)


def demo_background_pass(
    url: Any, *, nights: int = 3, scale: int = 20_000, echo: Callable[[str], Any] = click.echo, instance: Any = None
) -> bool:
    """The demo's ERP step: a generated sandbox ERP moved into core over `nights` simulated nights, each night-window
    tick a run of the `erp_background_sync` job on `instance` (an ephemeral one when None), so the pass's progress
    (rows moved, rows left, nights left) is each run's materialization metadata. A line per night with the rows moved
    and their rate. True when every run succeeded, every table completed and core holds as many rows as the source."""
    import dagster as dg
    from sqlalchemy.engine import make_url

    from sync_pipelines import operations
    from sync_pipelines.definitions import defs
    from sync_pipelines.defs.erp import background
    from sync_pipelines.defs.erp.assets import ErpResource
    from sync_pipelines.lib.resources import WarehouseResource
    from sync_pipelines.sandbox import erp

    erp_url = erp.create_database()
    counts = erp.generate(erp_url, seed=2026, scale=scale)
    engine = db.get_engine(url)
    clock = background.SimulatedClock(datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
    window, zone = background.DEFAULT_WINDOW, "UTC"
    echo(f"ERP background sync: {sum(counts.values()):,} source rows over {nights} simulated nights (19:00-07:00 UTC), "
         "each night-window tick a Dagster run")  # fmt: skip
    background.create(engine, erp_url, days=nights, chunk_size=2_000, restart=True, clock=clock, window=window,
                      timezone=zone)  # fmt: skip
    job = defs.resolve_job_def("erp_background_sync")
    resources = {"erp": ErpResource(database_url=db.render_secret_url(make_url(str(erp_url)))),
                 "warehouse": WarehouseResource()}  # fmt: skip
    ok = True
    runs = 0
    owned = instance is None
    instance = instance if instance is not None else dg.DagsterInstance.ephemeral()
    try:
        for night in range(1, nights + 1):
            clock.set(background.next_window_start(*window, zone, clock.now()))
            started, moved = time.monotonic(), 0
            # What the schedule does: a tick at the window's start and one a quarter of an hour later (which finds
            # tonight's quota met).
            for tick in range(2):
                if tick:
                    clock.advance(background.TICK_INTERVAL)
                tick_config = {"ops": {"erp_background": {"config": {"now": clock.now().isoformat()}}}}
                result = job.execute_in_process(
                    instance=instance, resources=resources, raise_on_error=False,
                    run_config={**operations.QUIET, **tick_config},
                )  # fmt: skip
                runs += 1
                ok &= result.success
                for event in result.get_asset_materialization_events():
                    meta = event.step_materialization_data.materialization.metadata
                    if event.asset_key.path[1] == "core":
                        moved += sum(int(meta[k].value) for k in ("rows_moved_this_run", "delta_rows_this_run")
                                     if k in meta)  # fmt: skip
            seconds = time.monotonic() - started
            echo(f"night {night} ({clock.now():%Y-%m-%d %H:%M} UTC): moved {moved} rows in 2 Dagster runs, "
                 f"{seconds:.1f} s ({moved / seconds if seconds else 0:,.0f} rows/s)")  # fmt: skip
            for p in background.status(engine, clock=clock):
                echo(f"  {p.entity:<28}{p.status:<11}{p.rows_done:>9}/{p.total_rows:<9}{p.percent:>6.1f}%  "
                     f"rows left {p.rows_left:<7} nights left {p.nights_left}"
                     + (f"  error: {p.error_message}" if p.error_message else ""))  # fmt: skip
    finally:
        if owned:
            instance.dispose()
    final = background.status(engine, clock=clock)
    in_core = {entity: background.count_core(engine, entity) for entity in counts}
    ok = ok and all(p.status == "completed" for p in final) and in_core == counts
    echo(f"ERP core rows {'match' if ok else 'DO NOT match'} the source after {runs} Dagster runs: {in_core}")
    return ok
