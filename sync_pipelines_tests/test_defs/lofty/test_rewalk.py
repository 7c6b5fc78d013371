"""The nightly full re-walk: a change neither the LastActivity delta nor a webhook can see (a tag removed without the
lead's activity moving) is caught by the schedule's runs, and a re-walk of unchanged leads writes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from sync_pipelines.definitions import defs
from sync_pipelines.defs.lofty.declaration import LOFTY
from sync_pipelines.lib.integration import builders
from sync_pipelines.lib.resources import WarehouseResource
from sync_pipelines_tests.test_defs.lofty.conftest import LoftyWorld

TICK = datetime(2026, 12, 7, 3, 30, tzinfo=UTC)


def _schedule(label: str) -> dg.ScheduleDefinition:
    return next(s for s in defs.schedules or [] if s.name == f"lofty_full_rewalk_{label}")  # type: ignore[union-attr]


def _run_rewalk(instance: dg.DagsterInstance, world: LoftyWorld) -> list[dg.ExecuteInProcessResult]:
    results = []
    for label in ("lists", "monthly"):
        schedule = _schedule(label)
        context = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=TICK, repository_def=defs.get_repository_def()
        )
        requests = schedule.evaluate_tick(context).run_requests or []
        for request in requests:
            assert request.tags[builders.INTEGRATION_TAG] == "lofty"
            # What the daemon launches for the request (its assets, partition or range, tags), with the resource
            # pointed at this test's simulator instead of the configured base URL.
            chosen = set(request.asset_selection or [])
            results.append(
                dg.materialize(
                    [a for a in builders.entity_assets(LOFTY) if set(a.keys) & chosen],
                    selection=list(chosen),
                    instance=instance,
                    partition_key=request.partition_key,
                    tags=request.tags,
                    resources={LOFTY.resource_key: world.resource(), "warehouse": WarehouseResource()},
                    raise_on_error=False,
                )
            )
    return results


def test_the_schedules_rewalk_leads_and_tags_not_activities() -> None:
    assert LOFTY.rewalk_cron
    selected = {key.path[-1] for label in ("lists", "monthly") for key in _schedule_selection(label)}
    assert selected == {"leads", "tags"}


def _schedule_selection(label: str) -> list[dg.AssetKey]:
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(builders.partitions(LOFTY).accounts.name, ["acme"])
        context = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=TICK, repository_def=defs.get_repository_def()
        )
        requests = _schedule(label).evaluate_tick(context).run_requests or []
        assert len(requests) == 1
        return list(requests[0].asset_selection or [])


def test_a_tag_removed_without_any_activity_is_caught_by_the_nightly_rewalk(
    world: LoftyWorld,
) -> None:
    world.backfill("leads")
    world.backfill("tags")
    team = world.sim.teams["acme"].leads
    lead_id = next(
        int(i) for i in sorted(world.live_leads(), key=int) if len((team.get(int(i)) or {}).get("tags") or []) >= 1
    )
    record = team.get(lead_id) or {}
    created, updated = team.times(lead_id)  # type: ignore[misc]
    removed = record["tags"][0]
    # Nothing moves the lead in the LastActivity order and no webhook is sent: only a re-walk can see it.
    team.put(lead_id, {**record, "tags": record["tags"][1:]}, created, updated)
    tag_key = f"{lead_id}:{removed['id']}" if "id" in removed else None
    before = world.core_ids("tags")
    assert tag_key is None or tag_key in before
    assert world.delta("tags").metadata().get("rows_deleted", 0) in (0, None)

    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(builders.partitions(LOFTY).accounts.name, ["acme"])
        results = _run_rewalk(instance, world)
        assert results and all(r.success for r in results)
        # A range run reports its one pass on each partition's materialization: one per run is the pass.
        leads = [
            next(
                e.step_materialization_data.materialization.metadata
                for e in r.get_asset_materialization_events()
                if e.asset_key == dg.AssetKey(["lofty", "core", "leads"])
            )
            for r in results
            if any(e.asset_key == dg.AssetKey(["lofty", "core", "leads"]) for e in r.get_asset_materialization_events())
        ]

    after = world.core_ids("tags")
    assert len(before - after) == 1
    assert tag_key is None or tag_key not in after
    # The change guard: of every lead read again, only the one whose tags changed is written.
    assert [(m["rows_inserted"].value, m["rows_updated"].value) for m in leads] == [(0, 1)]
