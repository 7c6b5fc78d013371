"""The operator's DLQ commands, as a person runs them."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import URL

from sync_pipelines.defs.fub.client import FubClient
from sync_pipelines.defs.fub.sync import backfill
from sync_pipelines.lib import accounts, db
from sync_pipelines.sandbox.app import Sandbox, SandboxServer
from sync_pipelines_tests.helpers import run_cli


def test_dlq_list_resolve_and_retry_after_a_mapping_fix(database_url: URL) -> None:
    sandbox = Sandbox(seed=8, scale=300, sources=["fub"])
    sandbox["fub"].rate_limits.update({"global": (0, 10.0)})
    sandbox["fub"].faults.update({"malformed_rate": 0.1})
    engine = db.get_engine(database_url)
    with SandboxServer(sandbox) as server:
        acme = accounts.upsert_account(engine, "fub", "acme", {"api_key": "fub_sandbox_key_acme"})
        report = backfill(
            engine,
            lambda a: FubClient(f"{server.url}/fub", "fub_sandbox_key_acme", "SyncPipelines", "fub_sandbox_system_key"),
            acme,
            "people",
            None,
        )
    assert report.counts.failed > 2

    listed = run_cli("dlq", "list")
    assert listed.returncode == 0 and listed.stdout.count("fub/people") == report.counts.failed
    assert "required but missing" in listed.stdout or "not a valid" in listed.stdout

    with engine.connect() as conn:
        first = conn.execute(sa.text("SELECT id FROM bridge.failed_records ORDER BY created_at LIMIT 1")).scalar_one()
    resolved = run_cli("dlq", "resolve", str(first), "--note", "checked by hand")
    assert "resolved 1" in resolved.stdout

    # Still broken: a retry counts an attempt and keeps them open.
    retried = run_cli("dlq", "retry")
    assert retried.returncode == 0 and "resolved 0" in retried.stdout
    with engine.connect() as conn:
        attempts = conn.execute(
            sa.text("SELECT min(retry_count) FROM bridge.failed_records WHERE resolved_at IS NULL")
        ).scalar_one()
        note = conn.execute(
            sa.text("SELECT resolution FROM bridge.failed_records WHERE id = :i"), {"i": first}
        ).scalar()
    assert attempts == 1 and note == "checked by hand"
