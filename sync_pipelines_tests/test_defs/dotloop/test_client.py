"""The DotLoop client's pages against the simulator: every entity exactly once, month windows exact, resumable from
any cursor, nothing skipped when loops leave the list or contacts are deleted mid-walk, totals, fetch by id."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest

from sync_pipelines.defs.dotloop.client import LOOP_PREFIX, DotLoopClient, flatten_details
from sync_pipelines.defs.dotloop.tokens import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET
from sync_pipelines.lib.integration.sync import month_window
from sync_pipelines.lib.sync import Page
from sync_pipelines.sandbox import dotloop as simulator
from sync_pipelines_tests.test_defs.dotloop.conftest import USERS, DotLoopWorld

ENTITIES = ("profiles", "loops", "participants", "contacts")


def ids(pages: list[Page]) -> list[str]:
    return [str(r["id"]) for page in pages for r in page.records]


def test_the_resource_defaults_to_the_sandboxs_demo_client() -> None:
    assert (SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET) == (simulator.CLIENT_ID, simulator.CLIENT_SECRET)


@pytest.mark.parametrize("ties", [1, 10], ids=["distinct-times", "ties-longer-than-a-batch"])
def test_every_entity_pages_exactly_what_the_source_holds(world: DotLoopWorld, ties: int) -> None:
    # Batches of 7 against runs of 10 loops sharing one `created`: the keyset walks a tie run by batch number.
    world.sim.faults.update({"timestamp_ties": ties})
    for name in USERS:
        client = world.client(name, batch_size=7)
        for entity in ENTITIES:
            read = ids(list(client.window_pages(entity, None, None, None)))
            assert Counter(read).most_common(1)[0][1] == 1, (name, entity)  # each record once
            assert set(read) == world.expected_ids(name, entity), (name, entity)
            assert client.total(entity, None, None) in (len(read), None)
    loops = [r for p in world.client("acme").window_pages("loops", None, None, None) for r in p.records]
    assert {r["_profileId"] for r in loops} == {"4001001", "4001002"}
    participants = [r for p in world.client("acme").window_pages("participants", None, None, None) for r in p.records]
    assert all(r["_loopId"] and r["_created"] and r["_updated"] for r in participants)


def test_a_month_window_reads_exactly_that_months_loops_and_participants(world: DotLoopWorld) -> None:
    client = world.client("acme", batch_size=5)
    months = sorted({r["created"][:7] for p in client.window_pages("loops", None, None, None) for r in p.records})
    for period in (months[0], months[len(months) // 2], months[-1]):
        after, before = month_window(period)
        for entity in ("loops", "participants"):
            read = ids(list(client.window_pages(entity, after, before, None)))
            assert sorted(read) == sorted(world.expected_ids("acme", entity, period)), (entity, period)
        assert client.total("loops", after, before) == len(world.expected_ids("acme", "loops", period))
    first, last = month_window(months[0])[0], month_window(months[-1])[1]
    assert ids(list(client.window_pages("loops", first, last, None))) == ids(
        list(client.window_pages("loops", None, None, None))
    )


@pytest.mark.parametrize("entity", ["loops", "participants", "contacts"])
def test_a_walk_resumed_from_any_cursor_reads_the_rest(world: DotLoopWorld, entity: str) -> None:
    whole = list(world.client("acme", batch_size=8).window_pages(entity, None, None, None))
    assert len(whole) > 4
    for stop in (1, len(whole) // 2, len(whole) - 1):
        resumed = list(world.client("acme", batch_size=8).window_pages(entity, None, None, whole[stop - 1].cursor))
        assert ids(whole[:stop]) + ids(resumed) == ids(whole), (entity, stop)


def test_loops_that_leave_the_list_mid_walk_skip_no_other_loop(world: DotLoopWorld) -> None:
    """An offset walk would skip as many loops as left before its position; the keyset skips none."""
    profile = world.sim.users["acme"].default_profile
    pages = world.client("acme", batch_size=10).window_pages("loops", None, None, None)
    first = next(pages)
    for record in first.records[:3]:
        profile.loops.delete(record["id"])  # as a merge takes a loop out of the list
    rest = ids([first, *pages])
    assert world.expected_ids("acme", "loops") <= set(rest)
    assert len(rest) == len(set(rest))


def test_contacts_deleted_mid_walk_skip_no_other_contact(world: DotLoopWorld) -> None:
    contacts = world.sim.users["acme"].contacts
    pages = world.client("acme", batch_size=10).window_pages("contacts", None, None, None)
    first, second = next(pages), next(pages)
    for record in first.records[:4]:
        contacts.delete(record["id"])
    rest = ids([first, second, *pages])
    assert world.expected_ids("acme", "contacts") <= set(rest)
    assert len(rest) == len(set(rest))


def test_a_delta_walk_finds_what_changed_even_while_it_pages(world: DotLoopWorld) -> None:
    since = world.sim.now()
    changed = set()
    for account in ("acme", "acme:4001002"):
        result = world.sim.mutate(account, "loops", creates=2, updates=3)
        changed |= {str(i) for i in result["created"] + result["updated"]}
    # Every page served changes a loop already served: it moves to the end of the `updated` order.
    world.sim.faults.update({"change_between_pages": 1})
    pages = list(world.client("acme", batch_size=3).updated_pages("loops", since, timedelta(seconds=5)))
    assert changed <= set(ids(pages))
    assert {p.cursor for p in pages[:-1]} == {since.strftime("%Y-%m-%dT%H:%M:%SZ")}
    assert pages[-1].records == [] and datetime.fromisoformat(pages[-1].cursor.replace("Z", "+00:00")) > since


def test_loop_details_are_flattened_into_typed_values(world: DotLoopWorld) -> None:
    loop = next(iter(world.client("acme").window_pages("loops", None, None, None))).records[0]
    profile = world.sim.users["acme"].default_profile
    sections = world.sim.loop_detail(profile, loop["id"])
    assert loop["details"] == sections
    month, day, year = sections["Contract Dates"]["Closing Date"].split("/")
    assert loop["_detail"]["closing_date"] == f"{year}-{month}-{day}"
    assert loop["_detail"]["street_number"] == sections["Property Address"]["Street Number"]
    assert float(loop["_detail"]["price"]) == float(sections["Financials"]["Purchase/Sale Price"])
    odd = flatten_details(
        {
            "Financials": {"Purchase/Sale Price": "$1,250,000.50"},
            "Contract Dates": {"Closing Date": "TBD", "Contract Agreement Date": "2024-03-05"},
            "Listing Information": {"Current Price": "999"},
        }
    )
    assert odd["price"] == "1250000.50" and odd["closing_date"] is None
    assert odd["contract_agreement_date"] == "2024-03-05" and odd["city"] is None
    assert flatten_details(None)["price"] is None


def test_fetch_by_id_follows_merges_and_reads_participant_lists(world: DotLoopWorld) -> None:
    merges: list[tuple[str, str]] = []
    client = DotLoopClient(
        world.resource().api_url,
        world.resource().token_endpoint(),
        world.client("acme")._store,
        on_merge=lambda old, new: merges.append((old, new)),
    )
    merged = world.sim.mutate("acme", "loops", deletes=1)["merged_into"][0]
    old, survivor = str(merged[0]), str(merged[1])
    loops = [i for i in ids(list(client.window_pages("loops", None, None, None))) if i != survivor][:3]
    fetched = client.fetch_ids("loops", [*loops, old, "999999999"])
    assert {r["id"] for r in fetched} == {int(i) for i in [*loops, survivor]}
    assert merges == [(old, survivor)]
    assert all(r["details"] and r["_detail"]["zip"] for r in fetched)

    profile = world.sim.users["acme"].default_profile
    expected = {str(p) for p in world.sim.participant_ids(profile, int(survivor))}
    by_loop = client.fetch_ids("participants", [f"{LOOP_PREFIX}{survivor}", f"{LOOP_PREFIX}{old}"])
    assert {str(r["id"]) for r in by_loop} == expected and {r["_loopId"] for r in by_loop} == {survivor}
    contacts = world.expected_ids("acme", "contacts")
    some = sorted(contacts)[:2]
    assert {str(r["id"]) for r in client.fetch_ids("contacts", [*some, "1"])} == set(some)
    assert [r["id"] for r in client.fetch_ids("profiles", ["4001002"])] == [4001002]


def test_a_new_loop_is_found_in_whichever_profile_has_it(world: DotLoopWorld) -> None:
    created = str(world.sim.mutate("acme:4001002", "loops", creates=1)["created"][0])
    client = world.client("acme")  # the warehouse knows nothing of it: each profile is asked
    (record,) = client.fetch_ids("loops", [created])
    assert record["_profileId"] == "4001002" and str(record["id"]) == created
