"""What each way of keeping Lofty leads current costs on one account of BENCH_LOFTY_LEADS (100,000) leads.

Lofty has no updated-after filter, so the warehouse stays current three ways (docs/integrations/lofty.md): the delta
(LastActivity order, offset pages, down to the cursor), webhooks (one fetch per named lead), and a periodic full
re-walk (scrollId over creation order, every lead read, the change guard writing only what changed). Measured here,
against the sandbox in this process and a fresh database on the warehouse server (embedded Postgres by default):

1. the first backfill of every lead (scroll),
2. a full re-walk with nothing changed,
3. a delta after BENCH_LOFTY_CHANGES (100) leads changed,
4. the same change found by a full re-walk instead,
5. the activities of every lead (one call per lead; only the first BENCH_LOFTY_ACTIVITY_LEADS leads' are read, and
   the whole is extrapolated from them).

For each: API calls, rows written, our wall time with the sandbox's rate limit off, and the time Lofty's published
allowance (500 requests a minute per app) would take for those calls, which is what bounds it in production.
BENCH_LOFTY_KEEP=1 keeps the database.
"""

from __future__ import annotations

import os
import platform
import time
from datetime import UTC, datetime
from typing import Any

LEADS = int(os.environ.get("BENCH_LOFTY_LEADS", "100000"))
CHANGES = int(os.environ.get("BENCH_LOFTY_CHANGES", "100"))
ACTIVITY_LEADS = int(os.environ.get("BENCH_LOFTY_ACTIVITY_LEADS", "2000"))
ALLOWANCE_PER_MINUTE = 500
DATABASE = "sync_bench_lofty"


def _fresh_database() -> Any:
    from sync_pipelines.lib import db

    with db.raw_connection(db.server_url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    db.ensure_database(DATABASE)
    return db.server_url(DATABASE)


def _line(label: str, calls: int, written: int, seconds: float) -> str:
    minutes = calls / ALLOWANCE_PER_MINUTE
    return (
        f"{label:<44}{calls:>9,} calls{written:>10,} rows written{seconds:>9.1f} s ours{minutes:>9.1f} min at 500/min"
    )


def main() -> None:
    from sync_pipelines.defs.lofty.declaration import LOFTY
    from sync_pipelines.lib import accounts, db, migrations
    from sync_pipelines.lib.integration import sync
    from sync_pipelines.sandbox.app import Sandbox, SandboxServer

    url = _fresh_database()
    migrations.upgrade(url)
    engine = db.get_engine(url)
    sandbox = Sandbox(seed=21, scale=LEADS, sources=["lofty"])
    simulator = sandbox["lofty"]
    simulator.rate_limits["global"] = (0, 60.0)  # ours, not the allowance: the allowance is computed from the calls
    lines: list[str] = []
    with SandboxServer(sandbox) as server:
        resource = LOFTY.sandbox_resource(server.url)  # type: ignore[misc]
        key = simulator.credentials()["accounts"]["acme"]
        account = accounts.upsert_account(engine, "lofty", "acme", {"api_key": key})
        clients: list[Any] = []

        def client_for(a: Any) -> Any:
            clients.append(resource.client_for(engine, a))
            return clients[-1]

        def measure(label: str, run: Any) -> None:
            clients.clear()
            started = time.monotonic()
            report = run()
            elapsed = time.monotonic() - started
            calls = sum(c.stats.api_calls for c in clients)
            written = report.counts.inserted + report.counts.updated + report.soft_deleted
            lines.append(_line(label, calls, written, elapsed))

        measure(
            "1. first backfill, every lead", lambda: sync.backfill(engine, LOFTY, client_for, account, "leads", None)
        )
        measure("2. full re-walk, nothing changed", lambda: sync.backfill(engine, LOFTY, client_for, account, "leads",
                                                                          None))  # fmt: skip
        simulator.mutate("acme", "leads", updates=CHANGES)
        measure(f"3. delta after {CHANGES} changed leads", lambda: sync.delta(engine, LOFTY, client_for, account,
                                                                             "leads"))  # fmt: skip
        simulator.mutate("acme", "leads", updates=CHANGES)
        measure(f"4. full re-walk after {CHANGES} changed leads",
                lambda: sync.backfill(engine, LOFTY, client_for, account, "leads", None))  # fmt: skip
        client = resource.client_for(engine, account)
        team = simulator.teams["acme"]
        started = time.monotonic()
        found = sum(len(client.activities_of(team.spec.lead_base + i)) for i in range(ACTIVITY_LEADS))
        per_lead = (time.monotonic() - started) / ACTIVITY_LEADS
        calls = LEADS + LEADS // 100  # one list of activities per lead, and the lead pages
        lines.append(_line(f"5. activities of every lead (from {ACTIVITY_LEADS:,}; {found} found)", calls,
                           found * LEADS // ACTIVITY_LEADS, per_lead * LEADS))  # fmt: skip
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {platform.node()} {os.cpu_count()} cores")
    print(f"lofty: one account of {LEADS:,} leads; webhooks cost one GET per named lead")
    for line in lines:
        print(line)
    if not os.environ.get("BENCH_LOFTY_KEEP"):
        engine.dispose()
        with db.raw_connection(db.server_url("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')


if __name__ == "__main__":
    main()
