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
- ours1:   the same pass on one lane (`background.LANES = 1`: each chunk relayed only after the one before it
           committed), the A/B of the two-lane pass in the same run;
- ours-seq: the same pass with the tables of a tick one after another (`background.TABLES_AT_ONCE = 1`, as before
           12-07 afternoon), the A/B of overlapping tables in the same run;
- ceiling: per table `COPY (SELECT <columns> FROM ifsapp.<table> ORDER BY rowversion) TO STDOUT` piped
           into `COPY ifsapp.<table> FROM STDIN` of an empty copy of the ERP schema in the warehouse
           (primary key and rowversion index in place, as core has its unique key), one transaction per table;
- floor:   the least the engine's path must write, without the rest of it (see `_floor`): the relay into a
           staging table, a plain INSERT of typed columns into an empty core table, and CREATE audit rows. It
           bounds what the ratio to the ceiling can be for any engine that writes those three;
- dlt:     the peer: dlt's `sql_database` source over the same four ERP tables (`ifsapp` schema, types reflected),
           `write_disposition="merge"` on each table's primary key, into dataset `erp` of a fresh database on the
           same server, in dlt's fastest configuration here: backend BENCH_ERP_DLT_BACKEND (connectorx: each table
           read whole into Arrow; pyarrow: Arrow batches of BENCH_ERP_CHUNK rows) and loader file format
           BENCH_ERP_DLT_FORMAT (parquet: loaded by COPY through ADBC; also csv, insert_values). At 200,000 rows
           on 12-07: connectorx+parquet 57k rows/s, pyarrow+parquet 41k, connectorx+csv 27k, pyarrow+csv 23k,
           pyarrow+insert_values 13k, sqlalchemy+csv 11k. One `pipeline.run` (extract, normalize, load with its
           merge) is timed end to end, source reflection included; afterwards (untimed) every table's count and
           checksum (keys, rowversions) is compared with the source's.

Each measurement runs in its own spawned child and reports wall time of the load (setup excluded) and the
child's peak RSS (`ru_maxrss`). Knobs (environment): BENCH_ERP_SIZES="1000000,7000000", BENCH_ERP_CHUNK=50000,
BENCH_ERP_DAYS=7, BENCH_ERP_ONLY="ours,floor,ceiling" (also: ours1, ours-seq, dlt), BENCH_ERP_ROUNDS=1 (rounds
in which every contestant runs once, in turn, on the same source; the summary takes each one's median),
BENCH_ERP_KEEP=1 (keep the bench databases), BENCH_ERP_PROFILE=1 (ours, ours1 and ours-seq also print where
their time went: wall time per stage, summed over chunks, timed around each statement in the child),
BENCH_ERP_DLT_BACKEND=connectorx, BENCH_ERP_DLT_FORMAT=parquet.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import resource
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

SIZES = [int(s) for s in os.environ.get("BENCH_ERP_SIZES", "1000000,7000000").split(",") if s.strip()]
DAYS = int(os.environ.get("BENCH_ERP_DAYS", "7"))
CHUNK = int(os.environ.get("BENCH_ERP_CHUNK", "50000"))
ONLY = [s.strip() for s in os.environ.get("BENCH_ERP_ONLY", "ours,floor,ceiling").split(",") if s.strip()]
ROUNDS = int(os.environ.get("BENCH_ERP_ROUNDS", "1"))
KEEP = os.environ.get("BENCH_ERP_KEEP") == "1"
DLT_BACKEND = os.environ.get("BENCH_ERP_DLT_BACKEND", "connectorx")
DLT_FORMAT = os.environ.get("BENCH_ERP_DLT_FORMAT", "parquet")
PROFILE = os.environ.get("BENCH_ERP_PROFILE") == "1"
SEED = 7
TARGET_FLOOR = 0.9
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


def _machine_cpu() -> tuple[float, float]:
    """CPU seconds the whole machine has spent busy and waiting on I/O since boot. Every process counts: this
    client, the warehouse's and the source's Postgres backends, the checkpointer, autovacuum, and anything else
    running (the bench expects nothing else)."""
    import psutil

    t = psutil.cpu_times()
    iowait = getattr(t, "iowait", 0.0)
    return sum(t) - t.idle - iowait - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0), iowait


def _process_cpu(pid: int | None) -> float:
    """CPU seconds (user and system) a process on this machine has used: a Postgres backend of the embedded
    server, by its pid. Zero where it cannot be read (a remote server)."""
    import psutil

    if pid is None:
        return 0.0
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return times.user + times.system


class _MachineCpu:
    """Busy and I/O-wait CPU seconds of the machine summed over the timed parts of a run."""

    def __init__(self) -> None:
        self.busy = self.iowait = 0.0
        self._at: tuple[float, float] | None = None

    def start(self) -> None:
        self._at = _machine_cpu()

    def stop(self) -> None:
        assert self._at is not None
        busy, iowait = _machine_cpu()
        self.busy += busy - self._at[0]
        self.iowait += iowait - self._at[1]
        self._at = None

    def result(self) -> dict[str, float]:
        return {"cpu_busy": self.busy, "cpu_iowait": self.iowait}


# Stages of a chunk, by a marker in the statement's text (first match wins).
_STAGES = (
    ("CREATE TEMP TABLE _norm", "normalise (_norm)"),
    ("INSERT INTO bridge.failed_records", "validate (DLQ)"),
    ("CREATE TEMP TABLE _valid", "dedupe (_valid)"),
    ("up AS (", "upsert core + audit"),
    ("INSERT INTO bridge.pending_children", "hold orphans"),
    ("FROM bridge.pending_children", "release children"),
    ("UPDATE bridge.failed_records", "resolve DLQ"),
    ("ANALYZE", "statistics (ANALYZE)"),
    ("FROM pg_class", "statistics (ANALYZE)"),
    ("bridge.sync_batches", "sync_batches rows"),
    ("UPDATE bridge.background_sync_schedule SET rows_done", "checkpoint"),
    ("count(*), max((raw->>'rowversion')", "relay: read back count"),
    ("bridge.field_mappings", "read mappings"),
    ("SELECT 1 FROM", "has_rows (source)"),
    ("FROM bridge.background_sync_schedule", "schedule reads"),
    ("UPDATE bridge.background_sync_schedule", "schedule updates"),
    ("pg_try_advisory_lock", "tick: lock"),
    ("set_config('work_mem'", "per-chunk settings, temp tables"),
    ("DROP TABLE IF EXISTS _norm", "per-chunk settings, temp tables"),
    ("ALTER TABLE _norm RENAME", "per-chunk settings, temp tables"),
    ("FROM bridge.accounts", "tick: account"),
    ("client_connection_check_interval", "connection setup"),
    ("application_name", "connection setup"),
    ("max(rowversion), 0), count(*)", "create: high water"),
)


class _Profile:
    """Wall time per stage of ours, summed over chunks (lanes overlap, so stages can sum past the wall time)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.cpu: dict[str, float] = {}  # the Postgres backends' CPU seconds (the source's too, for the relay)
        self.calls: dict[str, int] = {}
        self.chunks: list[tuple[float, float]] = []  # (start, end) of every chunk on its lane
        self.lock = __import__("threading").Lock()

    def add(self, stage: str, seconds: float, cpu: float = 0.0) -> None:
        with self.lock:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds
            self.cpu[stage] = self.cpu.get(stage, 0.0) + cpu
            self.calls[stage] = self.calls.get(stage, 0) + 1

    def install(self) -> None:
        import psycopg

        from sync_pipelines.defs.erp import background
        from sync_pipelines.defs.erp import source as erp_source

        profile = self

        def timed(stage: str, fn: Any) -> Any:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    profile.add(stage, time.perf_counter() - started)

            return wrapper

        execute = psycopg.Cursor.execute

        def timed_execute(cur: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            text = query if isinstance(query, str) else query.as_string(cur.connection)
            stage = next((name for marker, name in _STAGES if marker in text), "other SQL")
            pid = cur.connection.info.backend_pid
            started, cpu = time.perf_counter(), _process_cpu(pid)
            try:
                return execute(cur, query, *args, **kwargs)
            finally:
                profile.add(stage, time.perf_counter() - started, _process_cpu(pid) - cpu)

        psycopg.Cursor.execute = timed_execute  # type: ignore[method-assign]
        psycopg.connect = timed("connect", psycopg.connect)  # type: ignore[assignment]
        commit = psycopg.Transaction.__exit__

        def timed_exit(tx: Any, *args: Any) -> Any:
            started = time.perf_counter()
            try:
                return commit(tx, *args)
            finally:
                if getattr(tx, "_outer_transaction", False):
                    profile.add("commit (or rollback)", time.perf_counter() - started)

        psycopg.Transaction.__exit__ = timed_exit  # type: ignore[method-assign]
        relay = erp_source.Chunk.relay

        def timed_relay(chunk: Any, warehouse: Any, *args: Any, **kwargs: Any) -> Any:
            pids = (chunk.conn.info.backend_pid, warehouse.info.backend_pid)
            started, cpu = time.perf_counter(), sum(map(_process_cpu, pids))
            try:
                return relay(chunk, warehouse, *args, **kwargs)
            finally:
                # The read-back count inside it is timed on its own as well; subtracted in the report.
                profile.add("relay: COPY source -> staging", time.perf_counter() - started,
                            sum(map(_process_cpu, pids)) - cpu)  # fmt: skip

        erp_source.Chunk.relay = timed_relay  # type: ignore[method-assign]
        pass_chunk = background._pass_chunk

        def timed_pass_chunk(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return pass_chunk(*args, **kwargs)
            finally:
                with profile.lock:
                    profile.chunks.append((started, time.perf_counter()))

        background._pass_chunk = timed_pass_chunk  # type: ignore[assignment]

    def report(self, wall: float) -> list[str]:
        seconds = dict(self.seconds)
        cpu = dict(self.cpu)
        if "relay: read back count" in seconds:
            seconds["relay: COPY source -> staging"] -= seconds["relay: read back count"]
            cpu["relay: COPY source -> staging"] -= cpu["relay: read back count"]
        busy = 0.0  # time at least one lane had a chunk in hand
        end = 0.0
        for start, stop in sorted(self.chunks):
            if stop > end:
                busy += stop - max(start, end)
                end = stop
        lines = [
            f"  profile: {len(self.chunks)} chunks, ticks {wall:.1f}s wall, a chunk in hand {busy:.1f}s, "
            f"sum of chunk times {sum(b - a for a, b in self.chunks):.1f}s, no chunk in hand {wall - busy:.1f}s"
        ]
        for stage, value in sorted(seconds.items(), key=lambda kv: -kv[1]):
            lines.append(
                f"    {stage:<34} {value:7.2f}s  {self.calls[stage]:>5} calls, Postgres CPU {cpu.get(stage, 0.0):6.2f}s"
            )
        lines.append(f"    {'Postgres CPU in the statements above':<34} {sum(cpu.values()):7.2f}s")
        return lines


def _ours1(warehouse: str, source: str, out: Any) -> None:
    from sync_pipelines.defs.erp import background

    background.LANES = 1
    _ours(warehouse, source, out)


def _ours_seq(warehouse: str, source: str, out: Any) -> None:
    from sync_pipelines.defs.erp import background

    background.TABLES_AT_ONCE = 1
    _ours(warehouse, source, out)


def _ours(warehouse: str, source: str, out: Any) -> None:
    from sync_pipelines.defs.erp import background
    from sync_pipelines.defs.erp.entities import LOAD_ORDER
    from sync_pipelines.lib import db
    from sync_pipelines.sandbox import erp

    profile = _Profile() if PROFILE else None
    if profile is not None:
        profile.install()
    engine = db.get_engine(warehouse)
    clock = background.SimulatedClock(NIGHT - timedelta(hours=1))
    background.create(engine, source, days=DAYS, chunk_size=CHUNK, clock=clock)
    seconds, rows, nights, errors = 0.0, 0, [], {}
    cpu = _MachineCpu()
    for night in range(1, DAYS + 2):
        if all(p.status == "completed" for p in background.status(engine, clock=clock)):
            break
        clock.set(NIGHT + timedelta(days=night - 1))  # the default window opens at 19:00 UTC
        started = time.perf_counter()
        cpu.start()
        results = background.tick(engine, source, clock=clock)
        clock.advance(background.TICK_INTERVAL)
        results += background.tick(engine, source, clock=clock)
        cpu.stop()
        spent = time.perf_counter() - started
        moved = sum(r.rows_moved + r.delta_rows for r in results)
        errors.update({r.entity: r.reason for r in results if r.outcome == "error"})
        seconds += spent
        rows += moved
        nights.append((night, moved, spent))
        print(f"  night {night}: {moved:>10,} rows in {spent:6.1f}s real (window 12 h)", flush=True)
    if profile is not None:
        print("\n".join(profile.report(seconds)), flush=True)
    done = {p.entity: p.status for p in background.status(engine, clock=clock)}
    source_state = {t: (n, erp.checksum(source, t)) for t, n in erp.row_counts(source).items()}
    core_state = {entity: background.core_checksum(engine, entity) for entity in LOAD_ORDER}
    out.put({"seconds": seconds, "rows": rows, "rss_mb": _peak_rss_mb(), "errors": errors, "nights": nights,
             "completed": all(status == "completed" for status in done.values()),
             "equal": source_state == core_state, **cpu.result()})  # fmt: skip


def _ceiling(warehouse: str, source: str, out: Any) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    from sync_pipelines.defs.erp.entities import SOURCES
    from sync_pipelines.lib import db
    from sync_pipelines.sandbox import erp

    erp.create_schema(warehouse)
    rows = 0
    cpu = _MachineCpu()
    cpu.start()
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
    seconds = time.perf_counter() - started
    cpu.stop()
    out.put({"seconds": seconds, "rows": rows, "rss_mb": _peak_rss_mb(), "errors": {}, **cpu.result()})


def _chunk_starts(src: Any, entity: str, chunk_rows: int | None) -> list[int]:
    """The rowversion after which each chunk of a table starts: one chunk when `chunk_rows` is None."""
    if chunk_rows is None:
        return [0]
    from psycopg import sql

    from sync_pipelines.defs.erp import source as erp_source

    rows = src.execute(
        sql.SQL(
            "SELECT rowversion FROM (SELECT rowversion, row_number() OVER (ORDER BY rowversion) AS n FROM {}) r "
            "WHERE n %% %s = 0 ORDER BY rowversion"
        ).format(erp_source._table(entity)),
        (chunk_rows,),
    ).fetchall()
    src.commit()
    return [0, *(int(r[0]) for r in rows)]


def _floor_chunked(warehouse: str, source: str, out: Any) -> None:
    _floor(warehouse, source, out, chunk_rows=CHUNK)


def _floor(warehouse: str, source: str, out: Any, chunk_rows: int | None = None) -> None:
    """The least the issue's load path must write per row, with nothing else: per table, the rows relayed as
    JSON into a staging table (the production relay), one INSERT … SELECT of typed columns into an empty
    core table, and one INSERT of CREATE audit rows. No normalise step, no validation, no upsert or change
    guard, no dedupe, no checkpoint, one transaction per table. Tables are copies of the real ones
    (`LIKE … INCLUDING ALL`: same columns, keys and indexes) in a scratch schema of a migrated warehouse.
    With `chunk_rows` (floor-chunked) the same statements run per keyset chunk of that many rows, one
    transaction each, as any engine that resumes after a crash from its last commit must commit."""
    import uuid

    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    from sync_pipelines.defs.erp import source as erp_source
    from sync_pipelines.defs.erp.entities import SOURCES, SPECS
    from sync_pipelines.lib import db
    from sync_pipelines.lib.load import SYSTEM_COLUMNS

    rows = 0
    spent: dict[str, float] = {}

    def stage_cpu(stage: str, pids: tuple[int, int], since: float) -> float:
        now = sum(map(_process_cpu, pids))
        spent[stage] = spent.get(stage, 0.0) + now - since
        return now

    with (
        psycopg.connect(db.libpq_uri(make_url(source))) as src,
        psycopg.connect(db.libpq_uri(make_url(warehouse))) as dst,
    ):
        dst.execute("CREATE SCHEMA floor")
        for entity in SOURCES:
            spec = SPECS[entity]
            for kind, table in (("staging", spec.staging), ("core", spec.core), ("audit", None)):
                like = f"{table.schema}.{table.name}" if table is not None else "bridge.audit_log"
                dst.execute(f"CREATE TABLE floor.{kind}_{entity} (LIKE {like} INCLUDING ALL)")
        dst.commit()
        # Where each chunk starts is read before the clock starts: an engine keeps its cursor, it does not scan.
        plan = [(e, a) for e in SOURCES for a in _chunk_starts(src, e, chunk_rows)]
        cpu = _MachineCpu()
        cpu.start()
        started = time.perf_counter()
        for entity, after in plan:
            spec = SPECS[entity]
            batch, account = uuid.uuid4(), uuid.uuid4()
            chunk = erp_source.Chunk(src, entity, after=after, until=None, limit=chunk_rows or 10**12)
            pids = (src.info.backend_pid, dst.info.backend_pid)
            mark = sum(map(_process_cpu, pids))
            chunk.relay(dst, sql.Identifier("floor", f"staging_{entity}"), batch, account)
            mark = stage_cpu("relay: COPY source -> staging", pids, mark)
            targets = [m for m in spec.mappings if m.target_field != "_source_updated_at"]
            typed = [
                sql.SQL("(raw->>{})::{}").format(sql.Literal(m.source_field), sql.SQL(m.data_type)) for m in targets
            ]
            audited = [m.target_field for m in targets if m.target_field not in SYSTEM_COLUMNS]
            names = {
                "core": sql.Identifier("floor", f"core_{entity}"),
                "columns": sql.SQL(", ").join(sql.Identifier(m.target_field) for m in targets),
                "typed": sql.SQL(", ").join(typed),
                "staging": sql.Identifier("floor", f"staging_{entity}"),
                "audit": sql.Identifier("floor", f"audit_{entity}"),
                "entity": sql.Literal(entity),
                "pairs": sql.SQL(", ").join(
                    sql.SQL("{}, {}").format(sql.Literal(c), sql.Identifier(c)) for c in audited
                ),
            }
            insert_core = (
                "INSERT INTO {core} (account_id, period_key, {columns}, _row_hash, _batch_id) "
                "SELECT account_id, period_key, {typed}, _raw_hash, _batch_id FROM {staging}"
            )
            insert_audit = (
                "INSERT INTO {audit} (action, integration, entity_type, entity_id, source_id, account_id, batch_id,"
                " new_value) SELECT 'CREATE', 'erp', {entity}, id, source_id, account_id, _batch_id,"
                " jsonb_build_object({pairs}) FROM "
            )
            if chunk_rows is None:
                dst.execute(sql.SQL(insert_core).format(**names))
                mark = stage_cpu("INSERT typed core rows", pids, mark)
                dst.execute(sql.SQL(insert_audit + "{core}").format(**names))
            else:
                # Core has no index on _batch_id: the chunk's audit rows come from the INSERT's RETURNING.
                dst.execute(
                    sql.SQL(
                        "WITH up AS (" + insert_core + " WHERE _batch_id = %s RETURNING *) " + insert_audit + "up"
                    ).format(**names),
                    (batch,),
                )
            dst.commit()
            stage_cpu("INSERT audit rows, commit", pids, mark)
            rows += chunk.rows
        seconds = time.perf_counter() - started
        cpu.stop()
    if PROFILE:
        print("  floor profile (Postgres CPU, the source's too for the relay):", flush=True)
        for stage, value in spent.items():
            print(f"    {stage:<34} Postgres CPU {value:6.2f}s", flush=True)
    out.put({"seconds": seconds, "rows": rows, "rss_mb": _peak_rss_mb(), "errors": {}, **cpu.result()})


def _dlt(warehouse: str, source: str, out: Any) -> None:
    """dlt's `sql_database` source, merge on the primary keys, into a fresh database of the same server."""
    import tempfile

    os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "ERROR")
    import dlt
    import psycopg
    import sqlalchemy as sa
    from dlt.sources.sql_database import sql_database
    from sqlalchemy.engine import make_url

    from bench.bench_fub import dlt_url
    from sync_pipelines.defs.erp import source as erp_source
    from sync_pipelines.defs.erp.entities import PRIMARY_KEYS, SOURCE_SCHEMA, SOURCES
    from sync_pipelines.lib import db
    from sync_pipelines.sandbox import erp

    tables = list(SOURCES)
    backend_kwargs = {"conn": dlt_url(make_url(source))} if DLT_BACKEND == "connectorx" else None
    cpu = _MachineCpu()
    with tempfile.TemporaryDirectory(prefix="bench_erp_dlt_") as workdir:
        cpu.start()
        started = time.perf_counter()
        engine = sa.create_engine(source)
        data = sql_database(engine, schema=SOURCE_SCHEMA, table_names=tables, backend=DLT_BACKEND,  # type: ignore[arg-type]
                            chunk_size=CHUNK, backend_kwargs=backend_kwargs)  # fmt: skip
        for table in tables:
            data.resources[table].apply_hints(write_disposition="merge", primary_key=list(PRIMARY_KEYS[table]))
        pipeline = dlt.pipeline(
            pipeline_name="bench_erp",
            pipelines_dir=workdir,
            destination=dlt.destinations.postgres(credentials=dlt_url(make_url(warehouse))),
            dataset_name="erp",
        )
        info = pipeline.run(data, loader_file_format=DLT_FORMAT)  # type: ignore[arg-type]
        info.raise_on_failed_jobs()
        seconds = time.perf_counter() - started
        cpu.stop()
        trace = pipeline.last_trace
        steps = {step.step: round((step.finished_at - step.started_at).total_seconds(), 1) for step in trace.steps}
        engine.dispose()
    source_state = {t: (n, erp.checksum(source, t)) for t, n in erp.row_counts(source).items()}
    with psycopg.connect(db.libpq_uri(make_url(warehouse)), autocommit=True) as conn:
        landed = {}
        for t in tables:
            count = conn.execute(f"SELECT count(*) FROM erp.{t}").fetchone()[0]  # type: ignore[index]
            landed[t] = (int(count), erp_source.checksum(conn, f"erp.{t}"))
    out.put({"seconds": seconds, "rows": sum(n for n, _ in landed.values()), "rss_mb": _peak_rss_mb(), "errors": {},
             "steps": steps, "equal": landed == source_state, **cpu.result()})  # fmt: skip


def _measure(target: Any, warehouse: str, source: str) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    child = ctx.Process(target=target, args=(warehouse, source, out))
    child.start()
    while True:
        try:
            result = out.get(timeout=1.0)
            break
        except queue.Empty:
            if not child.is_alive():
                raise RuntimeError(f"{target.__name__} exited with code {child.exitcode} without a result") from None
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
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in ONLY}
        for round_no in range(1, ROUNDS + 1):
            for name in ONLY:
                warehouse_url = _fresh_database(f"bench_erp_{name}")
                if name in ("ours", "ours1", "ours-seq", "floor", "floor-chunked"):
                    migrations.upgrade(warehouse_url)
                target = {"ours": _ours, "ours1": _ours1, "floor": _floor, "ceiling": _ceiling, "dlt": _dlt,
                          "ours-seq": _ours_seq, "floor-chunked": _floor_chunked}[name]  # fmt: skip
                r = _measure(target, db.render_secret_url(warehouse_url), db.render_secret_url(source_url))
                runs[name].append(r)
                print(
                    f"round {round_no} {name:<8} {size:>10,} rows: {r['rows']:>10,} moved in {r['seconds']:7.1f}s = "
                    f"{r['rows'] / r['seconds']:>9,.0f} rows/s, peak RSS {r['rss_mb']:.0f} MB, machine CPU "
                    f"{r['cpu_busy']:.1f}s busy = {r['cpu_busy'] / r['seconds']:.2f} of {os.cpu_count()} cores "
                    f"({1e6 * r['cpu_busy'] / r['rows']:.0f} µs a row), {r['cpu_iowait']:.1f}s I/O wait"
                    + (f", errors {r['errors']}" if r["errors"] else ""),
                    flush=True,
                )
                if "nights" in r:
                    print(
                        f"         pass: {len(r['nights'])} nights, every table completed: {r['completed']}, "
                        f"core equal to source (counts and checksums): {r['equal']}",
                        flush=True,
                    )
                if "steps" in r:
                    print(
                        f"         dlt {DLT_BACKEND} backend, {DLT_FORMAT} files, steps {r['steps']}, "
                        f"every table equal to source (counts and checksums): {r['equal']}",
                        flush=True,
                    )
                if not KEEP:
                    _drop(f"bench_erp_{name}")
        rate = {name: statistics.median(r["rows"] / r["seconds"] for r in rs) for name, rs in runs.items() if rs}
        print("medians: " + ", ".join(f"{name} {value:,.0f} rows/s" for name, value in rate.items()))
        if "floor" in rate and "ceiling" in rate:
            print(
                f"floor / ceiling = {rate['floor'] / rate['ceiling']:.2f}"
                " (the most any engine that writes staging, core and audit rows can reach)"
            )
        if "ours" in rate and "ceiling" in rate:
            print(f"ours / ceiling = {rate['ours'] / rate['ceiling']:.2f}")
        if "ours" in rate and "dlt" in rate:
            print(f"ours / dlt = {rate['ours'] / rate['dlt']:.2f} (target > 1)")
        if "ours" in rate and "ours-seq" in rate:
            print(f"ours (tables overlapped) / ours-seq (one after another) = {rate['ours'] / rate['ours-seq']:.2f}")
        if "ours" in rate and "ours1" in rate:
            print(f"ours (two lanes) / ours1 (one lane) = {rate['ours'] / rate['ours1']:.2f}")
        if "ours" in rate and "floor" in rate:
            ratio = rate["ours"] / rate["floor"]
            rss = max(r["rss_mb"] for r in runs["ours"])
            print(
                f"ours / floor = {ratio:.2f} (target >= {TARGET_FLOOR}: {'met' if ratio >= TARGET_FLOOR else 'MISSED'})"
                f"; peak RSS {rss:.0f} MB (target < {TARGET_RSS_MB}: {'met' if rss < TARGET_RSS_MB else 'MISSED'})"
            )
        if "ours" in rate and "floor-chunked" in rate:
            print(f"ours / floor-chunked = {rate['ours'] / rate['floor-chunked']:.2f} (the floor committed per chunk)")
        if not KEEP:
            _drop("bench_erp_source")


if __name__ == "__main__":
    main()
