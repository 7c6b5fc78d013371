"""The operator's DLQ commands, as a person runs them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from sync_pipelines.defs.fub.client import FubClient
from sync_pipelines.defs.fub.declaration import FUB
from sync_pipelines.lib import accounts, db
from sync_pipelines.lib.integration.sync import SyncReport, backfill
from sync_pipelines.sandbox.app import Sandbox, SandboxServer
from sync_pipelines_tests.helpers import run_cli


@dataclass
class Malformed:
    """acme's people backfilled from a sandbox that serves one record in ten malformed; the sandbox keeps serving."""

    sandbox: Sandbox
    engine: sa.Engine
    report: SyncReport
    env: dict[str, str]

    def scalar(self, query: str) -> object:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(query)).scalar()


@pytest.fixture
def malformed(database_url: URL) -> Iterator[Malformed]:
    sandbox = Sandbox(seed=8, scale=300, sources=["fub"])
    sandbox["fub"].rate_limits.update({"global": (0, 10.0)})
    sandbox["fub"].faults.update({"malformed_rate": 0.1})
    engine = db.get_engine(database_url)
    with SandboxServer(sandbox) as server:
        acme = accounts.upsert_account(engine, "fub", "acme", {"api_key": "fub_sandbox_key_acme"})
        url = f"{server.url}/fub"
        report = backfill(
            engine,
            FUB,
            lambda a: FubClient(url, "fub_sandbox_key_acme", "SyncPipelines", "fub_sandbox_system_key"),
            acme,
            "people",
            None,
        )
        assert report.counts.failed > 2
        yield Malformed(sandbox, engine, report, {"SYNC_FUB_BASE_URL": url})


def test_dlq_list_resolve_and_a_retry_that_still_fails_counts_an_attempt(malformed: Malformed) -> None:
    listed = run_cli("dlq", "list", env=malformed.env)
    assert listed.returncode == 0 and listed.stdout.count("fub/people") == malformed.report.counts.failed
    assert "required but missing" in listed.stdout or "not a valid" in listed.stdout

    first = malformed.scalar("SELECT id FROM bridge.failed_records ORDER BY created_at LIMIT 1")
    resolved = run_cli("dlq", "resolve", str(first), "--note", "checked by hand", env=malformed.env)
    assert "resolved 1" in resolved.stdout

    # The source still serves them broken: a retry counts an attempt and keeps them open.
    retried = run_cli("dlq", "retry", env=malformed.env)
    assert retried.returncode == 0 and "resolved 0" in retried.stdout, retried.stderr
    assert malformed.scalar("SELECT min(retry_count) FROM bridge.failed_records WHERE resolved_at IS NULL") == 1
    assert malformed.scalar(f"SELECT resolution FROM bridge.failed_records WHERE id = '{first}'") == "checked by hand"
    # A record that failed again refreshed its own DLQ row: still one open row per record.
    assert (
        malformed.scalar(
            "SELECT count(*) FROM (SELECT source_id FROM bridge.failed_records WHERE resolved_at IS NULL "
            "AND source_id IS NOT NULL GROUP BY source_id HAVING count(*) > 1) d"
        )
        == 0
    )


def test_dlq_retry_refetches_records_the_source_served_malformed_once_it_serves_them_well(
    malformed: Malformed,
) -> None:
    with_id = malformed.scalar("SELECT count(*) FROM bridge.failed_records WHERE source_id IS NOT NULL")
    without_id = malformed.scalar("SELECT count(*) FROM bridge.failed_records WHERE source_id IS NULL")
    assert with_id and without_id
    malformed.sandbox["fub"].faults.reset()  # the source has repaired its records

    retried = run_cli("dlq", "retry", env=malformed.env)

    assert retried.returncode == 0, retried.stderr
    assert f"resolved {with_id}," in retried.stdout
    assert f"{without_id} without an id" in retried.stdout
    assert (
        malformed.scalar(
            "SELECT count(*) FROM bridge.failed_records WHERE resolved_at IS NULL AND source_id IS NOT NULL"
        )
        == 0
    )
    # The refetched records are in core now, and the calls that fetched them are on record.
    assert (
        malformed.scalar(
            "SELECT count(*) FROM bridge.failed_records f WHERE f.source_id IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM core.fub_people p WHERE p.source_id = f.source_id AND p.deleted_at IS NULL)"
        )
        == 0
    )
    assert malformed.scalar("SELECT count(*) FROM bridge.sync_logs WHERE request_payload -> 'params' ? 'id'") >= 1


def test_dlq_retry_of_an_unknown_or_malformed_id_is_one_line_and_non_zero(malformed: Malformed) -> None:
    unknown = run_cli("dlq", "retry", "0190d2a4-0000-7000-8000-000000000000", env=malformed.env)
    assert unknown.returncode != 0 and "no open DLQ record" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1 and "Traceback" not in unknown.stderr
    garbage = run_cli("dlq", "retry", "99999", env=malformed.env)
    assert garbage.returncode != 0 and "'99999' is not a DLQ record id" in garbage.stderr
