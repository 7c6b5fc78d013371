"""core.transaction and core.listing hold exactly the live rows of every transaction-management source (reZEN,
SkySlope, DotLoop) after a backfill, and again after each source's delta, updated from what changed."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import URL

from sync_pipelines import registry
from sync_pipelines.defs.core.transactions import SINCE_OVERLAP, SOURCES, update_unified
from sync_pipelines.lib import accounts, db
from sync_pipelines.lib.integration import sync
from sync_pipelines.sandbox.app import Sandbox, SandboxServer
from sync_pipelines_tests.contract.subjects import SUBJECTS

NAMES = ("rezen", "skyslope", "dotloop")


def _expected(conn: sa.Connection) -> dict[tuple[str, str, str], int]:
    """Live source rows per (unified table, integration, source entity), read through each source's own table."""
    out = {}
    for table, sources in SOURCES.items():
        for source in sources:
            out[(table, source.integration, source.source_entity)] = int(
                conn.execute(sa.text(f"SELECT count(*) FROM {source.table} s WHERE s.deleted_at IS NULL")).scalar_one()
            )
    return out


def _unified(conn: sa.Connection) -> dict[tuple[str, str, str], int]:
    out = {}
    for table in SOURCES:
        rows = conn.execute(
            sa.text(f"SELECT integration, source_entity, count(*) FROM core.{table} WHERE deleted_at IS NULL "
                    "GROUP BY 1, 2")
        ).all()  # fmt: skip
        out.update({(table, integration, entity): int(n) for integration, entity, n in rows})
    return out


def test_unified_tables_hold_exactly_every_sources_live_rows_after_a_backfill_and_after_a_delta(
    database_url: URL,
) -> None:
    sandbox = Sandbox(seed=5, scale=40, sources=list(NAMES), webhook_speed=10_000.0)
    for name in NAMES:
        sandbox[name].rate_limits.update({context: (0, 10.0) for context in sandbox[name].rate_limits})
    engine = db.get_engine(database_url)
    with SandboxServer(sandbox) as server:
        clients = {}
        for name in NAMES:
            integration, subject = registry.INTEGRATIONS[name], SUBJECTS[name]
            resource = integration.sandbox_resource(server.url)
            clients[name] = lambda a, resource=resource: resource.client_for(engine, a)
            for account_name in sandbox[name].credentials()["accounts"]:
                account = accounts.upsert_account(
                    engine, name, account_name, subject.secrets(sandbox[name], account_name)
                )
                for entity in integration.load_order:
                    sync.backfill(engine, integration, clients[name], account, entity, None)
        first = datetime.now(UTC)
        update_unified(engine, None)
        with engine.connect() as conn:
            expected = _expected(conn)
            assert all(n > 0 for n in expected.values()), expected
            assert _unified(conn) == expected

        sandbox.advance(3600)  # every source creates, changes and deletes records
        for name in NAMES:
            integration = registry.INTEGRATIONS[name]
            for account in accounts.list_accounts(engine, name):
                for entity in integration.load_order:
                    sync.delta(engine, integration, clients[name], account, entity)
        written = update_unified(engine, first - SINCE_OVERLAP)
        with engine.connect() as conn:
            assert _unified(conn) == _expected(conn)
    # Incremental: the second update wrote only what the deltas touched, far fewer than the tables hold.
    assert sum(v for k, v in written.items() if ":" in k) < sum(expected.values())
