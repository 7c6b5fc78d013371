"""An account larger than Lofty's offset window is read whole and exact (by scrollId), in backfills and in a delta
that outgrows the window; a month of leads is exactly that month; tags and activities match the source's own."""

from __future__ import annotations

import orjson

from sync_pipelines_tests.test_defs.lofty.conftest import LoftyWorld


def _scrolled(world: LoftyWorld) -> int:
    rows = world.scalar(
        "SELECT count(*) FROM bridge.sync_logs WHERE integration = 'lofty' AND request_payload::text LIKE '%scrollId%'"
    )
    return int(rows)


def test_an_account_larger_than_the_offset_window_is_read_whole_and_exact(world: LoftyWorld) -> None:
    world.sim.max_result_window = 100  # 300 leads: three times the window
    report = world.backfill("leads")
    assert report.counts.failed == 0
    assert world.core_ids("leads") == world.live_leads() and len(world.live_leads()) == 300
    assert report.counts.inserted == 300 and report.stats.pages == 3  # 100 a page, scrolled
    assert _scrolled(world) >= 2
    assert world.scalar("SELECT count(*) FROM bridge.sync_logs WHERE status_code = 400") == 0
    again = world.backfill("leads")
    assert (again.counts.inserted, again.counts.updated, again.soft_deleted) == (0, 0, 0)


def test_a_delta_larger_than_the_offset_window_carries_on_by_scroll_and_misses_nothing(world: LoftyWorld) -> None:
    world.backfill("leads")
    world.sim.max_result_window = 150
    changed = world.sim.mutate("acme", "leads", updates=220)["updated"]
    assert len(changed) == 220
    report = world.delta("leads")
    assert report.counts.updated == 220 and report.counts.failed == 0
    # Refused at the account's window (smaller here than the usual 10,000), it went on by the last page's scroll.
    assert world.scalar("SELECT count(*) FROM bridge.sync_logs WHERE status_code = 400") == 1
    assert _scrolled(world) >= 1
    # The cursor is the newest change it saw: the next delta re-reads only the overlap (here the 220 leads changed in
    # the same second) and changes nothing.
    quiet = world.delta("leads")
    assert (quiet.counts.inserted, quiet.counts.updated) == (0, 0) and quiet.counts.fetched < 300


def test_a_month_of_leads_is_exactly_the_leads_created_that_month(world: LoftyWorld) -> None:
    period = "2024-03"
    report = world.backfill("leads", periods=[period])
    expected = world.sim.counts("acme", period)["leads"]
    assert expected > 0 and report.counts.inserted == expected
    months = world.scalar("SELECT count(DISTINCT period_key) FROM core.lofty_leads")
    assert months == 1


def test_tags_are_objects_and_activities_per_lead_match_the_source(world: LoftyWorld) -> None:
    for entity in ("users", "leads", "tags", "activities"):
        report = world.backfill(entity)
        assert report.counts.failed == 0 and report.counts.pending == 0, entity
    assert len(world.core_ids("tags")) == world.sim.tag_count("acme") > 0
    assert len(world.core_ids("activities")) == world.sim.activity_count("acme") > 0
    name, tag_id, lead = world.scalar(
        "SELECT array[tag_name, tag_id::text, lead_source_id] FROM core.lofty_tags ORDER BY source_id LIMIT 1"
    )
    assert name and int(tag_id) >= 500 and lead in world.live_leads()
    # int64 ids arrive exact: the source id is the JSON number's digits.
    lead_id = max(world.live_leads(), key=int)
    assert int(lead_id) > 2**49
    raw = world.scalar("SELECT raw::text FROM staging.lofty_leads WHERE source_id = :s LIMIT 1", s=lead_id)
    assert orjson.loads(raw)["leadId"] == int(lead_id)


def test_a_delta_brings_new_activities_of_the_leads_whose_last_activity_moved(world: LoftyWorld) -> None:
    for entity in ("users", "leads", "tags", "activities"):
        world.backfill(entity)
    lead = world.sim.teams["acme"].spec.lead_base + 11
    created = world.sim.mutate("acme", "activities", creates=2, update_ids=[lead, lead])["created"]
    report = world.delta("activities")
    assert report.counts.inserted == 2 and {str(i) for i in created} <= world.core_ids("activities")
    assert report.stats.api_calls <= 3  # one page of leads, one list of activities
    assert len(world.core_ids("activities")) == world.sim.activity_count("acme")
