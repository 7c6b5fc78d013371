"""Stripe invoices, sandbox -> embedded Postgres, side by side: ours, the raw-COPY ceiling, and dlt.

One account's invoices (the biggest Stripe objects we load: ~4 KB each with their lines, plans and prices), in pages
of 100 (`starting_after`), from the Stripe sandbox served by a separate process pinned to core 0 with its rate limit
off, into fresh databases on the same embedded Postgres:

- ours:    `lib.integration.sync.backfill(STRIPE, ..., "invoices", months 2021-11..2026-11)`: COPY to staging,
           normalise in SQL, validate, upsert into core with audit rows, cursor and batch rows, 2,000 records a
           transaction, the soft-delete pass of a complete read;
- ceiling: the same client and pages (`StripeClient.window_pages`, prefetched on a thread as ours does), each record
           COPYed raw into a one-jsonb-column table, 2,000 records a transaction, nothing else;
- dlt:     dlt's `rest_api` source on the same sandbox (bearer auth, the same Stripe-Version, a cursor paginator on
           `data[-1].id` -> `starting_after` stopping at `has_more: false`, data selector "data", merge on "id",
           `max_table_nesting=0`) into its postgres destination.

The contestants take turns in every round (ours, ceiling, dlt, ours, ...), so a drift in the machine's speed weighs
on each alike; each reports its median round. Each measurement runs in a spawned child and reports the load's wall
time, its CPU time and peak RSS; the machine's other load is sampled meanwhile (bench_fub's helpers).

Knobs (environment): BENCH_STRIPE_SIZES="100000,1000000" (invoices; the sandbox is sized to hold at least that
many), BENCH_STRIPE_ROUNDS=2, BENCH_STRIPE_ONLY="ours,ceiling,dlt", BENCH_STRIPE_DLT_MAX_SIZE=100000 (dlt above it
is left out: at ~1/3 of our speed it would take most of an hour at 1M on this box), BENCH_STRIPE_KEEP=1.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import resource
import tempfile
import time
import traceback
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bench.bench_fub import (
    CpuSampler,
    Measurement,
    _database_bytes,
    _drop_database,
    _fmt,
    _fresh_database,
    _machine,
    _machine_busy,
    _median,
    _own_cpu,
    _pin,
    _postgres,
    _postmaster_pid,
    _wait_for_quiet,
    dlt_url,
)

SIZES = [int(s) for s in os.environ.get("BENCH_STRIPE_SIZES", "100000,1000000").split(",") if s.strip()]
ROUNDS = int(os.environ.get("BENCH_STRIPE_ROUNDS", "2"))
ONLY = [s.strip() for s in os.environ.get("BENCH_STRIPE_ONLY", "ours,ceiling,dlt").split(",") if s.strip()]
DLT_MAX_SIZE = int(os.environ.get("BENCH_STRIPE_DLT_MAX_SIZE", "100000"))
KEEP = os.environ.get("BENCH_STRIPE_KEEP") == "1"
TIMEOUT = 7200.0

ACCOUNT = "acme"
ENTITY = "invoices"
BATCH = 2000
PREFETCH = 8
SEED = 7
PERIODS = [f"{y}-{m:02d}" for y in range(2021, 2027) for m in range(1, 13) if "2021-11" <= f"{y}-{m:02d}" <= "2026-11"]
KINDS = ("ours", "ceiling", "dlt")


def scale_for(invoices: int) -> int:
    """The sandbox scale (acme's customers) whose acme holds at least `invoices` invoices (3 per subscription,
    3 subscriptions per 5 customers)."""
    subscriptions = -(-invoices // 3)
    return -(-subscriptions * 5 // 3)


# ----------------------------------------------------------------------------------------------
# the sandbox, in its own process on core 0
# ----------------------------------------------------------------------------------------------


def _serve(ready: multiprocessing.Queue, stop: multiprocessing.Event, scale: int) -> None:  # type: ignore[type-arg]
    from sync_pipelines.sandbox.app import Sandbox, SandboxServer

    _pin({0})
    sandbox = Sandbox(seed=SEED, scale=scale, sources=["stripe"])
    simulator = sandbox["stripe"]
    simulator.rate_limits.update(
        {context: (0, 10.0) for context in simulator.rate_limits}
    )  # the load path, not the limit
    with SandboxServer(sandbox) as server:
        acct = simulator.accounts[ACCOUNT]
        ready.put((server.url, os.getpid(), acct.key, acct.sizes[ENTITY]))
        stop.wait()


class SandboxProcess:
    def __init__(self, scale: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        ready: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
        self.stop = ctx.Event()
        self.process = ctx.Process(target=_serve, args=(ready, self.stop, scale), daemon=True)
        self.process.start()
        url, self.pid, self.key, self.invoices = ready.get(timeout=300)
        self.base_url = f"{url}/stripe"

    def close(self) -> None:
        self.stop.set()
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


# ----------------------------------------------------------------------------------------------
# the contestants, each run in a spawned child
# ----------------------------------------------------------------------------------------------


def _prepare_ours(base_url: str, key: str, db_url: str, options: dict[str, Any]) -> Callable[[], tuple[int, dict]]:
    from sync_pipelines.defs.stripe.client import StripeClient
    from sync_pipelines.defs.stripe.declaration import STRIPE
    from sync_pipelines.lib import accounts, db
    from sync_pipelines.lib.integration import sync

    engine = db.get_engine(db_url)
    account = accounts.get_account(engine, "stripe", ACCOUNT)

    def client_for(acct: accounts.Account) -> StripeClient:
        return StripeClient(base_url, accounts.secrets_for(engine, acct.id)["api_key"])

    def run() -> tuple[int, dict]:
        report = sync.backfill(engine, STRIPE, client_for, account, ENTITY, PERIODS)
        return report.counts.fetched, {"failed": report.counts.failed, "pages": report.stats.pages}

    return run


def _prepare_ceiling(base_url: str, key: str, db_url: str, options: dict[str, Any]) -> Callable[[], tuple[int, dict]]:
    import orjson

    from sync_pipelines.defs.stripe.client import StripeClient
    from sync_pipelines.lib import db
    from sync_pipelines.lib.sync import _prefetch

    def run() -> tuple[int, dict]:
        client = StripeClient(base_url, key)
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

            for page in _prefetch(client.window_pages(ENTITY, None, None, None), PREFETCH):
                pending.extend(page.records)
                if len(pending) >= BATCH:
                    flush()
            if pending:
                flush()
        return loaded, {"pages": client.stats.pages}

    return run


def dlt_config(base_url: str, key: str) -> dict[str, Any]:
    """Stripe invoices as a dlt `rest_api` source."""
    from sync_pipelines.defs.stripe.client import API_VERSION

    return {
        "client": {
            "base_url": f"{base_url}/v1/",
            "auth": {"type": "bearer", "token": key},
            "headers": {"Stripe-Version": API_VERSION},
            "paginator": {
                "type": "cursor",
                "cursor_path": "data[-1].id",
                "cursor_param": "starting_after",
                "has_more_path": "has_more",
            },
        },
        "resource_defaults": {"write_disposition": "merge", "primary_key": "id"},
        "resources": [
            {"name": "invoices", "endpoint": {"path": "invoices", "params": {"limit": 100}, "data_selector": "data"}}
        ],
    }


def _prepare_dlt(base_url: str, key: str, db_url: str, options: dict[str, Any]) -> Callable[[], tuple[int, dict]]:
    os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "ERROR")
    import dlt
    from dlt.sources.rest_api import rest_api_source

    workdir = options["workdir"]

    def run() -> tuple[int, dict]:
        source = rest_api_source(dlt_config(base_url, key), max_table_nesting=0)
        pipeline = dlt.pipeline(
            pipeline_name="bench_stripe",
            destination=dlt.destinations.postgres(credentials=db_url),
            dataset_name="stripe",
            pipelines_dir=workdir,
        )
        info = pipeline.run(source)
        info.raise_on_failed_jobs()
        return int(pipeline.last_trace.last_normalize_info.row_counts.get("invoices", 0)), {}

    return run


PREPARE = {"ours": _prepare_ours, "ceiling": _prepare_ceiling, "dlt": _prepare_dlt}


def _child(
    kind: str, base_url: str, key: str, db_url: str, options: dict[str, Any], out: multiprocessing.Queue
) -> None:  # type: ignore[type-arg]
    try:
        run = PREPARE[kind](base_url, key, db_url, options)
        usage_before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        records, extra = run()
        seconds = time.perf_counter() - started
        usage = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_self = usage.ru_utime + usage.ru_stime
        out.put({
            "records": records,
            "seconds": seconds,
            "cpu": cpu_self - (usage_before.ru_utime + usage_before.ru_stime) + children.ru_utime + children.ru_stime,
            "rss_mb": max(usage.ru_maxrss, children.ru_maxrss) / 1024,  # Linux: KiB
            "cpu_total": cpu_self + children.ru_utime + children.ru_stime,
            **extra,
        })  # fmt: skip
    except BaseException:
        out.put({"error": traceback.format_exc()})


# ----------------------------------------------------------------------------------------------
# one measurement, in the parent
# ----------------------------------------------------------------------------------------------


def _setup(kind: str, name: str, key: str) -> str:
    from sync_pipelines.lib import accounts, db, migrations

    url = _fresh_database(name)
    if kind == "ours":
        migrations.upgrade(url)
        engine = db.get_engine(url)
        accounts.upsert_account(engine, "stripe", ACCOUNT, {"api_key": key})
        engine.dispose()
    elif kind == "ceiling":
        with db.raw_connection(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE bench_raw (raw jsonb NOT NULL)")
    return dlt_url(url) if kind == "dlt" else db.libpq_uri(url)


def _landed(kind: str, name: str) -> int:
    from sync_pipelines.lib import db

    query = {
        "ours": "SELECT count(*) FROM core.stripe_invoices WHERE deleted_at IS NULL",
        "ceiling": "SELECT count(*) FROM bench_raw",
        "dlt": "SELECT count(*) FROM stripe.invoices",
    }[kind]
    with db.raw_connection(db.server_url(name)) as conn:
        return int(conn.execute(query).fetchone()[0])  # type: ignore[index]


def measure(kind: str, sandbox: SandboxProcess, size: int) -> Measurement:
    name = f"bench_stripe_{kind}_{size}"
    db_url = _setup(kind, name, sandbox.key)
    with tempfile.TemporaryDirectory(prefix="bench_stripe_dlt_") as workdir:
        ctx = multiprocessing.get_context("spawn")
        out: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
        child = ctx.Process(
            target=_child, args=(kind, sandbox.base_url, sandbox.key, db_url, {"workdir": workdir}, out)
        )
        busy_before = _wait_for_quiet()
        machine_before, parent_before = _machine_busy(), _own_cpu()
        pg, box = CpuSampler(_postmaster_pid()), CpuSampler(sandbox.pid)
        pg.start()
        box.start()
        child.start()
        deadline = time.monotonic() + TIMEOUT
        result: dict[str, Any] | None = None
        while result is None:
            try:
                result = out.get(timeout=1.0)
            except queue.Empty:
                if not child.is_alive():
                    result = {"error": f"child exited with code {child.exitcode} without a result"}
                elif time.monotonic() > deadline:
                    child.kill()
                    result = {"error": f"did not finish in {TIMEOUT:.0f} s"}
        child.join(60)
        pg_cpu, sandbox_cpu = pg.finish(), box.finish()
        machine_cpu = _machine_busy() - machine_before - (_own_cpu() - parent_before)
    if "error" in result:
        raise RuntimeError(f"{kind} at {size:,} failed:\n{result['error']}")
    landed = _landed(kind, name)
    others = machine_cpu - float(result.pop("cpu_total")) - (pg_cpu or 0.0) - (sandbox_cpu or 0.0)
    m = Measurement(kind, size, records=int(result.pop("records")), landed=landed, seconds=float(result.pop("seconds")),
                    cpu=float(result.pop("cpu")), pg_cpu=pg_cpu, sandbox_cpu=sandbox_cpu,
                    rss_mb=float(result.pop("rss_mb")), db_mb=_database_bytes(name) / 2**20,
                    others_cpu=max(others, 0.0), extra={**result, "busy_before": busy_before})  # fmt: skip
    print(f"  {kind:8} {size:>9,}: {m.landed:,} landed in {m.seconds:.1f} s = {m.rate:,.0f} invoices/s; client CPU "
          f"{m.cpu:.1f} s, Postgres CPU {_fmt(m.pg_cpu)} s, sandbox CPU {_fmt(m.sandbox_cpu)} s; others' CPU "
          f"{m.others_cpu:.1f} s; peak RSS {m.rss_mb:.0f} MB; machine {busy_before:.0f}% busy before",
          flush=True)  # fmt: skip
    assert m.landed == sandbox.invoices, f"{kind} at {size:,}: {m.landed:,} landed, the source has {sandbox.invoices:,}"
    if not KEEP:
        _drop_database(name)
    return m


# ----------------------------------------------------------------------------------------------


def report(results: dict[tuple[str, int], Measurement]) -> None:
    print()
    print("| invoices | contestant | seconds | invoices/s (rounds) | client CPU s | Postgres CPU s | sandbox CPU s "
          "| others' CPU s | peak RSS MB | database MB |")  # fmt: skip
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (kind, _), m in sorted(results.items(), key=lambda kv: (kv[0][1], KINDS.index(kv[0][0]))):
        rounds = ", ".join(f"{r:,.0f}" for r in m.runs)
        print(f"| {m.landed:,} | {kind} | {m.seconds:.1f} | {m.rate:,.0f} ({rounds}) | {m.cpu:.1f} | {_fmt(m.pg_cpu)} "
              f"| {_fmt(m.sandbox_cpu)} | {m.others_cpu:.1f} | {m.rss_mb:.0f} | {m.db_mb:,.0f} |")  # fmt: skip
    print()
    for size in sorted({s for _, s in results}):
        ours, ceiling, dlt = (results.get((k, size)) for k in KINDS)
        parts = []
        if ours and ceiling:
            parts.append(f"ours / ceiling = {ours.rate / ceiling.rate:.2f}")
        if ours and dlt:
            parts.append(f"ours / dlt = {ours.rate / dlt.rate:.1f}")
        if parts:
            print(f"{size:,}: " + "; ".join(parts))


def main() -> None:
    from sync_pipelines.lib import db

    db.server_url("postgres")  # start (or reuse) the embedded server before anything is timed
    started = datetime.now(UTC)
    print(f"date: {started:%Y-%m-%d %H:%M} UTC")
    print(f"machine: {_machine()}")
    print(_postgres())
    print(f"sizes: {', '.join(f'{s:,}' for s in SIZES)} invoices; contestants: {', '.join(ONLY)}; rounds: {ROUNDS}")
    print("sandbox: its own process pinned to core 0, rate limit off; each contestant in a spawned child, unpinned")
    rounds: dict[tuple[str, int], list[Measurement]] = defaultdict(list)
    for size in sorted(SIZES):
        sandbox = SandboxProcess(scale_for(size))
        try:
            for turn in range(ROUNDS):
                for kind in KINDS:
                    if kind not in ONLY or (kind == "dlt" and size > DLT_MAX_SIZE):
                        continue
                    print(f"round {turn + 1}: {kind} at {size:,}", flush=True)
                    rounds[(kind, size)].append(measure(kind, sandbox, size))
        finally:
            sandbox.close()
    report({key: _median(runs) for key, runs in rounds.items()})
    print(f"\nfinished in {(datetime.now(UTC) - started).total_seconds() / 60:.1f} min")


if __name__ == "__main__":
    main()
