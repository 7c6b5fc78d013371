"""reZEN transactions: what the delta costs when the source has no updated-after filter.

reZEN lists transactions only per lifecycle group (OPEN, CLOSED, TERMINATED) and cannot filter them by update
time, so the delta (`lib.integration.sync.delta`) reads the OPEN group again whole, lets the load path's change
guard skip the rows that did not change, and fetches by id the rows core held as open that the re-walk no
longer returned (closed, terminated or deleted since: `defs/rezen/lifecycle.close_departures`).

One account (`keystone`) with BENCH_REZEN_SIZE transactions (default 10,000: the sandbox scale is keystone's
transaction count), from the reZEN sandbox served by a separate process pinned to core 0, into a fresh database
on the project's Postgres (embedded unless SYNC_DATABASE_URL says otherwise). Two scenarios, each with its own
sandbox process (same seed, same data) and its own database:

- `unlimited`: the sandbox's rate limit off;
- `100/10 s`: reZEN's simulated limit (100 requests per 10 s per key), paced by the client's rate-limit headers.

Each scenario measures, through `sync.backfill` / `sync.delta` exactly as the assets call them:
(a) the full backfill of transactions; (b) a delta right after, nothing changed; (c) a delta after the sandbox
changed BENCH_REZEN_UPDATES (100) open transactions (`mutate(..., update_ids=...)`; reZEN's simulator closes or
terminates most of them, the rest move to the next open state). Before each phase the sandbox's limiter is reset
(`/_sandbox/rezen/limits`), as a delta scheduled every 5 minutes starts with a full window. After (c), reZEN's
lifecycle-group counts are checked against the warehouse's (untimed).

Knobs (environment): BENCH_REZEN_SIZE=10000, BENCH_REZEN_UPDATES=100, BENCH_REZEN_ONLY="unlimited,limited",
BENCH_REZEN_KEEP=1 (keep the bench databases).
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SIZE = int(os.environ.get("BENCH_REZEN_SIZE", "10000"))
UPDATES = int(os.environ.get("BENCH_REZEN_UPDATES", "100"))
ONLY = [s.strip() for s in os.environ.get("BENCH_REZEN_ONLY", "unlimited,limited").split(",") if s.strip()]
KEEP = os.environ.get("BENCH_REZEN_KEEP") == "1"
SEED = 7
ACCOUNT = "keystone"
ENTITY = "transactions"
# scenario -> the sandbox's global limit (requests, window seconds); 0 requests = no limit.
LIMITS = {"unlimited": (0, 10.0), "limited": (100, 10.0)}
LABELS = {"unlimited": "unlimited", "limited": "100/10 s"}
# A transaction read by id (arrakis transactions/{uuid}); list pages are .../participant/{yentaId}/transactions/...
BY_ID = r"/api/v1/transactions/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}($|\?)"


# ----------------------------------------------------------------------------------------------
# the sandbox, in its own process on core 0
# ----------------------------------------------------------------------------------------------


def _serve(ready: multiprocessing.Queue, stop: multiprocessing.Event, scale: int) -> None:  # type: ignore[type-arg]
    from sync_pipelines.sandbox.app import Sandbox, SandboxServer

    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {0})
    sandbox = Sandbox(seed=SEED, scale=scale, sources=["rezen"])
    with SandboxServer(sandbox) as server:
        ready.put((server.url, sandbox["rezen"].credentials()["accounts"][ACCOUNT]))
        stop.wait()


class SandboxProcess:
    def __init__(self, scale: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        ready: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
        self.stop = ctx.Event()
        self.process = ctx.Process(target=_serve, args=(ready, self.stop, scale), daemon=True)
        self.process.start()
        self.url, self.secrets = ready.get(timeout=120)

    def admin(self, path: str, body: dict[str, Any]) -> Any:
        import requests

        response = requests.post(f"{self.url}/_sandbox/rezen/{path}", json=body, timeout=60)
        response.raise_for_status()
        return response.json()

    def close(self) -> None:
        self.stop.set()
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


# ----------------------------------------------------------------------------------------------
# one scenario
# ----------------------------------------------------------------------------------------------


@dataclass
class Phase:
    scenario: str
    phase: str
    seconds: float
    api_calls: int
    list_pages: int
    by_id: int
    rate_limited: int
    waited: float
    fetched: int
    inserted: int
    updated: int
    unchanged: int
    deleted: int


def _fresh_database(name: str) -> Any:
    from sync_pipelines.lib import db

    _drop_database(name)
    db.ensure_database(name)
    return db.server_url(name)


def _drop_database(name: str) -> None:
    from sync_pipelines.lib import db

    with db.raw_connection(db.server_url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _calls(engine: Any) -> tuple[int, int]:
    """(list pages, reads by id) logged so far in bridge.sync_logs, 429s excluded."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT count(*) FILTER (WHERE url !~ :by_id), count(*) FILTER (WHERE url ~ :by_id) "
                "FROM bridge.sync_logs WHERE status_code IS DISTINCT FROM 429"
            ),
            {"by_id": BY_ID},
        ).one()
    return int(row[0]), int(row[1])


def _open_ids(engine: Any, account: Any, limit: int) -> list[str]:
    import sqlalchemy as sa

    from sync_pipelines.defs.rezen import lifecycle

    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT source_id FROM core.rezen_transactions WHERE account_id = :a AND deleted_at IS NULL "
                    "AND lifecycle_state = ANY(:states) ORDER BY created_at_source DESC, source_id LIMIT :n"
                ),
                {"a": account.id, "states": lifecycle.changeable_states(ENTITY), "n": limit},
            ).scalars()
        )


def _group_counts(engine: Any, client: Any, account: Any) -> tuple[dict[str, int], dict[str, int]]:
    from sync_pipelines.defs.rezen import lifecycle
    from sync_pipelines.lib import db

    with db.raw_connection(engine.url) as conn:
        ours = lifecycle.warehouse_counts_by_group(conn, ENTITY, account.id)
    return client.transaction_counts_by_group(), ours


def run_scenario(scenario: str) -> tuple[list[Phase], dict[str, Any]]:
    from sync_pipelines.defs.rezen.declaration import REZEN
    from sync_pipelines.lib import accounts, db, migrations
    from sync_pipelines.lib.integration import sync

    name = f"bench_rezen_{scenario}"
    url = _fresh_database(name)
    migrations.upgrade(url)
    engine = db.get_engine(url)
    sandbox = SandboxProcess(SIZE)
    phases: list[Phase] = []
    notes: dict[str, Any] = {}
    try:
        limit = list(LIMITS[scenario])
        account = accounts.upsert_account(engine, REZEN.name, ACCOUNT, dict(sandbox.secrets))
        resource = REZEN.sandbox_resource(sandbox.url)  # type: ignore[misc]

        def client_for(a: Any) -> Any:
            return resource.client_for(engine, a)

        def measure(phase: str, run: Any) -> None:
            sandbox.admin("limits", {"global": limit})  # a fresh window for every phase
            pages_before, by_id_before = _calls(engine)
            started = time.perf_counter()
            report = run()
            seconds = time.perf_counter() - started
            pages_after, by_id_after = _calls(engine)
            c, s = report.counts, report.stats
            phases.append(Phase(LABELS[scenario], phase, seconds, s.api_calls, pages_after - pages_before,
                                by_id_after - by_id_before, s.rate_limited, s.waited_seconds, c.fetched, c.inserted,
                                c.updated, c.unchanged, c.deleted))  # fmt: skip
            print(f"  {LABELS[scenario]:<9} {phase:<34} {seconds:6.2f} s  {s.api_calls:4} calls  {c}", flush=True)

        measure("backfill", lambda: sync.backfill(engine, REZEN, client_for, account, ENTITY, None))
        notes["open_after_backfill"] = len(_open_ids(engine, account, SIZE))
        measure("delta, nothing changed", lambda: sync.delta(engine, REZEN, client_for, account, ENTITY))
        chosen = _open_ids(engine, account, UPDATES)
        changed = sandbox.admin("mutate", {"account": ACCOUNT, "entity": ENTITY, "update_ids": chosen,
                                           "updates": len(chosen)})  # fmt: skip
        notes["changed"] = len(changed["updated"])
        measure(
            f"delta, {len(changed['updated'])} open changed",
            lambda: sync.delta(engine, REZEN, client_for, account, ENTITY),
        )
        still_open = set(_open_ids(engine, account, SIZE))
        notes["left_open"] = sum(1 for i in changed["updated"] if i not in still_open)
        sandbox.admin("limits", {"global": [0, 10.0]})
        source, ours = _group_counts(engine, client_for(account), account)
        notes["groups_match"] = source == {k: v for k, v in ours.items() if k in source or v}
        notes["groups"] = f"reZEN {source}, warehouse {ours}"
    finally:
        sandbox.close()
        engine.dispose()
        if not KEEP:
            _drop_database(name)
    return phases, notes


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
        version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    return f"Postgres {version} ({'embedded' if db.is_embedded() else 'SYNC_DATABASE_URL'})"


def main() -> None:
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {_machine()}")
    print(_postgres())
    print(f"reZEN sandbox (seed {SEED}) in its own process pinned to core 0; account {ACCOUNT}: {SIZE:,} transactions")
    results: list[Phase] = []
    for scenario in ONLY:
        phases, notes = run_scenario(scenario)
        results += phases
        print(f"  {LABELS[scenario]}: {notes['open_after_backfill']} open transactions after the backfill; "
              f"{notes['changed']} changed, {notes['left_open']} of them left OPEN (fetched by id); "
              f"lifecycle groups {'match' if notes['groups_match'] else 'DIFFER'}: {notes['groups']}")  # fmt: skip
    print()
    print(
        "| rate limit | phase | seconds | API calls | list pages | by id | 429s | waited s | fetched | inserted "
        "| updated | unchanged | soft-deleted |"
    )
    print("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for p in results:
        print(f"| {p.scenario} | {p.phase} | {p.seconds:.2f} | {p.api_calls} | {p.list_pages} | {p.by_id} "
              f"| {p.rate_limited} | {p.waited:.1f} | {p.fetched:,} | {p.inserted:,} | {p.updated:,} "
              f"| {p.unchanged:,} | {p.deleted} |")  # fmt: skip


if __name__ == "__main__":
    main()
