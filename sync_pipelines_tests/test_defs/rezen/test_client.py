"""The reZEN client against its simulator over real HTTP: whole lists, resumes, deltas, totals, fetch by id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sync_pipelines.defs.rezen.client import RezenClient, fmt_time
from sync_pipelines.defs.rezen.entities import LOAD_ORDER
from sync_pipelines.defs.rezen.lifecycle import changeable_states
from sync_pipelines.lib.integration.paging import DONE
from sync_pipelines_tests.test_defs.rezen.conftest import RezenWorld


def ids_of(records: list[dict]) -> list[str]:
    return [str(r.get("agentId") or r.get("id")) for r in records]


def read(client: RezenClient, entity: str, resume: str | None = None) -> list:
    return list(client.window_pages(entity, None, None, resume))


def test_every_entity_yields_exactly_the_sandbox_records_once(source: RezenWorld) -> None:
    for name in ("keystone", "meridian"):
        client = source.client(name)
        for entity in LOAD_ORDER:
            pages = read(client, entity)
            ids = ids_of([r for page in pages for r in page.records])
            assert len(ids) == len(set(ids)), f"{name}/{entity}: a record came twice"
            assert set(ids) == source.expected_ids(name, entity), f"{name}/{entity}"
            assert pages[-1].cursor == DONE
            # Every record can be placed in a month and read as a timestamptz by the load path.
            for record in (r for page in pages for r in page.records):
                assert datetime.fromisoformat(record["_created"].replace("Z", "+00:00")).tzinfo is not None
    keystone = source.client("keystone")
    assert keystone.yenta_id == source.sim.accounts["keystone"].owner_id  # discovered through agents/me


@pytest.mark.parametrize("entity", LOAD_ORDER)
def test_a_resume_from_any_cursor_yields_exactly_the_rest(source: RezenWorld, entity: str) -> None:
    # Pages of 7 make every multi-record list several pages long inside each lifecycle group and tier.
    client = source.client("keystone", page_size=7)
    pages = read(client, entity)
    for k, page in enumerate(pages):
        rest = read(source.client("keystone", page_size=7), entity, page.cursor)
        assert ids_of([r for p in rest for r in p.records]) == ids_of([r for p in pages[k + 1 :] for r in p.records])


def test_bounds_are_honoured_exactly_where_reZEN_filters_by_creation_day(source: RezenWorld) -> None:
    after, before = datetime(2023, 12, 31, 23, 59, 59, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC)
    client = source.client("keystone")
    january = [r for page in client.window_pages("revshare_contributions", after, before, None) for r in page.records]
    assert january and {r["_created"][:7] for r in january} == {"2024-01"}
    assert len(january) == source.sim.counts("keystone", "2024-01")["contributions"]
    # Transactions cannot be filtered by creation: the bounds are ignored and the whole list comes.
    everything = [r for page in client.window_pages("transactions", after, before, None) for r in page.records]
    assert len(everything) == source.sim.counts("keystone")["transactions"]


def test_totals_and_lifecycle_group_counts_match_what_the_lists_hold(source: RezenWorld) -> None:
    client = source.client("keystone")
    for entity in ("transactions", "listings", "agents", "network_downline", "network_frontline", "teams", "cap_info"):
        assert client.total(entity, None, None) == len(source.expected_ids("keystone", entity)), entity
    assert client.total("revshare_contributions", None, None) is None  # reZEN reports no total there
    groups = client.transaction_counts_by_group()
    assert set(groups) == {"OPEN", "CLOSED", "TERMINATED"} and sum(groups.values()) == 60
    opened = [r for p in client.updated_pages("transactions", datetime.now(UTC), timedelta(0)) for r in p.records]
    assert len(opened) == groups["OPEN"]


def test_fetch_ids_returns_what_exists_and_leaves_out_what_is_gone(source: RezenWorld) -> None:
    client = source.client("keystone")
    for entity in LOAD_ORDER:
        wanted = sorted(source.expected_ids("keystone", entity))[:3]
        assert sorted(ids_of(client.fetch_ids(entity, wanted))) == wanted, entity
    deleted = source.sim.mutate("keystone", "transactions", deletes=1)["deleted"][0]
    kept = sorted(source.expected_ids("keystone", "transactions"))[0]
    assert ids_of(client.fetch_ids("transactions", [deleted, kept])) == [kept]  # the 404 is simply absent
    assert client.fetch_ids("listings", [kept]) == []  # a transaction is not a listing


def test_updated_pages_bring_what_the_clock_created_and_changed(source: RezenWorld) -> None:
    client = source.client("keystone")
    since = source.sim.now()
    before = {r["id"]: r for r in source.records("keystone", "transactions")}
    opened = [i for i, r in before.items() if r["lifecycleState"]["state"] in ("NEW", "COMMISSION_VALIDATED")]
    source.sandbox.clock.advance(3600)
    source.sim.advance(3600)  # creates and changes transactions, agents, contributions
    changed = source.sim.mutate("keystone", "transactions", updates=3, update_ids=opened[:3])["updated"]
    after = {r["id"]: r for r in source.records("keystone", "transactions")}
    pages = list(client.updated_pages("transactions", since, timedelta(seconds=5)))
    got = {r["id"]: r for page in pages for r in page.records}
    open_states = changeable_states("transactions")
    open_now = {i for i, r in after.items() if r["lifecycleState"]["state"] in open_states}
    assert set(got) == open_now  # the open group, read again whole
    created = set(after) - set(before)
    assert created and created <= set(got)
    for i in set(changed) & open_now:
        assert got[i]["updatedAt"] > before[i]["updatedAt"]
    # Each page's cursor is `since` until the last, which is the newest updatedAt seen.
    assert {p.cursor for p in pages[:-1]} <= {fmt_time(since)}
    newest = max(r["updatedAt"] for r in got.values())
    assert pages[-1].cursor == fmt_time(datetime.fromtimestamp(newest / 1000, UTC))
    # The network has an updated-day filter: exactly the agents changed today, and no others from before.
    day_start = datetime(since.year, since.month, since.day, tzinfo=UTC)
    agents = source.sim.mutate("keystone", "agents", creates=2, updates=2)
    network = [
        r for page in client.updated_pages("network_downline", since, timedelta(seconds=5)) for r in page.records
    ]
    assert set(agents["created"]) | set(agents["updated"]) <= {a["id"] for a in network}
    assert all(a["updatedAt"] >= day_start.timestamp() * 1000 for a in network)
