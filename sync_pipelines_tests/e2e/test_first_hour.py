"""A new user's first hour, checked through Dagster's GraphQL API against the real webserver and daemon: `make demo`,
then `make dev` in the background (the delta schedules set to every minute). Every asset of every registered
integration is materialized, no run has failed once each delta schedule has fired twice, and a change made in the
sandbox through its admin API reaches core by the webhook path (sandbox -> receiver -> sensor -> run)."""

from __future__ import annotations

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


def _change_one_record(root: str) -> tuple[Any, str, str, str]:
    """Through the sandbox's admin API: one record of an integration with webhooks changed. Returns the integration,
    its entity, the account and the record's source id."""
    info = requests.get(f"{root}/_sandbox/info", timeout=10).json()
    for integration in registry.INTEGRATIONS.values():
        if integration.webhooks is None or integration.name not in subscriptions.RECIPES:
            continue
        account = next(iter(info["sources"][integration.name]["credentials"]["accounts"]))
        for entity in integration.entities:
            body = {"account": account, "entity": entity.source, "updates": 1}
            response = requests.post(f"{root}/_sandbox/{integration.name}/mutate", json=body, timeout=10)
            if response.ok and response.json().get("updated"):
                return integration, entity.name, account, str(response.json()["updated"][0])
    raise AssertionError("no sandbox source with webhooks took an update through the admin API")


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

        # A change in the sandbox reaches core through the receiver, the sensor and a webhook run.
        changed_at = time.time()
        integration, entity, account, source_id = _change_one_record(root)
        core = integration.entity(entity).spec.core

        def applied() -> bool:
            with engine.connect() as conn:
                synced = conn.execute(
                    sa.text(f"SELECT extract(epoch FROM c._synced_at) FROM {core.schema}.{core.name} c "
                            "JOIN bridge.accounts a ON a.id = c.account_id WHERE a.name = :a AND c.source_id = :s"),
                    {"a": account, "s": source_id},
                ).scalar()  # fmt: skip
            return synced is not None and float(synced) >= changed_at - 1

        wait_for(applied, timeout=90, what=f"{integration.name} {entity} {source_id} through the webhook path",
                 diagnose=dev.tail)  # fmt: skip
        webhook_runs = _runs(gql, pipelineName=f"{integration.name}_webhook_apply")
        assert any(r["status"] == "SUCCESS" for r in webhook_runs), webhook_runs

        # The next batch starts in a run worker the daemon warmed up after launching the first (lib/warm_runs.py).
        changed_at = time.time()
        integration, entity, account, source_id = _change_one_record(root)
        core = integration.entity(entity).spec.core
        wait_for(applied, timeout=90, what=f"a second change of {integration.name} {entity} through the webhook path",
                 diagnose=dev.tail)  # fmt: skip
        warm = [r for r in _runs(gql, pipelineName=f"{integration.name}_webhook_apply")
                if any(t["key"] == warm_runs.WARM_START_TAG for t in r["tags"])]  # fmt: skip
        assert warm and all(r["status"] == "SUCCESS" for r in warm), warm

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
