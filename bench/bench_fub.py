"""Follow Up Boss people, sandbox -> embedded Postgres, side by side: ours, the raw-COPY ceiling, and dlt.

One account's people, in pages of 100, from the FUB sandbox served by a separate process pinned to core 0
with its rate limit off, into fresh databases on the same embedded Postgres:

- ours:    `lib.integration.sync.backfill(FUB, ..., "people", months 2021-11..2026-11)`: COPY to staging, normalise
           in SQL, validate, upsert into core with audit rows, cursor and batch rows, one transaction per 2,000 records;
- ceiling: the same client and paging (`FubClient.window_pages`, pages prefetched on a thread as ours does),
           each record COPYed raw into a one-jsonb-column table, one transaction per 2,000 records, nothing else;
- floor:   the least ours' path must write, on ours' concurrency (see `_prepare_floor`): the production staging
           COPY, a plain INSERT of the typed core row and its CREATE audit row, two batches in flight;
- floor+guard: the floor plus each record's checks, its DLQ row if it fails and an idempotent upsert behind the
           change guard, in one statement (what the product promises per record, without ours' bookkeeping);
- floor+guard+order: floor+guard whose statement waits for the batch before to commit, as ours' upsert does
           (the cursor is never ahead of a commit);
- dlt:     dlt's `rest_api` source (Basic auth + X-System headers, `_metadata.nextLink` paginator, data selector
           "people", merge on "id", `max_table_nesting=0`: nested lists stay json, as our `data` column does)
           into its postgres destination.
- ours+analyze: ours with `ANALYZE core.fub_people, staging.fub_people` run by this bench just before
           `soft_delete_missing`, whose anti-join otherwise gets a nested-loop plan on a freshly loaded table and
           runs for O(N^2) (see BENCHMARKS.md). A what-if that isolates that one problem; the engine is unchanged.

Each measurement runs in its own spawned child; it reports wall time of the load (imports and setup excluded),
its CPU time and peak RSS (`ru_maxrss` of the child itself and of anything it spawned). The parent samples the
CPU of every Postgres process meanwhile, and counts the records that landed.

Knobs (environment):
- BENCH_FUB_SIZES="100000,1000000"; BENCH_FUB_REPEAT=1 (median of n; the contestants take turns; "3,1" gives each
  size in BENCH_FUB_SIZES its own number of rounds);
- BENCH_FUB_ONLY="ours,ceiling,dlt" (add ours+analyze for the what-if, ours-nolog for the cost of the call log:
  ours with no bridge.sync_logs rows written);
- BENCH_FUB_BASE="uuid,env": what the contestants ours-base and ceiling-base undo of issue 15's load-path
  changes, for an A/B in one run: uuid = bridge.uuid_v7() back on the strong random source (migration 0014 undone in
  the bench database), env = the HTTP session reads the environment on every request again (requests' default);
  audit = CREATE audit rows with their values again (a no-op on main, where value-less CREATE rows were not kept);
- BENCH_FUB_DLT_MAX_SECONDS=1200: beyond it dlt is measured at 100k and 300k only;
- BENCH_FUB_OURS_MAX_SECONDS=1800: limit for stock ours (1.5x the time of ours+analyze + 10 min when measured);
- BENCH_FUB_PROFILE=auto|1|0: stage breakdown of ours at BENCH_FUB_PROFILE_SIZE (default: the smallest size);
  auto = when ours misses TARGET_CEILING x the ceiling;
- BENCH_FUB_KEEP=1: keep the bench databases;
- BENCH_FUB_QUIET_BUSY=25, BENCH_FUB_QUIET_WAIT=300: wait for a quiet machine before each measurement;
  BENCH_FUB_NOISY=0.2, BENCH_FUB_NOISE_RETRIES=2: measure again when others used > 0.2 cores meanwhile.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import platform
import queue
import re
import resource
import statistics
import tempfile
import threading
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SIZES = [int(s) for s in os.environ.get("BENCH_FUB_SIZES", "100000,1000000").split(",") if s.strip()]
_REPEATS = [int(r) for r in os.environ.get("BENCH_FUB_REPEAT", "1").split(",") if r.strip()]
REPEAT = dict(zip(SIZES, _REPEATS + _REPEATS[-1:] * len(SIZES), strict=False))  # rounds per size
ONLY = [s.strip() for s in os.environ.get("BENCH_FUB_ONLY", "ours,ceiling,dlt").split(",") if s.strip()]
BASE = {s.strip() for s in os.environ.get("BENCH_FUB_BASE", "uuid,env").split(",") if s.strip()}
OURS_MAX_SECONDS = float(os.environ.get("BENCH_FUB_OURS_MAX_SECONDS", "1800"))
DLT_MAX_SECONDS = float(os.environ.get("BENCH_FUB_DLT_MAX_SECONDS", "1200"))
DLT_FALLBACK_SIZES = (100_000, 300_000)
PROFILE = os.environ.get("BENCH_FUB_PROFILE", "auto")
KEEP = os.environ.get("BENCH_FUB_KEEP") == "1"
# This box may be shared: before each measurement wait (at most QUIET_WAIT s) until the other processes use
# less than QUIET_BUSY % of the machine, and report the CPU others used while each measurement ran.
QUIET_BUSY = float(os.environ.get("BENCH_FUB_QUIET_BUSY", "25"))
QUIET_WAIT = float(os.environ.get("BENCH_FUB_QUIET_WAIT", "300"))
# A run during which others used more than NOISY cores on average is repeated (at most NOISE_RETRIES times).
NOISY = float(os.environ.get("BENCH_FUB_NOISY", "0.2"))
NOISE_RETRIES = int(os.environ.get("BENCH_FUB_NOISE_RETRIES", "2"))

ACCOUNT = "acme"
API_KEY = "fub_sandbox_key_acme"
BATCH = 2000
PREFETCH = 8
# Every creation month of the sandbox's history: one contiguous window, i.e. one stream of pages.
PERIODS = [f"{y}-{m:02d}" for y in range(2021, 2027) for m in range(1, 13) if "2021-11" <= f"{y}-{m:02d}" <= "2026-11"]
TARGET_CEILING = 0.75  # issue 15
TARGET_DLT = 3.5
TARGET_RSS_MB = 400
RSS_GROWTH_TOLERANCE = 1.25  # "about the same at 1M as at 100k"


# ----------------------------------------------------------------------------------------------
# the sandbox, in its own process on core 0
# ----------------------------------------------------------------------------------------------


def _pin(cores: set[int]) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, cores)


def _serve(ready: multiprocessing.Queue, stop: multiprocessing.Event, scale: int) -> None:  # type: ignore[type-arg]
    from sync_pipelines.sandbox.app import Sandbox, SandboxServer

    _pin({0})
    sandbox = Sandbox(seed=7, scale=scale, sources=["fub"])
    sandbox["fub"].rate_limits["global"] = (0, 10.0)  # unlimited: we measure the load path, not the limit
    with SandboxServer(sandbox) as server:
        ready.put((server.url, os.getpid()))
        stop.wait()


class SandboxProcess:
    """A sandbox whose `acme` account has exactly `size` people (the sandbox scale is acme's people count)."""

    def __init__(self, size: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        ready: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
        self.stop = ctx.Event()
        self.process = ctx.Process(target=_serve, args=(ready, self.stop, size), daemon=True)
        self.process.start()
        url, self.pid = ready.get(timeout=120)
        self.base_url = f"{url}/fub"

    def close(self) -> None:
        self.stop.set()
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


# ----------------------------------------------------------------------------------------------
# CPU of the Postgres server and of the sandbox while a child runs
# ----------------------------------------------------------------------------------------------


class CpuSampler(threading.Thread):
    """Samples the CPU time of a process tree (the postmaster and its backends; or the sandbox) every 0.2 s.
    A backend that exits loses at most its last 0.2 s."""

    def __init__(self, root_pid: int | None) -> None:
        super().__init__(daemon=True)
        self.root_pid = root_pid
        self.first: dict[tuple[int, float], float] = {}
        self.last: dict[tuple[int, float], float] = {}
        self.halt = threading.Event()
        self._sample(baseline=True)

    def _sample(self, baseline: bool = False) -> None:
        import psutil

        if self.root_pid is None:
            return
        try:
            root = psutil.Process(self.root_pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        for proc in procs:
            try:
                times = proc.cpu_times()
                key = (proc.pid, proc.create_time())
            except psutil.Error:
                continue
            cpu = times.user + times.system
            self.first.setdefault(key, cpu if baseline else 0.0)
            self.last[key] = cpu

    def run(self) -> None:
        while not self.halt.wait(0.2):
            self._sample()

    def finish(self) -> float | None:
        self.halt.set()
        self.join()
        self._sample()
        if self.root_pid is None:
            return None
        return sum(self.last[k] - self.first[k] for k in self.last)


def _postmaster_pid() -> int | None:
    from sync_pipelines.lib import db

    if not db.is_embedded():
        return None
    pid_file = db.embedded_pgdata() / "postmaster.pid"
    try:
        return int(pid_file.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


# ----------------------------------------------------------------------------------------------
# the contestants, each run in a spawned child
# ----------------------------------------------------------------------------------------------


def _child(kind: str, base_url: str, db_url: str, options: dict[str, Any], out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    try:
        run = PREPARE[kind](base_url, db_url, options)
        usage_before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        records, extra = run()
        seconds = time.perf_counter() - started
        usage = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        out.put(
            {
                "records": records,
                "seconds": seconds,
                "cpu": (usage.ru_utime + usage.ru_stime)
                - (usage_before.ru_utime + usage_before.ru_stime)
                + children.ru_utime
                + children.ru_stime,
                "rss_mb": max(usage.ru_maxrss, children.ru_maxrss) / 1024,  # Linux: KiB
                "cpu_total": usage.ru_utime + usage.ru_stime + children.ru_utime + children.ru_stime,
                **extra,
            }
        )
    except BaseException:
        out.put({"error": traceback.format_exc()})


def _undo_env() -> None:
    """The what-if of BENCH_FUB_BASE=env: the client's session is requests' own, which reads the environment
    (proxy variables, CA bundle variables, .netrc) on every request."""
    import requests

    from sync_pipelines.lib import http

    http.EnvironmentOnceSession = requests.Session  # type: ignore[misc]


def _undo_cheap_create_audit() -> None:
    """The what-if of BENCH_FUB_BASE=audit: CREATE audit rows carry the created values again (new_value)."""
    import psycopg

    execute = psycopg.Connection.execute
    marker = "CASE WHEN t._inserted THEN NULL ELSE jsonb_build_object("
    end = " END\n                FROM up t"

    def rewritten(conn: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        if not isinstance(query, str | bytes):
            text = _sql_text(query)
            stop = text.find(end)
            start = text.rfind(marker, 0, stop) if stop >= 0 else -1
            if "up AS (" in text and start >= 0:
                query = text[:start] + "jsonb_build_object(" + text[start + len(marker) : stop] + text[stop + 4 :]
        return execute(conn, query, params, **kwargs)

    psycopg.Connection.execute = rewritten  # type: ignore[method-assign]


def _prepare_ours(base_url: str, db_url: str, options: dict[str, Any]) -> Callable[[], tuple[int, dict]]:
    if options.get("base") and "env" in BASE:
        _undo_env()
    if options.get("base") and "audit" in BASE:
        _undo_cheap_create_audit()
    from sync_pipelines.defs.fub.client import FubClient
    from sync_pipelines.defs.fub.declaration import FUB
    from sync_pipelines.lib import accounts, db
    from sync_pipelines.lib.integration import sync as fub_sync
    from sync_pipelines.sandbox.fub import SYSTEM, SYSTEM_KEY

    engine = db.get_engine(db_url)
    account = accounts.get_account(engine, "fub", ACCOUNT)

    def client_for(acct: accounts.Account) -> FubClient:
        return FubClient(base_url, accounts.secrets_for(engine, acct.id)["api_key"], SYSTEM, SYSTEM_KEY)

    profiler = _StageProfiler() if options.get("profile") else None
    soft_delete = fub_sync.soft_delete_missing
    timings: dict[str, float] = {}

    def soft_delete_missing(conn: Any, spec: Any, ctx: Any, **kwargs: Any) -> int:
        started = time.perf_counter()
        if options.get("analyze"):
            # The what-if: fresh statistics, so the planner sees how many rows core and staging now hold.
            from psycopg import sql

            with conn.transaction():
                conn.execute(
                    sql.SQL("ANALYZE {}, {}").format(
                        sql.Identifier(spec.core.schema, spec.core.name),
                        sql.Identifier(spec.staging.schema, spec.staging.name),
                    )
                )
        try:
            return soft_delete(conn, spec, ctx, **kwargs)
        finally:
            timings["soft_delete_s"] = time.perf_counter() - started

    fub_sync.soft_delete_missing = soft_delete_missing  # a timer (and, for ours+analyze, the ANALYZE)
    if options.get("nolog"):
        fub_sync.call_log_for = lambda engine, account: None  # the what-if: no bridge.sync_logs rows at all

    def run() -> tuple[int, dict]:
        with profiler.installed() if profiler else contextlib.nullcontext():
            report = fub_sync.backfill(engine, FUB, client_for, account, "people", PERIODS)
        extra: dict[str, Any] = {"failed": report.counts.failed, "pages": report.stats.pages, **timings}
        if profiler is not None:
            extra["stages"] = profiler.summary()
        return report.counts.fetched, extra

    return run


def _prepare_ceiling(base_url: str, db_url: str, options: dict[str, Any]) -> Callable[[], tuple[int, dict]]:
    if options.get("base") and "env" in BASE:
        _undo_env()
    import orjson

    from sync_pipelines.defs.fub.client import FubClient
    from sync_pipelines.lib import db
    from sync_pipelines.lib.sync import _prefetch
    from sync_pipelines.sandbox.fub import SYSTEM, SYSTEM_KEY

    def run() -> tuple[int, dict]:
        client = FubClient(base_url, API_KEY, SYSTEM, SYSTEM_KEY)
        loaded = 0
        with db.raw_connection(db_url) as conn:
            pending: list[dict] = []

            def flush() -> None:
                nonlocal loaded, pending
                with conn.transaction(), conn.cursor().copy("COPY bench_raw (raw) FROM STDIN") as copy:
                    for record in pending:
                        copy.write_row((orjson.dumps(record).decode(),))
                loaded += len(pending)
                pending = []

            for page in _prefetch(client.window_pages("people", None, None, None), PREFETCH):
                pending.extend(page.records)
                if len(pending) >= BATCH:
                    flush()
            if pending:
                flush()
        return loaded, {"pages": client.stats.pages}

    return run


def _prepare_floor(base_url: str, db_url: str, options: dict[str, Any]) -> Callable[[], tuple[int, dict]]:
    """The least ours' load path must write per record, on the same concurrency as ours and nothing else: the
    same client, paging and prefetch thread; batches of 2,000 on two connections (two batches in flight, in no
    order, where ours commits them in order); per batch one transaction of the production staging COPY
    (`load._copy_to_staging`: raw jsonb, id, period, md5), one INSERT of the typed core columns (the mappings'
    extractions, cast without checks) whose RETURNING feeds one INSERT of CREATE audit rows with the values, into
    the real tables of a migrated database. No normalise table, validation, DLQ, dedupe, ON CONFLICT or change
    guard, old values, batch rows, cursor, call log or soft delete. It bounds ours ÷ ceiling for any engine that
    keeps the raw record, the typed core row and its audit row.

    With options["guarded"] (floor+guard) the one statement also does what the product promises for each record,
    as ours writes it, in one pass without temp tables: every typed value checked (`pg_input_is_valid`, ours'
    normalise plan), a record that fails goes to bridge.failed_records with its raw payload and the reasons, the
    rest are upserted with `ON CONFLICT … DO UPDATE` behind the change guard (a rerun after a crash writes nothing
    twice), each audit row CREATE or UPDATE. Still no dedupe, old values, batch rows, cursor or call log."""
    from concurrent.futures import ThreadPoolExecutor

    from psycopg import sql

    from sync_pipelines.defs.fub.client import FubClient
    from sync_pipelines.defs.fub.declaration import FUB
    from sync_pipelines.lib import accounts, db, load
    from sync_pipelines.lib.load import LoadContext
    from sync_pipelines.lib.mappings import DATA_TYPES, _extract, normalise_plan
    from sync_pipelines.lib.sync import _prefetch
    from sync_pipelines.sandbox.fub import SYSTEM, SYSTEM_KEY

    engine = db.get_engine(db_url)
    account = accounts.get_account(engine, "fub", ACCOUNT)
    engine.dispose()
    spec = FUB.specs["people"]
    ctx = LoadContext(integration="fub", account_id=account.id, sync_type="backfill")
    raw = sql.SQL("s.raw")
    targets = list(spec.mappings)
    typed = [
        _extract(m, raw) if m.data_type in ("text", "jsonb")
        else sql.SQL("{}::{}").format(_extract(m, raw), sql.SQL(DATA_TYPES[m.data_type]))
        for m in targets
    ]  # fmt: skip
    # What ours' audit rows hold: the record's id, period and every mapped column.
    audited = ["source_id", "period_key", *(m.target_field for m in targets if m.target_field != "source_id")]
    names = {
        "core": sql.Identifier(spec.core.schema, spec.core.name),
        "staging": sql.Identifier(spec.staging.schema, spec.staging.name),
        "columns": sql.SQL(", ").join(sql.Identifier(m.target_field) for m in targets),
        "typed": sql.SQL(", ").join(typed),
        "pairs": sql.SQL(", ").join(sql.SQL("{}, t.{}").format(sql.Literal(c), sql.Identifier(c)) for c in audited),
    }
    if not options.get("guarded"):
        statement = sql.SQL(
            """
            WITH up AS (
                INSERT INTO {core} (account_id, period_key, {columns}, _row_hash, _batch_id)
                SELECT s.account_id, s.period_key, {typed}, s._raw_hash, s._batch_id FROM {staging} s
                WHERE s._batch_id = %(batch)s
                RETURNING *
            )
            INSERT INTO bridge.audit_log (action, integration, entity_type, entity_id, source_id, account_id,
                                          batch_id, new_value)
            SELECT 'CREATE', 'fub', 'people', t.id, t.source_id, t.account_id, t._batch_id,
                   jsonb_build_object({pairs})
            FROM up t
            """
        ).format(**names)
    else:
        plan = normalise_plan(targets, raw)
        statement = sql.SQL(
            """
            WITH x AS (
                SELECT e.*, {checks} FROM (
                    SELECT s._row_id, s.source_id AS _staged_source_id, s.account_id, s.period_key, s._raw_hash,
                           s._batch_id, {extracts}
                    FROM {staging} s WHERE s._batch_id = %(batch)s OFFSET 0
                ) e OFFSET 0
            ), n AS (
                SELECT x._row_id, x._staged_source_id, x.account_id, x.period_key, x._raw_hash, x._batch_id,
                       {normalised}, {errors} AS _errors
                FROM x OFFSET 0
            ), bad AS (
                INSERT INTO bridge.failed_records (batch_id, integration, account_id, entity_name, source_id,
                                                   raw_data, stage_failed, error_message)
                SELECT n._batch_id, 'fub', n.account_id, 'people', n._staged_source_id, s.raw, 'validation',
                       array_to_string(n._errors, '; ')
                FROM n JOIN {staging} s ON s._row_id = n._row_id WHERE cardinality(n._errors) > 0
                RETURNING 1
            ), up AS (
                INSERT INTO {core} AS t (account_id, period_key, {columns}, _row_hash, _batch_id)
                SELECT n.account_id, n.period_key, {columns_of_n}, n._raw_hash, n._batch_id
                FROM n WHERE cardinality(n._errors) = 0
                ON CONFLICT (account_id, source_id) DO UPDATE SET {updates}
                WHERE t._row_hash IS DISTINCT FROM EXCLUDED._row_hash OR t.deleted_at IS NOT NULL
                RETURNING t.*, (t.xmax = 0) AS _inserted
            )
            INSERT INTO bridge.audit_log (action, integration, entity_type, entity_id, source_id, account_id,
                                          batch_id, new_value)
            SELECT CASE WHEN t._inserted THEN 'CREATE' ELSE 'UPDATE' END, 'fub', 'people', t.id, t.source_id,
                   t.account_id, t._batch_id, jsonb_build_object({pairs})
            FROM up t
            """
        ).format(
            checks=sql.SQL(", ").join(plan.checks) if plan.checks else sql.SQL("true AS _no_checks"),
            extracts=sql.SQL(", ").join(plan.extracts),
            normalised=sql.SQL(", ").join(plan.columns),
            errors=plan.errors,
            columns_of_n=sql.SQL(", ").join(sql.SQL("n.{}").format(sql.Identifier(m.target_field)) for m in targets),
            updates=sql.SQL(", ").join(
                sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c))
                for c in ("period_key", *(m.target_field for m in targets), "_row_hash", "_batch_id")
                if c != "source_id"
            ),
            **names,
        )

    def run() -> tuple[int, dict]:
        client = FubClient(base_url, API_KEY, SYSTEM, SYSTEM_KEY)
        loaded = 0
        with (
            db.raw_connection(db_url) as first,
            db.raw_connection(db_url) as second,
            ThreadPoolExecutor(max_workers=2, thread_name_prefix="floor-lane") as lanes,
        ):
            connections = [first, second]
            in_flight: list[Any] = []

            def load_one(conn: Any, records: list[dict], previous: Any) -> int:
                batch_id = load.new_id()
                with conn.transaction():
                    load._copy_to_staging(conn, spec, ctx, batch_id, records)
                    if previous is not None:
                        previous.result()  # floor+guard+order: core only after the batch before has committed
                    conn.execute(statement, {"batch": batch_id})
                return len(records)

            pending: list[dict] = []
            submitted = 0

            def flush() -> None:
                nonlocal pending, submitted, loaded
                if len(in_flight) == len(connections):
                    loaded += in_flight.pop(0).result()
                previous = in_flight[-1] if in_flight and options.get("ordered") else None
                in_flight.append(lanes.submit(load_one, connections[submitted % 2], pending, previous))
                submitted += 1
                pending = []

            # run_pages' prefetch depth, as ours has it
            for page in _prefetch(client.window_pages("people", None, None, None), 64):
                pending.extend(page.records)
                if len(pending) >= BATCH:
                    flush()
            if pending:
                flush()
            for future in in_flight:
                loaded += future.result()
        return loaded, {"pages": client.stats.pages}

    return run


def dlt_config(base_url: str) -> dict[str, Any]:
    """The FUB people endpoint as a dlt `rest_api` source."""
    from sync_pipelines.sandbox.fub import SYSTEM, SYSTEM_KEY

    return {
        "client": {
            "base_url": f"{base_url}/v1/",
            "auth": {"type": "http_basic", "username": API_KEY, "password": ""},
            "headers": {"X-System": SYSTEM, "X-System-Key": SYSTEM_KEY},
            "paginator": {"type": "json_link", "next_url_path": "_metadata.nextLink"},
        },
        "resource_defaults": {"write_disposition": "merge", "primary_key": "id"},
        "resources": [
            {
                "name": "people",
                "endpoint": {"path": "people", "params": {"limit": 100, "sort": "id"}, "data_selector": "people"},
            }
        ],
    }


def _prepare_dlt(base_url: str, db_url: str, options: dict[str, Any]) -> Callable[[], tuple[int, dict]]:
    os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "ERROR")
    import dlt
    from dlt.sources.rest_api import rest_api_source

    workdir = options["workdir"]

    def run() -> tuple[int, dict]:
        source = rest_api_source(dlt_config(base_url), max_table_nesting=0)
        pipeline = dlt.pipeline(
            pipeline_name="bench_fub",
            pipelines_dir=workdir,
            destination=dlt.destinations.postgres(credentials=db_url),
            dataset_name="fub",
        )
        info = pipeline.run(source)
        info.raise_on_failed_jobs()
        trace = pipeline.last_trace
        steps = {step.step: round((step.finished_at - step.started_at).total_seconds(), 1) for step in trace.steps}
        rows = trace.last_normalize_info.row_counts.get("people", 0) if trace.last_normalize_info else 0
        return rows, {"steps": steps}

    return run


PREPARE: dict[str, Callable[[str, str, dict[str, Any]], Callable[[], tuple[int, dict]]]] = {
    "ours": _prepare_ours,
    "ours+analyze": lambda base_url, db_url, options: _prepare_ours(base_url, db_url, {**options, "analyze": True}),
    "ours-nolog": lambda base_url, db_url, options: _prepare_ours(base_url, db_url, {**options, "nolog": True}),
    "ours-base": lambda base_url, db_url, options: _prepare_ours(base_url, db_url, {**options, "base": True}),
    "ceiling-base": lambda base_url, db_url, options: _prepare_ceiling(base_url, db_url, {**options, "base": True}),
    "ceiling": _prepare_ceiling,
    "floor": _prepare_floor,
    "floor+guard": lambda base_url, db_url, options: _prepare_floor(base_url, db_url, {**options, "guarded": True}),
    "floor+guard+order": lambda base_url, db_url, options: _prepare_floor(
        base_url, db_url, {**options, "guarded": True, "ordered": True}
    ),
    "dlt": _prepare_dlt,
}


# ----------------------------------------------------------------------------------------------
# stage profile of ours (instrumentation installed in the child; nothing in the engine changes)
# ----------------------------------------------------------------------------------------------

_STATEMENTS = (
    ("WITH n AS MATERIALIZED", "one statement: normalise, DLQ, upsert core + audit rows"),
    ("CREATE TEMP TABLE _norm", "normalise (SQL: mappings -> typed columns)"),
    ("INSERT INTO bridge.failed_records", "validate (invalid rows -> DLQ)"),
    ("CREATE TEMP TABLE _valid", "dedup + row hash (_valid)"),
    ("up AS (", "upsert core + audit rows"),
    ("FROM bridge.pending_children", "pending-children check"),
    ("bridge.sync_batches", "batch bookkeeping (sync_batches)"),
    ("bridge.sync_state", "cursor (sync_state)"),
    ("bridge.field_mappings", "read mappings"),
    ("WITH gone AS", "soft-delete missing (after the stream)"),
    ("ANALYZE ", "ANALYZE (statistics upkeep, before soft-delete)"),
    ("set_config('work_mem'", "per-batch settings"),
    ("DROP TABLE IF EXISTS _norm", "per-batch settings"),
    ("ALTER TABLE _norm RENAME", "per-batch settings"),
)


def _sql_text(query: Any) -> str:
    if isinstance(query, str):
        return query
    if isinstance(query, bytes):
        return query.decode()
    try:
        return query.as_string(None)
    except Exception:
        return repr(query)


class _StageProfiler:
    """Wall time per stage of the load path, measured on the loader thread, plus the fetch thread's own time.

    Every 10th batch the upsert statement also runs twice inside a savepoint that is rolled back: once as is
    and once without the audit CTE, which splits "upsert + audit" into its two parts.
    """

    SAMPLE_EVERY = 5

    def __init__(self) -> None:
        self.wall: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.split: list[tuple[float, float]] = []  # (full statement, without audit) seconds, sampled batches
        self.sample_seconds = 0.0
        self.plan: list[str] = []  # EXPLAIN ANALYZE of the last sampled upsert statement
        self.plan_batch = 0
        self._batch_depth = 0
        self._inside = 0.0  # statement time measured inside load_batch (loader thread)

    def _add(self, stage: str, seconds: float) -> None:
        if self._batch_depth and " thread: " not in stage:
            self._inside += seconds
        self.wall[stage] += seconds
        self.calls[stage] += 1

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        import psycopg

        from sync_pipelines.defs.fub.client import FubClient
        from sync_pipelines.lib import load
        from sync_pipelines.lib import sync as lib_sync
        from sync_pipelines.lib.call_log import CallLog

        profiler = self
        saved = {
            "execute": psycopg.Connection.execute,
            "copy": load._copy_to_staging,
            "call_log": CallLog._write,
            "load_batch": lib_sync.load_batch,
            "prefetch": lib_sync._prefetch,
            "get_json": FubClient.get_json,
        }
        upserts = 0

        def execute(conn: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
            nonlocal upserts
            text = _sql_text(query)
            stage = next((name for marker, name in _STATEMENTS if marker in text), "other SQL")
            if stage == "upsert core + audit rows":
                upserts += 1
                if upserts % profiler.SAMPLE_EVERY == 0:
                    profiler._split_upsert(conn, saved["execute"], text, params)
            started = time.perf_counter()
            cursor = saved["execute"](conn, query, params, **kwargs)
            profiler._add(stage, time.perf_counter() - started)
            return cursor

        def timed(stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    profiler._add(stage, time.perf_counter() - started)

            return wrapper

        def load_batch(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            profiler._batch_depth += 1
            try:
                return saved["load_batch"](*args, **kwargs)
            finally:
                profiler._batch_depth -= 1
                profiler._add("load_batch total", time.perf_counter() - started)

        def prefetch(pages: Iterator[Any], depth: int) -> Iterator[Any]:
            inner = saved["prefetch"](pages, depth)
            while True:
                started = time.perf_counter()
                try:
                    page = next(inner)
                except StopIteration:
                    profiler._add("waiting for pages (fetch)", time.perf_counter() - started)
                    return
                profiler._add("waiting for pages (fetch)", time.perf_counter() - started)
                yield page

        psycopg.Connection.execute = execute  # type: ignore[method-assign]
        load._copy_to_staging = timed("COPY to staging (incl. orjson)", saved["copy"])
        CallLog._write = timed("call-log thread: COPY sync_logs", saved["call_log"])  # type: ignore[method-assign]
        lib_sync.load_batch = load_batch
        lib_sync._prefetch = prefetch
        FubClient.get_json = timed("fetch thread: HTTP GET + parse", saved["get_json"])  # type: ignore[method-assign]
        try:
            yield
        finally:
            psycopg.Connection.execute = saved["execute"]  # type: ignore[method-assign]
            load._copy_to_staging = saved["copy"]
            CallLog._write = saved["call_log"]  # type: ignore[method-assign]
            lib_sync.load_batch = saved["load_batch"]
            lib_sync._prefetch = saved["prefetch"]
            FubClient.get_json = saved["get_json"]  # type: ignore[method-assign]

    def _split_upsert(self, conn: Any, execute: Callable[..., Any], text: str, params: Any) -> None:
        start = text.find("), audit AS (")
        end = text.find("SELECT count(*) FILTER (WHERE _inserted)")
        if start < 0 or end < 0:
            return
        without_audit = text[:start] + ")\n" + text[end:].replace("(SELECT count(*) FROM audit)", "0")
        began = time.perf_counter()
        with conn.transaction(force_rollback=True):  # the plan of the latest sample is kept: the biggest core
            rows = execute(conn, "EXPLAIN (ANALYZE, COSTS OFF) " + text, params).fetchall()
        self.plan = [row[0] for row in rows]
        self.plan_batch = len(self.split) * self.SAMPLE_EVERY + self.SAMPLE_EVERY
        timings = []
        for statement in (without_audit, text):
            with conn.transaction(force_rollback=True):  # a savepoint: nothing of it stays
                started = time.perf_counter()
                execute(conn, statement, params).fetchone()
                timings.append(time.perf_counter() - started)
        self.split.append((timings[1], timings[0]))
        self.sample_seconds += time.perf_counter() - began

    def summary(self) -> dict[str, Any]:
        wall = dict(self.wall)
        wall.pop("load_batch total", None)
        batches = self.wall.get("load_batch total", 0.0)
        wall["commit + Python between statements"] = batches - self._inside - self.sample_seconds
        result: dict[str, Any] = {"wall": wall, "calls": dict(self.calls), "sample_seconds": self.sample_seconds}
        if self.split:
            full = statistics.median(s[0] for s in self.split)
            no_audit = statistics.median(s[1] for s in self.split)
            result["audit_share"] = max(0.0, (full - no_audit) / full) if full else 0.0
            result["split_ms"] = (full * 1000, no_audit * 1000)
        if self.plan:
            result["plan"] = self.plan
            result["plan_batch"] = self.plan_batch
        return result


# ----------------------------------------------------------------------------------------------
# setup and checks in the parent
# ----------------------------------------------------------------------------------------------


def _fresh_database(name: str) -> Any:
    from sync_pipelines.lib import db

    _drop_database(name)
    db.ensure_database(name)
    return db.server_url(name)


def _drop_database(name: str) -> None:
    from sync_pipelines.lib import db

    with db.raw_connection(db.server_url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# bridge.uuid_v7() as migration 0004 left it on Postgres 18 (uuidv7() draws on the strong random source).
UNDONE_UUID_V7 = (
    "CREATE OR REPLACE FUNCTION bridge.uuid_v7() RETURNS uuid LANGUAGE sql VOLATILE AS $$ SELECT uuidv7() $$"
)


def _setup(kind: str, name: str) -> str:
    """A fresh database for one measurement; returns the libpq URL the child uses."""
    from sync_pipelines.lib import accounts, db, migrations

    url = _fresh_database(name)
    if kind.startswith(("ours", "floor")):
        migrations.upgrade(url)
        engine = db.get_engine(url)
        accounts.upsert_account(engine, "fub", ACCOUNT, {"api_key": API_KEY})
        engine.dispose()
        if kind == "ours-base" and "uuid" in BASE:
            with db.raw_connection(url, autocommit=True) as conn:  # migration 0014 undone: ids from uuidv7()
                conn.execute(UNDONE_UUID_V7)
    elif kind.startswith("ceiling"):
        with db.raw_connection(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE bench_raw (raw jsonb NOT NULL)")
    if kind == "dlt":
        return dlt_url(url)
    return db.libpq_uri(url)


def dlt_url(url: Any) -> str:
    """dlt's postgres credentials require a host, so the `?host=/socket/dir` form of a Unix-socket URL fails
    ("missing field(s): host"). libpq also takes the socket directory percent-encoded in the host part, which
    dlt keeps as its `host` and hands to psycopg2 unchanged: postgresql://postgres:@%2Fsocket%2Fdir/db."""
    from urllib.parse import quote

    from sync_pipelines.lib import db

    url = db.server_url(url.database, driver=None)
    socket_dir = url.query.get("host")
    if url.host or not socket_dir:
        return db.libpq_uri(url)
    if isinstance(socket_dir, tuple):
        socket_dir = socket_dir[0]
    auth = quote(url.username or "", safe="") + ":" + quote(url.password or "", safe="")
    port = f":{url.port}" if url.port else ""
    return f"postgresql://{auth}@{quote(socket_dir, safe='')}{port}/{url.database}"


def _landed(kind: str, name: str) -> int:
    from sync_pipelines.lib import db

    ours = (
        "SELECT count(*) FROM core.fub_people p JOIN bridge.accounts a ON a.id = p.account_id "
        f"WHERE a.name = '{ACCOUNT}' AND p.deleted_at IS NULL"
    )
    query = {"ceiling": "SELECT count(*) FROM bench_raw", "dlt": "SELECT count(*) FROM fub.people"}.get(
        kind.removesuffix("-base"), ours
    )
    with db.raw_connection(db.server_url(name)) as conn:
        return int(conn.execute(query).fetchone()[0])  # type: ignore[index]


def _active_queries(name: str) -> list[str]:
    from sync_pipelines.lib import db

    with db.raw_connection(db.server_url("postgres")) as conn:
        rows = conn.execute(
            "SELECT round(extract(epoch FROM now() - query_start)), regexp_replace(query, '\\s+', ' ', 'g') "
            "FROM pg_stat_activity WHERE datname = %s AND state = 'active'",
            (name,),
        ).fetchall()
    return [f"{seconds:.0f} s in: {query[:160]}" for seconds, query in rows]


def _database_bytes(name: str) -> int:
    from sync_pipelines.lib import db

    with db.raw_connection(db.server_url("postgres")) as conn:
        return int(conn.execute("SELECT pg_database_size(%s)", (name,)).fetchone()[0])  # type: ignore[index]


@dataclass
class Measurement:
    kind: str
    size: int
    records: int = 0
    landed: int = 0
    seconds: float = 0.0
    cpu: float = 0.0
    pg_cpu: float | None = None
    sandbox_cpu: float | None = None
    others_cpu: float = 0.0
    rss_mb: float = 0.0
    db_mb: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    runs: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.landed / self.seconds if self.seconds else 0.0


def measure(
    kind: str, sandbox: SandboxProcess, size: int, *, timeout: float, profile: bool = False, repeat: int = 1
) -> Measurement:
    runs: list[Measurement] = []
    wanted = repeat if not profile else 1
    retries = NOISE_RETRIES
    noisy: list[Measurement] = []
    while len(runs) < wanted:
        name = f"bench_fub_{kind.replace('+', '_')}_{size}"
        db_url = _setup(kind, name)
        with tempfile.TemporaryDirectory(prefix="bench_fub_dlt_") as workdir:
            options = {"profile": profile, "workdir": workdir}
            ctx = multiprocessing.get_context("spawn")
            out: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
            child = ctx.Process(target=_child, args=(kind, sandbox.base_url, db_url, options, out))
            busy_before = _wait_for_quiet()
            machine_before, parent_before = _machine_busy(), _own_cpu()
            pg = CpuSampler(_postmaster_pid())
            box = CpuSampler(sandbox.pid)
            pg.start()
            box.start()
            child.start()
            deadline = time.monotonic() + timeout
            result: dict[str, Any] | None = None
            while result is None:
                try:
                    result = out.get(timeout=1.0)
                except queue.Empty:
                    if not child.is_alive():
                        result = {"error": f"child exited with code {child.exitcode} without a result"}
                    elif time.monotonic() > deadline:
                        running = _active_queries(name)
                        child.kill()
                        result = {"timeout": True}
            child.join(60)
            pg_cpu, sandbox_cpu = pg.finish(), box.finish()
            machine_cpu = _machine_busy() - machine_before - (_own_cpu() - parent_before)
        if "timeout" in result:
            print(f"  {kind} {size:,}: stopped after {timeout:.0f} s; still running then: {running}")
            if not KEEP:
                _drop_database(name)
            return Measurement(kind, size, extra={"timeout": timeout})
        if "error" in result:
            raise RuntimeError(f"{kind} at {size:,} failed:\n{result['error']}")
        landed = _landed(kind, name)
        others = machine_cpu - float(result.pop("cpu_total")) - (pg_cpu or 0.0) - (sandbox_cpu or 0.0)
        m = Measurement(
            kind,
            size,
            records=int(result.pop("records")),
            landed=landed,
            seconds=float(result.pop("seconds")),
            cpu=float(result.pop("cpu")),
            pg_cpu=pg_cpu,
            sandbox_cpu=sandbox_cpu,
            rss_mb=float(result.pop("rss_mb")),
            db_mb=_database_bytes(name) / 2**20,
            others_cpu=max(others, 0.0),
            extra={**result, "busy_before": busy_before},
        )
        print(
            f"  {kind:8} {size:>9,}: {m.landed:,} landed in {m.seconds:.1f} s = {m.rate:,.0f} records/s; "
            f"client CPU {m.cpu:.1f} s, Postgres CPU {_fmt(m.pg_cpu)} s, sandbox CPU {_fmt(m.sandbox_cpu)} s; "
            f"others' CPU {m.others_cpu:.1f} s; peak RSS {m.rss_mb:.0f} MB; database {m.db_mb:,.0f} MB; "
            f"machine {busy_before:.0f}% busy before"
            + (f"; dlt steps {m.extra['steps']}" if "steps" in m.extra else ""),
            flush=True,
        )
        assert m.landed == size, f"{kind} at {size:,}: {m.landed:,} records landed, expected {size:,}"
        if not KEEP:
            _drop_database(name)
        if m.seconds >= 10 and m.others_cpu / m.seconds > NOISY and retries > 0:
            retries -= 1
            noisy.append(m)
            print(f"  (others used {m.others_cpu / m.seconds:.2f} cores meanwhile: measuring again)", flush=True)
            continue
        runs.append(m)
    if noisy and len(runs) == wanted and all(r.others_cpu / r.seconds > NOISY for r in runs):
        # Still noisy after the retries: keep the quietest runs.
        runs = sorted(runs + noisy, key=lambda r: r.others_cpu / r.seconds)[:wanted]
    return _median(runs)


def _median(runs: list[Measurement]) -> Measurement:
    best = sorted(runs, key=lambda r: r.seconds)[len(runs) // 2]  # the median run
    best.runs = [r.rate for r in runs]
    best.rss_mb = max(r.rss_mb for r in runs)
    return best


def _machine_busy() -> float:
    import psutil

    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


def _wait_for_quiet() -> float:
    """Wait until the machine is quiet (others' CPU below QUIET_BUSY %) or QUIET_WAIT s passed; returns busy %."""
    import psutil

    deadline = time.monotonic() + QUIET_WAIT
    while True:
        busy = psutil.cpu_percent(interval=2.0)
        if busy < QUIET_BUSY or time.monotonic() > deadline:
            return busy


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


# ----------------------------------------------------------------------------------------------
# report
# ----------------------------------------------------------------------------------------------


def _machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        total_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
        mem = f"{total_kb / 2**20:.1f} GiB"
    except (OSError, AttributeError):
        pass
    return f"{platform.node()}: {os.cpu_count()} cores ({cpu}), {mem} RAM, Python {platform.python_version()}"


def _postgres() -> str:
    from sync_pipelines.lib import db

    with db.raw_connection(db.server_url("postgres")) as conn:
        values = [conn.execute(f"SHOW {s}").fetchone()[0] for s in ("server_version", "shared_buffers",  # type: ignore[index]
                                                                   "synchronous_commit", "max_wal_size")]  # fmt: skip
    return f"Postgres {values[0]} ({'embedded' if db.is_embedded() else 'SYNC_DATABASE_URL'}): " \
        f"shared_buffers {values[1]}, synchronous_commit {values[2]}, max_wal_size {values[3]}"  # fmt: skip


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


KINDS = (
    "ours",
    "ours+analyze",
    "ours-nolog",
    "ours-base",
    "floor",
    "floor+guard",
    "floor+guard+order",
    "ceiling",
    "ceiling-base",
    "dlt",
)
OURS_KINDS = ("ours", "ours+analyze", "ours-nolog", "ours-base")
# The order contestants take their turns in each round: ours+analyze first (stock ours' time limit comes from it),
# dlt apart (it is measured once per size unless rounds are asked for).
TURN_ORDER = ("ours+analyze", *(k for k in KINDS if k not in ("ours+analyze", "dlt")))


def report(results: dict[tuple[str, int], Measurement], notes: list[str]) -> None:
    print()
    print("| records | contestant | landed | seconds | records/s | client CPU s (µs/record) | Postgres CPU s "
          "| sandbox CPU s | others' CPU s | peak RSS MB | database MB |")  # fmt: skip
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (kind, size), m in sorted(results.items(), key=lambda kv: (kv[0][1], KINDS.index(kv[0][0]))):
        if not m.landed:
            print(f"| {size:,} | {kind} | did not finish in {_minutes(m.extra.get('timeout', 0))} | | | | | | | | |")
            continue
        rates = f" (runs: {', '.join(f'{r:,.0f}' for r in m.runs)})" if len(m.runs) > 1 else ""
        print(
            f"| {size:,} | {kind} | {m.landed:,} | {m.seconds:.1f} | {m.rate:,.0f}{rates} | "
            f"{m.cpu:.1f} ({m.cpu / m.landed * 1e6:.0f}) | {_fmt(m.pg_cpu)} | {_fmt(m.sandbox_cpu)} | "
            f"{m.others_cpu:.1f} | {m.rss_mb:.0f} | {m.db_mb:,.0f} |"
        )
    soft = [(k, s, m.extra["soft_delete_s"]) for (k, s), m in sorted(results.items()) if "soft_delete_s" in m.extra]
    if soft:
        print("\nof which soft_delete_missing (the anti-join after the stream): "
              + "; ".join(f"{k} at {s:,}: {v:.1f} s" for k, s, v in soft))  # fmt: skip
    print()
    print(f"| records | contestant | ÷ ceiling (target ≥ {TARGET_CEILING}) | ÷ dlt (target ≥ {TARGET_DLT}) "
          f"| peak RSS (target < {TARGET_RSS_MB} MB) |")  # fmt: skip
    print("|---:|---|---|---|---|")
    sizes = sorted({size for _, size in results})
    for kind in OURS_KINDS:
        for size in sizes:
            ours = results.get((kind, size))
            if ours is None:
                continue
            if not ours.landed:
                print(f"| {size:,} | {kind} | MISS (did not finish) | MISS (did not finish) | |")
                continue
            cells = []
            ceiling = results.get(("ceiling", size))
            if kind == "ours-base" and ("ceiling-base", size) in results:
                ceiling = results[("ceiling-base", size)]  # the same changes undone on both sides
            if ceiling and ceiling.landed:
                ratio = ours.rate / ceiling.rate
                cells.append(f"{ratio:.2f} {_verdict(ratio >= TARGET_CEILING)}")
            else:
                cells.append("n/a")
            dlt = results.get(("dlt", size))
            note = ""
            if not (dlt and dlt.landed):
                measured = [s for (k, s), m in results.items() if k == "dlt" and m.landed and s < size]
                if measured:
                    dlt = results[("dlt", max(measured))]
                    note = f" (vs dlt at {max(measured):,})"
            if dlt and dlt.landed:
                ratio = ours.rate / dlt.rate
                cells.append(f"{ratio:.1f} {_verdict(ratio >= TARGET_DLT)}{note}")
            else:
                cells.append("n/a")
            cells.append(f"{ours.rss_mb:.0f} MB {_verdict(ours.rss_mb < TARGET_RSS_MB)}")
            print(f"| {size:,} | {kind} | " + " | ".join(cells) + " |")
    for size in sizes:
        for name in ("floor", "floor+guard", "floor+guard+order"):
            floor, ceiling, ours = (results.get((k, size)) for k in (name, "ceiling", "ours"))
            if floor and floor.landed and ceiling and ceiling.landed:
                line = (
                    f"\n{name} at {size:,}: {floor.rate:,.0f} records/s = {floor.rate / ceiling.rate:.2f} x the ceiling"
                )
                if ours and ours.landed:
                    line += f"; ours = {ours.rate / floor.rate:.2f} x {name}"
                print(line)
    for kind in OURS_KINDS:
        rss = {size: m.rss_mb for (k, size), m in results.items() if k == kind and m.landed}
        if len(rss) >= 2:
            small, large = min(rss), max(rss)
            growth = rss[large] / rss[small]
            print(
                f"\n{kind} peak RSS at {large:,} vs {small:,}: {rss[large]:.0f} vs {rss[small]:.0f} MB "
                f"(x{growth:.2f}): {_verdict(growth <= RSS_GROWTH_TOLERANCE)} "
                f"(target: about the same, <= x{RSS_GROWTH_TOLERANCE})"
            )
    for size in sizes:
        ours, nolog = results.get(("ours", size)), results.get(("ours-nolog", size))
        if ours and nolog and ours.landed and nolog.landed:
            print(f"\ncost of the call log (bridge.sync_logs) at {size:,}: ours {ours.rate:,.0f} records/s with it, "
                  f"{nolog.rate:,.0f} without: x{ours.rate / nolog.rate:.3f}")  # fmt: skip
    for size in sizes:
        for new, old in (("ours", "ours-base"), ("ceiling", "ceiling-base")):
            a, b = results.get((new, size)), results.get((old, size))
            if a and b and a.landed and b.landed:
                print(f"\nA/B at {size:,}: {new} {a.rate:,.0f} records/s, {old} (undone: {', '.join(sorted(BASE))}) "
                      f"{b.rate:,.0f}: x{a.rate / b.rate:.3f}; client CPU {a.cpu:.1f} vs {b.cpu:.1f} s, Postgres CPU "
                      f"{_fmt(a.pg_cpu)} vs {_fmt(b.pg_cpu)} s")  # fmt: skip
    for note in notes:
        print(f"note: {note}")


def report_profile(m: Measurement) -> None:
    stages = m.extra.get("stages")
    if not stages:
        return
    wall: dict[str, float] = stages["wall"]
    calls: dict[str, int] = stages["calls"]
    audit_share = stages.get("audit_share")
    if audit_share is not None:
        both = wall.pop("upsert core + audit rows", 0.0)
        n = calls.get("upsert core + audit rows", 0)
        wall["upsert core (INSERT … ON CONFLICT)"] = both * (1 - audit_share)
        wall["audit rows (old-row join + INSERT bridge.audit_log)"] = both * audit_share
        calls["upsert core (INSERT … ON CONFLICT)"] = calls["audit rows (old-row join + INSERT bridge.audit_log)"] = n
    total = m.seconds - stages.get("sample_seconds", 0.0)
    fetch_thread = wall.pop("fetch thread: HTTP GET + parse", 0.0)
    call_log_thread = wall.pop("call-log thread: COPY sync_logs", 0.0)
    print(f"\nstage profile of {m.kind} at {m.size:,} records: wall time on the loader thread, total {total:.1f} s "
          f"(excluding {stages.get('sample_seconds', 0.0):.1f} s on the sampled audit-split statements)")  # fmt: skip
    print("\n| stage | seconds | share | calls |\n|---|---:|---:|---:|")
    for stage, seconds in sorted(wall.items(), key=lambda kv: -kv[1]):
        print(f"| {stage} | {seconds:.1f} | {seconds / total:.0%} | {calls.get(stage, '')} |")
    accounted = sum(wall.values())
    print(f"| rest (job rows, mapping seed, DLQ retry, Python) | {total - accounted:.1f} | "
          f"{(total - accounted) / total:.0%} | |")  # fmt: skip
    print(f"\nfetch thread (overlapped with the loader): HTTP GET + parse {fetch_thread:.1f} s "
          f"over {calls.get('fetch thread: HTTP GET + parse', 0):,} pages; call-log thread: COPY sync_logs "
          f"{call_log_thread:.1f} s in {calls.get('call-log thread: COPY sync_logs', 0):,} blocks")  # fmt: skip
    if "split_ms" in stages:
        full, no_audit = stages["split_ms"]
        print(f"upsert statement on sampled batches (median, in a rolled-back savepoint): {full:.0f} ms as is, "
              f"{no_audit:.0f} ms without the audit CTE -> audit is {audit_share:.0%} of it")  # fmt: skip
    if stages.get("plan"):
        print(f"\nEXPLAIN ANALYZE of the upsert statement of batch {stages['plan_batch']} (2,000 records, "
              f"{(stages['plan_batch'] - 1) * BATCH:,} already in core; rolled back), nodes only:\n```")  # fmt: skip
        for line in stages["plan"]:
            if "->" in line or not line.startswith(" ") or "Time:" in line:
                print(line)
        print("```")


# ----------------------------------------------------------------------------------------------


def main() -> None:
    from sync_pipelines.lib import db

    db.server_url("postgres")  # start (or reuse) the embedded server before anything is timed
    started = datetime.now(UTC)
    print(f"date: {started:%Y-%m-%d %H:%M} UTC")
    print(f"machine: {_machine()}")
    print(_postgres())
    print(
        f"sizes: {', '.join(f'{s:,}' for s in SIZES)}; contestants: {', '.join(ONLY)}; "
        f"rounds: {', '.join(f'{REPEAT[s]} at {s:,}' for s in SIZES)}"
    )
    print("sandbox: its own process pinned to core 0, rate limit off; each contestant in a spawned child, unpinned")
    if "ours+analyze" in ONLY:
        print("ours+analyze: ours with `ANALYZE core.fub_people, staging.fub_people` run (by the bench) just before "
              "soft_delete_missing: what the load path does once that statement gets a sane plan")  # fmt: skip
    results: dict[tuple[str, int], Measurement] = {}
    notes: list[str] = []
    sandboxes: dict[int, SandboxProcess] = {}

    def sandbox_for(size: int) -> SandboxProcess:
        if size not in sandboxes:
            for other in list(sandboxes):
                sandboxes.pop(other).close()
            sandboxes[size] = SandboxProcess(size)
        return sandboxes[size]

    dlt_sizes: list[int] = []
    dlt_given_up = False
    profiled = None
    rounds: dict[tuple[str, int], list[Measurement]] = defaultdict(list)
    try:
        # With BENCH_FUB_REPEAT > 1 the contestants take turns (ours, ceiling, dlt, ours, ...), so a drift in
        # the machine's speed during the run weighs on each of them alike; each reports its median run.
        for size, turn in ((s, turn) for s in sorted(SIZES) for turn in range(REPEAT[s])):
            sandbox = sandbox_for(size)
            for kind in TURN_ORDER:
                if kind in ONLY:
                    limit = 7200.0
                    if kind == "ours":
                        # The stock path may hang in soft_delete_missing: give it the variant's time and then some.
                        variant = results.get(("ours+analyze", size))
                        limit = variant.seconds * 1.5 + 600 if variant and variant.landed else OURS_MAX_SECONDS
                    rounds[(kind, size)].append(measure(kind, sandbox, size, timeout=limit))
                    results[(kind, size)] = _median(rounds[(kind, size)])
            if "dlt" in ONLY and not dlt_given_up and turn > 0 and ("dlt", size) in results:
                rounds[("dlt", size)].append(measure("dlt", sandbox, size, timeout=DLT_MAX_SECONDS))
                results[("dlt", size)] = _median(rounds[("dlt", size)])
            elif "dlt" in ONLY and not dlt_given_up:
                measured = [m for (k, _), m in results.items() if k == "dlt" and m.landed]
                projected = size / max(measured, key=lambda m: m.size).rate if measured else 0.0
                if projected > DLT_MAX_SECONDS:
                    dlt_given_up = True
                    notes.append(
                        f"dlt at {size:,} would take ~{_minutes(projected)} (> {_minutes(DLT_MAX_SECONDS)}): "
                        f"measured at {', '.join(f'{s:,}' for s in DLT_FALLBACK_SIZES)} only"
                    )
                else:
                    m = measure("dlt", sandbox, size, timeout=DLT_MAX_SECONDS)
                    results[("dlt", size)] = m
                    rounds[("dlt", size)].append(m)
                    if not m.landed:
                        dlt_given_up = True
                        notes.append(
                            f"dlt at {size:,} did not finish in {_minutes(DLT_MAX_SECONDS)}: "
                            f"measured at {', '.join(f'{s:,}' for s in DLT_FALLBACK_SIZES)} only"
                        )
                    else:
                        dlt_sizes.append(size)
        if dlt_given_up:
            for size in DLT_FALLBACK_SIZES:
                if size not in dlt_sizes:
                    results[("dlt", size)] = measure("dlt", sandbox_for(size), size, timeout=DLT_MAX_SECONDS)
        missed = any(
            not m.landed or m.rate < TARGET_CEILING * results[("ceiling", s)].rate
            for (k, s), m in results.items()
            if k in OURS_KINDS and ("ceiling", s) in results and results[("ceiling", s)].landed
        )
        kind = "ours" if "ours" in ONLY else "ours+analyze"
        if kind in ONLY and (PROFILE == "1" or (PROFILE == "auto" and missed)):
            size = int(os.environ.get("BENCH_FUB_PROFILE_SIZE", min(SIZES)))
            why = "asked" if PROFILE == "1" else f"ours misses {TARGET_CEILING}x the ceiling"
            print(f"\nprofiling {kind} at {size:,} ({why})")
            profiled = measure(kind, sandbox_for(size), size, timeout=7200, profile=True)
    finally:
        for sandbox in sandboxes.values():
            sandbox.close()
    report(results, notes)
    if profiled is not None:
        report_profile(profiled)
    print(f"\nfinished in {(datetime.now(UTC) - started).total_seconds() / 60:.1f} min")


if __name__ == "__main__":
    main()
