from __future__ import annotations

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import URL

from sync_pipelines.defs.core.assets import contact_log, contact_log_has_no_orphans, participant
from sync_pipelines.defs.fub.client import FubClient
from sync_pipelines.defs.fub.declaration import FUB
from sync_pipelines.lib import accounts, db
from sync_pipelines.lib.integration import sync as fub_sync
from sync_pipelines.lib.resources import WarehouseResource
from sync_pipelines.sandbox.app import Sandbox, SandboxServer


def test_fub_people_users_and_activities_feed_participant_and_contact_log(
    database_url: URL, dagster_instance: dg.DagsterInstance
) -> None:
    sandbox = Sandbox(seed=3, scale=200, sources=["fub"])
    sandbox["fub"].rate_limits.update({"global": (0, 10.0), "events": (0, 10.0)})
    engine = db.get_engine(database_url)
    with SandboxServer(sandbox) as server:
        acme = accounts.upsert_account(engine, "fub", "acme", {"api_key": "fub_sandbox_key_acme"})

        def client_for(account: accounts.Account) -> FubClient:
            return FubClient(f"{server.url}/fub", "fub_sandbox_key_acme", "SyncPipelines", "fub_sandbox_system_key")

        for entity in ("users", "people", "calls", "text_messages", "events", "appointments"):
            fub_sync.backfill(engine, FUB, client_for, acme, entity, None)
    counts = sandbox["fub"].counts("acme")
    result = dg.materialize(
        [participant, contact_log, contact_log_has_no_orphans],
        instance=dagster_instance,
        resources={"warehouse": WarehouseResource()},
    )
    assert result.success
    with engine.connect() as conn:
        kinds = dict(conn.execute(sa.text("SELECT kind, count(*) FROM core.participant GROUP BY kind")).all())
        logs = dict(conn.execute(sa.text("SELECT kind, count(*) FROM core.contact_log GROUP BY kind")).all())
    assert kinds == {"lead": counts["people"], "agent": counts["users"]}
    assert logs == {"call": counts["calls"], "text": counts["textMessages"], "event": counts["events"],
                    "appointment": counts["appointments"]}  # fmt: skip
    assert all(c.passed for c in result.get_asset_check_evaluations())
    # A second rebuild with nothing changed writes nothing.
    again = dg.materialize([participant], instance=dagster_instance, resources={"warehouse": WarehouseResource()})
    written = again.get_asset_materialization_events()[0].step_materialization_data.materialization.metadata
    assert written["rows_written"].value == 0
