"""The SkySlope client against its simulator over real HTTP: whole reads, creation windows, resumes, deltas, totals,
fetch by GUID, the session's renewal, and the bulk feed's control bytes."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from sync_pipelines.defs.skyslope.client import SkySlopeClient, _renew_at, parse_iso
from sync_pipelines.defs.skyslope.entities import ID_FIELDS, LOAD_ORDER
from sync_pipelines.lib.http import AuthError
from sync_pipelines.lib.integration.paging import DONE
from sync_pipelines.lib.integration.sync import month_window
from sync_pipelines.lib.sync import Page
from sync_pipelines_tests.test_defs.skyslope.conftest import NAMES, SkySlopeWorld


def read(client: SkySlopeClient, entity: str, resume: str | None = None) -> list[Page]:
    return list(client.window_pages(entity, None, None, resume))


def ids_of(entity: str, pages: list[Page]) -> list[str]:
    return [r.get(ID_FIELDS[entity]) for page in pages for r in page.records]


def test_every_entity_yields_exactly_the_sandbox_records_once_and_totals_agree(source: SkySlopeWorld) -> None:
    for name in NAMES:
        client = source.client(name)
        for entity in LOAD_ORDER:
            pages = read(client, entity)
            ids = ids_of(entity, pages)
            assert len(ids) == len(set(ids)), f"{name}/{entity}: a record came twice"
            assert set(ids) == source.expected_ids(name, entity), f"{name}/{entity}"
            assert pages[-1].cursor == DONE
            assert client.total(entity, None, None) == len(ids), f"{name}/{entity}"
            # Every record can be placed in a month and read as a timestamptz by the load path.
            for record in (r for page in pages for r in page.records):
                assert parse_iso(record["_created"]).tzinfo is not None and record["_updated"]
    sales = [r for p in read(source.client(), "sales") for r in p.records]
    assert all(r["objectType"] == "sale" for r in sales)  # the bulk export's `type` keeps listings out


def test_a_creation_month_is_exact_and_counted_alike_by_the_paged_list(source: SkySlopeWorld) -> None:
    client = source.client()
    for period in ("2021-11", "2024-01", "2026-10"):
        after, before = month_window(period)
        for entity in ("sales", "listings"):
            records = [r for page in client.window_pages(entity, after, before, None) for r in page.records]
            expected = source.sim.counts("harbor", period)[entity]
            assert len(records) == expected > 0 and {r["_created"][:7] for r in records} == {period}
            assert client.total(entity, after, before) == expected
    # Users and offices are lists with no creation filter: no count for a window.
    assert client.total("users", *month_window("2024-01")) is None


def test_a_file_created_in_a_months_last_second_is_read_and_counted_in_that_month_only(source: SkySlopeWorld) -> None:
    # The kit's month windows start a second before the month; SkySlope's times have milliseconds.
    last_second = datetime(2026, 11, 30, 23, 59, 58, tzinfo=UTC)
    source.sandbox.clock.advance((last_second - source.sim.now()).total_seconds())
    late = source.sim.mutate("harbor", "sales", creates=1)["created"][0]  # one tick on: 23:59:59.345
    client = source.client()
    november = [r["saleGuid"] for p in client.window_pages("sales", *month_window("2026-11"), None) for r in p.records]
    december = [r["saleGuid"] for p in client.window_pages("sales", *month_window("2026-12"), None) for r in p.records]
    assert late in november and december == []
    assert client.total("sales", *month_window("2026-12")) == 0
    assert client.total("sales", *month_window("2026-11")) == len(november)


def test_a_resume_from_any_cursor_yields_exactly_what_was_created_after_it(source: SkySlopeWorld) -> None:
    client = source.client()
    pages = read(client, "sales")
    created = {r["saleGuid"]: parse_iso(r["_created"]) for p in pages for r in p.records}
    assert len(pages) > 3  # several creation sub-windows
    for k, page in enumerate(pages[:-1]):
        rest = read(source.client(), "sales", page.cursor)
        ids = ids_of("sales", rest)
        after = parse_iso(orjson.loads(page.cursor)["after"])  # type: ignore[arg-type]
        assert len(ids) == len(set(ids)) and set(ids) == {g for g, at in created.items() if at > after}
        assert set(ids_of("sales", pages[k + 1 :])) <= set(ids)  # nothing after the committed page is skipped
    assert read(source.client(), "sales", DONE) == []


def test_updated_pages_bring_exactly_what_changed_and_end_on_the_newest_change(source: SkySlopeWorld) -> None:
    since = source.sim.now()
    sales = source.sim.mutate("harbor", "sales", creates=2, updates=3)
    listings = source.sim.mutate("harbor", "listings", updates=1)
    client = source.client()
    pages = list(client.updated_pages("sales", since, timedelta(seconds=5)))
    assert set(ids_of("sales", pages)) == set(sales["created"]) | set(sales["updated"])
    newest = max(parse_iso(r["_updated"]) for p in pages for r in p.records)
    assert [p.cursor for p in pages[:-1]] == [since.isoformat(timespec="milliseconds").replace("+00:00", "Z")] * (
        len(pages) - 1
    )
    assert pages[-1].records == [] and parse_iso(pages[-1].cursor) == newest  # type: ignore[arg-type]
    assert set(ids_of("listings", list(client.updated_pages("listings", since, timedelta(0))))) == set(
        listings["updated"]
    )
    # Users and offices have no filter: the whole list, for the change guard to sort out.
    users = list(client.updated_pages("users", since, timedelta(0)))
    assert set(ids_of("users", users)) == source.expected_ids("harbor", "users")


def test_fetch_ids_returns_what_exists_in_the_lists_shape_and_leaves_out_what_is_gone(source: SkySlopeWorld) -> None:
    client = source.client()
    for entity in LOAD_ORDER:
        listed = {r[ID_FIELDS[entity]]: r for p in read(client, entity) for r in p.records}
        wanted = sorted(listed)[:2]
        fetched = client.fetch_ids(entity, wanted)
        assert [r[ID_FIELDS[entity]] for r in fetched] == wanted, entity
        assert fetched == [listed[g] for g in wanted], entity  # the same record, read either way
    gone = source.sim.mutate("harbor", "sales", deletes=1)["deleted"][0]
    kept = sorted(source.expected_ids("harbor", "sales"))[0]
    assert ids_of("sales", [Page(client.fetch_ids("sales", [gone, kept]), None)]) == [kept]  # the 404 is absent


def test_a_session_that_dies_mid_read_is_renewed_and_the_same_request_sent_again(source: SkySlopeWorld) -> None:
    # Every session answers three requests, then is expired: a whole read of the sales crosses several.
    source.sim.faults.update({"session_max_requests": 3})
    client = source.client()
    logins = client.logins
    pages = read(client, "sales")
    assert sorted(ids_of("sales", pages)) == sorted(source.expected_ids("harbor", "sales"))
    refused = [c for c in client.drain_calls() if c.status == 401]
    renewed = client.logins - logins
    assert len(pages) > 6 and len(refused) >= 2 and renewed == len(refused) + 1  # the first login, then one per 401
    assert all("expired" in (c.error or "") for c in refused)


def test_a_session_near_its_expiration_is_renewed_before_it_is_refused(source: SkySlopeWorld) -> None:
    client = source.client()
    client.total("offices", None, None)
    logins = client.logins
    client._shared.renew_at = time.time() - 1  # the renewal point has passed: the next request logs in first
    client.total("offices", None, None)
    assert client.logins == logins + 1 and not [c for c in client.drain_calls() if c.status == 401]
    issued = time.time()
    hour = (datetime.fromtimestamp(issued, UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert _renew_at(hour, issued) == pytest.approx(parse_iso(hour).timestamp() - 300)  # five minutes ahead
    minute = (datetime.fromtimestamp(issued, UTC) + timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert parse_iso(minute).timestamp() - _renew_at(minute, issued) == pytest.approx(6.0, abs=0.2)  # a tenth
    # Already expired by our clock (the clocks disagree): kept until SkySlope answers 401, no login per request.
    assert _renew_at("2020-01-01T00:00:00Z", issued) is None


def test_a_session_refused_again_after_renewal_is_the_accounts_and_is_raised(source: SkySlopeWorld) -> None:
    source.sim.faults.update({"expired_credentials": True})  # every new session is born expired
    client = source.client()
    with pytest.raises(AuthError) as refused:
        client.total("offices", None, None)
    assert refused.value.status == 401 and client.logins == 2  # the first session, and one renewal
    assert [c.status for c in client.drain_calls() if c.method == "GET"] == [401, 401]  # renewed once, not looped
    source.sim.faults.reset()
    source.sim.faults.update({"revoked_keys": [source.sim.credentials()["accounts"]["harbor"]["access_key"]]})
    revoked_client = source.client()
    with pytest.raises(AuthError) as revoked:
        revoked_client.total("offices", None, None)
    assert "revoked" in revoked.value.message
    # The live session dies with its key; the login it leads to is refused once and not tried again.
    assert [(c.method, c.status) for c in revoked_client.drain_calls()] == [("GET", 401), ("POST", 401)]


def test_control_bytes_in_the_bulk_feed_are_read_and_an_unreadable_file_comes_as_a_stand_in(
    source: SkySlopeWorld,
) -> None:
    clean = {r["saleGuid"]: r for p in read(source.client(), "sales") for r in p.records}
    source.sim.faults.update({"control_bytes_rate": 0.15})
    table, codec = source.sim.accounts["harbor"].tables["sales"], source.sim.accounts["harbor"].codecs["sales"]
    with_bytes = {
        codec.encode(i) for i in range(1, len(clean) + 1) if source.sim.faults.has_control_bytes(table.stream, i)
    }
    dirty = [r for p in read(source.client(), "sales") for r in p.records]
    unreadable = {r["saleGuid"] for r in dirty if "_unreadable" in r}
    assert len(dirty) == len(clean) and {r["saleGuid"] for r in dirty} == set(clean)  # every GUID is there
    assert all(r["_unreadable"].startswith("not UTF-8: byte 0x92") for r in dirty if "_unreadable" in r)
    # A third of the dirty files carry a byte that is not UTF-8; the others (SOH between members, SUB and NUL
    # inside the street) read back to exactly the clean file.
    assert 0 < len(unreadable) < len(with_bytes) and unreadable <= with_bytes
    assert [r for r in dirty if r["saleGuid"] not in unreadable and r != clean[r["saleGuid"]]] == []
