"""A new user's first hour, checked through Dagster's GraphQL API against the real webserver and daemon: `make demo`,
then `make dev` in the background (the delta schedules set to every minute). Every asset of every registered
integration is materialized, no run has failed once each delta schedule has fired twice, and a change made in the
sandbox through its admin API reaches core by the webhook path (sandbox -> receiver -> sensor -> run)."""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from sqlalchemy.engine import URL

from sync_pipelines import local_stack, registry
from sync_pipelines.lib import db, warm_runs
from sync_pipelines.sandbox import subscriptions
from sync_pipelines_tests.e2e.helpers import GraphQL, child_processes, cli_child, free_port, wait_for
from sync_pipelines_tests.helpers import run_cli

pytestmark = pytest.mark.e2e

EVERY_MINUTE = "* * * * *"

ASSETS = """
query { assetNodes { assetKey { path } assetMaterializations(limit: 1) { runId } } }
"""
RUNS = """
query Runs($filter: RunsFilter) {
  runsOrError(filter: $filter) { __typename ... on Runs { results { runId jobName status tags { key value } } } }
}
"""
LOCATIONS = """
query { workspaceOrError { ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


def _runs(gql: GraphQL, **run_filter: Any) -> list[dict[str, Any]]:
    result = gql(RUNS, {"filter": run_filter})["runsOrError"]
    assert result["__typename"] == "Runs", result
    return result["results"]


def _loaded(gql: GraphQL) -> bool:
    if gql.server_info() is None:
        return False
    entries = gql(LOCATIONS)["workspaceOrError"]["locationEntries"]
    entry = next((e for e in entries if e["name"] == "sync_pipelines"), None)
    if entry is None or entry["loadStatus"] != "LOADED":
        return False
    assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", entry
    return True


def _received_since(engine: sa.Engine, integration: str, since: float) -> list[str]:
    """Ids of the webhook events the receiver stored for `integration` since `since` (epoch seconds)."""
    with engine.connect() as conn:
        return [str(i) for i in conn.execute(
            sa.text("SELECT id FROM bridge.webhook_events WHERE integration = :i AND received_at >= to_timestamp(:t)"),
            {"i": integration, "t": since},
        ).scalars()]  # fmt: skip


def _applied_by(
    engine: sa.Engine, core: sa.Table, account: str, source_id: str, since: float, event_ids: list[str]
) -> str | None:
    """The claim that completed every one of `event_ids`, once they all are and the record is visible in core as
    changed since `since`; None until then."""
    with engine.connect() as conn:
        visible = conn.execute(
            sa.text(f"SELECT c._synced_at >= to_timestamp(:t) FROM {core.schema}.{core.name} c "
                    "JOIN bridge.accounts a ON a.id = c.account_id WHERE a.name = :a AND c.source_id = :s"),
            {"a": account, "s": source_id, "t": since},
        ).scalar()  # fmt: skip
        claims = conn.execute(
            sa.text(
                "SELECT DISTINCT status, claimed_by FROM bridge.webhook_events WHERE id = ANY(CAST(:ids AS uuid[]))"
            ),
            {"ids": event_ids},
        ).all()
    done = bool(visible) and bool(claims) and all(status == "completed" for status, _ in claims)
    return claims[0][1] if done else None


def _webhook_change(root: str, engine: sa.Engine, gql: GraphQL, dev: Any, prefer: str | None) -> dict[str, Any]:
    """Changes one record through the sandbox's admin API, in an entity whose changes the source announces by webhook
    (`prefer` first: the entity that did last time), waits until every event it set off is completed and the record
    is visible in core, and returns the Dagster run that completed them (with "entity" added)."""
    info = requests.get(f"{root}/_sandbox/info", timeout=10).json()
    for integration in registry.INTEGRATIONS.values():
        if integration.webhooks is None or integration.name not in subscriptions.RECIPES:
            continue
        account = next(iter(info["sources"][integration.name]["credentials"]["accounts"]))
        entities = sorted(integration.entities, key=lambda e: e.name != prefer)
        for entity in entities:
            changed_at = time.time()
            body = {"account": account, "entity": entity.source, "updates": 1}
            response = requests.post(f"{root}/_sandbox/{integration.name}/mutate", json=body, timeout=10)
            if not (response.ok and response.json().get("updated")):
                continue
            source_id = str(response.json()["updated"][0])
            # Not every entity's changes are announced (FUB sends no webhook for users): try the next one.
            deadline = time.monotonic() + 10
            while not (received := _received_since(engine, integration.name, changed_at - 1)):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            if not received:
                continue
            applied = functools.partial(
                _applied_by, engine, entity.spec.core, account, source_id, changed_at - 1, received
            )
            claim = wait_for(applied, timeout=90, what=f"{integration.name} {entity.name} {source_id} through the "
                             "webhook path", diagnose=dev.tail)  # fmt: skip

            # The run marks its events completed before it ends: wait for its end, then judge it.
            def ended(claim: str = claim) -> list[dict[str, Any]] | None:
                found = _runs(gql, tags=[{"key": "sync_pipelines/webhook_claim", "value": claim}])
                return (
                    found if found and all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in found) else None
                )

            found = wait_for(ended, timeout=60, what=f"the webhook run of claim {claim} to end", diagnose=dev.tail)
            assert len(found) == 1 and found[0]["jobName"] == f"{integration.name}_webhook_apply", found
            return {**found[0], "entity": entity.name}
    raise AssertionError("no sandbox source with webhooks announced an update made through its admin API")


def _assert_the_demo_reported_everything(out: str, err: str, database_url: URL) -> None:
    from sync_pipelines.lib import migrations

    # Every registered integration end to end: every entity of every account whose source reports a total matches it.
    match_lines = [line for line in out.splitlines() if line.rstrip().endswith((" yes", " NO"))]
    assert match_lines and all(line.rstrip().endswith("yes") for line in match_lines), out[-4000:]
    for integration in registry.INTEGRATIONS.values():
        assert f"== {integration.title}" in out
    assert "delta run succeeded" in out and "FAILED" not in out and "next steps:" in out
    assert "Warning" not in out + err  # a clean run prints no warning
    assert "migration:" in out and migrations.head_revision() in out
    assert "asset groups:" in out and "platform" in out
    # The URL is printed without its password.
    assert database_url.database in out and (not database_url.password or str(database_url.password) not in out)


def test_demo_then_dev_leaves_every_asset_materialized_no_run_failed_and_webhooks_live(
    database_url: URL, tmp_path: Path
) -> None:
    root = f"http://127.0.0.1:{free_port()}"
    ui_port, hook_port = free_port(), free_port()
    env = {
        **local_stack.sandbox_env(root),
        "SYNC_DEMO_SCALE": "20",  # the smallest scale that still gives every entity rows
        **{i.delta_cron_env: EVERY_MINUTE for i in registry.INTEGRATIONS.values() if i.delta_cron_env},
    }
    demo = run_cli("demo", env=env, timeout=900)
    assert demo.returncode == 0, demo.stdout[-4000:] + demo.stderr[-4000:]
    _assert_the_demo_reported_everything(demo.stdout, demo.stderr, database_url)
    engine = db.get_engine(database_url)

    with child_processes() as started:
        dev = cli_child("dev", ["dev", "--port", str(ui_port), "--webhook-port", str(hook_port)], tmp_path, env=env)
        started.append(dev)
        gql = GraphQL(f"http://127.0.0.1:{ui_port}")

        def ready() -> bool:
            assert dev.alive(), f"`sync-pipelines dev` exited\n{dev.tail()}"
            return _loaded(gql)

        wait_for(ready, timeout=180, what="the Dagster UI and its code location", diagnose=dev.tail)
        dev_started = time.time()

        # Every asset the UI shows was materialized by the demo's runs.
        nodes = gql(ASSETS)["assetNodes"]
        never = ["/".join(n["assetKey"]["path"]) for n in nodes if not n["assetMaterializations"]]
        assert nodes and never == [], f"never materialized: {never}"
        groups = {n["assetKey"]["path"][0] for n in nodes}
        assert set(registry.INTEGRATIONS) <= groups

        # A change in the sandbox reaches core through the receiver, the sensor and a webhook run launched by the
        # daemon; the next batch starts in a run worker warmed up after the first launch (lib/warm_runs.py).
        first = _webhook_change(root, engine, gql, dev, prefer=None)
        assert first["status"] == "SUCCESS", first
        second = _webhook_change(root, engine, gql, dev, prefer=first["entity"])
        assert second["status"] == "SUCCESS", second
        assert any(t["key"] == warm_runs.WARM_START_TAG for t in second["tags"]), second

        # Each delta schedule fires twice (every minute here), and its runs succeed.
        def fired_twice() -> bool:
            assert dev.alive(), f"`sync-pipelines dev` exited\n{dev.tail()}"
            for name in registry.INTEGRATIONS:
                runs = [r for r in _runs(gql, pipelineName=f"{name}_delta_sync")
                        if any(t["key"] == "dagster/schedule_name" for t in r["tags"])]  # fmt: skip
                if len([r for r in runs if r["status"] in ("SUCCESS", "FAILURE", "CANCELED")]) < 2:
                    return False
            return True

        wait_for(fired_twice, timeout=240, interval=5, what="two scheduled deltas of every integration",
                 diagnose=dev.tail)  # fmt: skip
        failed = _runs(gql, statuses=["FAILURE", "CANCELED"])
        assert failed == [], f"failed runs: {[(r['jobName'], r['runId']) for r in failed]}\n{dev.tail(80)}"
        assert time.time() > dev_started
