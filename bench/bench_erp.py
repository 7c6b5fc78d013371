"""ERP (sandbox IFS database) -> core through the background engine, beside the raw-COPY ceiling.

Both databases live on the project's Postgres server (the embedded one unless SYNC_DATABASE_URL says
otherwise), freshly created per size:

- ours:    the full background pass as production runs it: `background.create(days=BENCH_ERP_DAYS)` (7), then
           night after night (a simulated clock) a tick at window start and one 15 minutes later, until the
           pass is complete: every ERP table read with the rowversion keyset, 50,000-row chunks, each chunk
           relayed by COPY from the source into staging, normalised in SQL, upserted into core with audit
           rows, its sync_batches row and the checkpoint in one transaction. Rows/s is over the ticks' real
           time; each night's real time is printed beside its window (12 h) to show it fits. Afterwards
           (untimed) every table is checked: status completed, core count and checksum (keys, rowversions)
           equal to the source's;
- ceiling: per table `COPY (SELECT <columns> FROM ifsapp.<table> ORDER BY rowversion) TO STDOUT` piped
           into `COPY ifsapp.<table> FROM STDIN` of an empty copy of the ERP schema in the warehouse
           (primary key and rowversion index in place, as core has its unique key), one transaction per table.

Each measurement runs in its own spawned child and reports wall time of the load (setup excluded) and the
child's peak RSS (`ru_maxrss`). Knobs (environment): BENCH_ERP_SIZES="1000000,7000000", BENCH_ERP_CHUNK=50000,
BENCH_ERP_DAYS=7, BENCH_ERP_ONLY="ours,ceiling", BENCH_ERP_KEEP=1 (keep the bench databases).
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import time
from datetime import UTC, datetime, timedelta
from typing import Any

SIZES = [int(s) for s in os.environ.get("BENCH_ERP_SIZES", "1000000,7000000").split(",") if s.strip()]
DAYS = int(os.environ.get("BENCH_ERP_DAYS", "7"))
CHUNK = int(os.environ.get("BENCH_ERP_CHUNK", "50000"))
ONLY = [s.strip() for s in os.environ.get("BENCH_ERP_ONLY", "ours,ceiling").split(",") if s.strip()]
KEEP = os.environ.get("BENCH_ERP_KEEP") == "1"
SEED = 7
TARGET_CEILING = 0.5
TARGET_RSS_MB = 300
# Inside the default 19:00-07:00 UTC window.
NIGHT = datetime(2026, 11, 23, 19, 0, tzinfo=UTC)


def _fresh_database(name: str) -> Any:
    from sync_pipelines.lib import db

    with db.raw_connection(db.server_url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return db.server_url(name)


def _drop(name: str) -> None:
    from sync_pipelines.lib import db

    with db.raw_connection(db.server_url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _ours(warehouse: str, source: str, out: Any) -> None:
    from sync_pipelines.defs.erp import background
    from sync_pipelines.defs.erp.entities import LOAD_ORDER
    from sync_pipelines.lib import db
    from sync_pipelines.sandbox import erp

    engine = db.get_engine(warehouse)
    clock = background.SimulatedClock(NIGHT - timedelta(hours=1))
    background.create(engine, source, days=DAYS, chunk_size=CHUNK, clock=clock)
    seconds, rows, nights, errors = 0.0, 0, [], {}
    for night in range(1, DAYS + 2):
        if all(p.status == "completed" for p in background.status(engine, clock=clock)):
            break
        clock.set(NIGHT + timedelta(days=night - 1))  # the default window opens at 19:00 UTC
        started = time.perf_counter()
        results = background.tick(engine, source, clock=clock)
        clock.advance(background.TICK_INTERVAL)
        results += background.tick(engine, source, clock=clock)
        spent = time.perf_counter() - started
        moved = sum(r.rows_moved + r.delta_rows for r in results)
        errors.update({r.entity: r.reason for r in results if r.outcome == "error"})
        seconds += spent
        rows += moved
        nights.append((night, moved, spent))
        print(f"  night {night}: {moved:>10,} rows in {spent:6.1f}s real (window 12 h)", flush=True)
    done = {p.entity: p.status for p in background.status(engine, clock=clock)}
    source_state = {t: (n, erp.checksum(source, t)) for t, n in erp.row_counts(source).items()}
    core_state = {entity: background.core_checksum(engine, entity) for entity in LOAD_ORDER}
    out.put({"seconds": seconds, "rows": rows, "rss_mb": _peak_rss_mb(), "errors": errors, "nights": nights,
             "completed": all(status == "completed" for status in done.values()),
             "equal": source_state == core_state})  # fmt: skip


def _ceiling(warehouse: str, source: str, out: Any) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    from sync_pipelines.defs.erp.entities import SOURCES
    from sync_pipelines.lib import db
    from sync_pipelines.sandbox import erp

    erp.create_schema(warehouse)
    rows = 0
    started = time.perf_counter()
    with (
        psycopg.connect(db.libpq_uri(make_url(source))) as src,
        psycopg.connect(db.libpq_uri(make_url(warehouse))) as dst,
    ):
        for entity, table in SOURCES.items():
            columns = ", ".join(table.columns)
            with (
                src.cursor().copy(f"COPY (SELECT {columns} FROM ifsapp.{entity} ORDER BY rowversion) TO STDOUT") as r,
                dst.cursor().copy(f"COPY ifsapp.{entity} ({columns}) FROM STDIN") as w,
            ):
                for data in r:
                    w.write(data)
            dst.commit()
            rows += dst.execute(f"SELECT count(*) FROM ifsapp.{entity}").fetchone()[0]  # type: ignore[index]
        dst.commit()
    out.put({"seconds": time.perf_counter() - started, "rows": rows, "rss_mb": _peak_rss_mb(), "errors": {}})


def _measure(target: Any, warehouse: str, source: str) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    child = ctx.Process(target=target, args=(warehouse, source, out))
    child.start()
    result = out.get()
    child.join()
    return result


def main() -> None:
    from sync_pipelines.lib import db, migrations
    from sync_pipelines.sandbox import erp

    db.server_url("postgres")  # start (or reuse) the embedded server before anything is timed
    for size in SIZES:
        source_url = _fresh_database("bench_erp_source")
        started = time.perf_counter()
        counts = erp.generate(source_url, seed=SEED, scale=size)
        print(f"source: {sum(counts.values()):,} rows generated in {time.perf_counter() - started:.1f}s {counts}")
        results: dict[str, dict[str, Any]] = {}
        for name in ONLY:
            warehouse_url = _fresh_database(f"bench_erp_{name}")
            if name == "ours":
                migrations.upgrade(warehouse_url)
            target = _ours if name == "ours" else _ceiling
            results[name] = _measure(target, db.render_secret_url(warehouse_url), db.render_secret_url(source_url))
            r = results[name]
            print(
                f"{name:<8} {size:>10,} rows: {r['rows']:>10,} moved in {r['seconds']:7.1f}s = "
                f"{r['rows'] / r['seconds']:>9,.0f} rows/s, peak RSS {r['rss_mb']:.0f} MB"
                + (f", errors {r['errors']}" if r["errors"] else "")
            )
            if "nights" in r:
                print(
                    f"         pass: {len(r['nights'])} nights, every table completed: {r['completed']}, "
                    f"core equal to source (counts and checksums): {r['equal']}"
                )
            if not KEEP:
                _drop(f"bench_erp_{name}")
        if "ours" in results and "ceiling" in results:
            ours, ceiling = results["ours"], results["ceiling"]
            ratio = (ours["rows"] / ours["seconds"]) / (ceiling["rows"] / ceiling["seconds"])
            verdict = "met" if ratio >= TARGET_CEILING else "MISSED"
            print(
                f"ours / ceiling = {ratio:.2f} (target >= {TARGET_CEILING}: {verdict})"
                f"; peak RSS {ours['rss_mb']:.0f} MB (target < {TARGET_RSS_MB}: "
                f"{'met' if ours['rss_mb'] < TARGET_RSS_MB else 'MISSED'})"
            )
        if not KEEP:
            _drop("bench_erp_source")


if __name__ == "__main__":
    main()
