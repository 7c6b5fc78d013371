"""Contract tests of the SkySlope Transaction Management API simulator, over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import requests

from sync_pipelines.sandbox.app import Sandbox, SandboxServer

CLIENT_ID = "skyslope_sandbox_client_id"
CLIENT_SECRET = "skyslope_sandbox_client_secret"
ACCESS_KEY = "ss_sandbox_access_harbor"
ACCESS_SECRET = "ss_sandbox_secret_harbor_5f1c0e"
OTHER_KEY = "ss_sandbox_access_canyon"
OTHER_SECRET = "ss_sandbox_secret_canyon_9a27d4"
NET_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?$")  # no zone, .NET milliseconds


def independent_hmac(
    access_secret: str, timestamp: str, client_id: str = CLIENT_ID, secret: str = CLIENT_SECRET
) -> str:
    # Written from SkySlope's auth sample, not from the simulator: base64 HMAC-SHA256 of "id:secret:timestamp".
    message = f"{client_id}:{secret}:{timestamp}".encode()
    return base64.b64encode(hmac.new(access_secret.encode(), message, hashlib.sha256).digest()).decode()


def now_stamp(shift: timedelta = timedelta()) -> str:
    return (datetime.now(UTC) + shift).strftime("%Y-%m-%dT%H:%M:%SZ")


def login_response(
    sandbox: Sandbox,
    key: str = ACCESS_KEY,
    secret: str = ACCESS_SECRET,
    stamp: str | None = None,
    scheme: str = "SS",
    client_secret: str = CLIENT_SECRET,
) -> requests.Response:
    stamp = stamp or now_stamp()
    return requests.post(
        f"{sandbox['skyslope'].base_url}/auth/login",
        headers={"Authorization": f"{scheme} {key}:{independent_hmac(secret, stamp)}", "Timestamp": stamp},
        json={"ClientId": CLIENT_ID, "ClientSecret": client_secret},
    )


def session(sandbox: Sandbox, key: str = ACCESS_KEY, secret: str = ACCESS_SECRET) -> requests.Session:
    response = login_response(sandbox, key, secret)
    assert response.status_code == 200, response.text
    http = requests.Session()
    http.headers["Session"] = response.json()["Session"]
    return http


def api(sandbox: Sandbox) -> str:
    return f"{sandbox['skyslope'].base_url}/api"


def unthrottled(sandbox: Sandbox) -> None:
    # Walks below make more requests than the assumed 120 per minute; the limit has its own test.
    sandbox["skyslope"].rate_limits["global"] = (100_000, 60.0)


def walk(http: requests.Session, url: str, kind: str, params: dict | None = None) -> list[dict]:
    """Follow links[rel=next] from pageNumber 1, as the Ruby client does."""
    out: list[dict] = []
    response = http.get(url, params={**(params or {}), "pageNumber": 1})
    while True:
        response.raise_for_status()
        body = response.json()
        out.extend(body["value"][kind])
        following = [link["href"] for link in body["links"] if link["rel"] == "next"]
        if not following:
            return out
        response = http.get(following[0])


def export(http: requests.Session, sandbox: Sandbox, params: dict | None = None) -> list[dict]:
    response = http.get(f"{api(sandbox)}/files", params=params)
    response.raise_for_status()
    return response.json()["value"]


# -- auth ----------------------------------------------------------------------------------------------


def test_login_with_an_independently_computed_hmac_returns_a_session(sandbox: Sandbox) -> None:
    response = login_response(sandbox)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"Session", "Expiration"} and body["Session"]
    expires = datetime.fromisoformat(body["Expiration"].replace("Z", "+00:00"))
    assert expires > datetime.now(UTC)
    assert login_response(sandbox, scheme="ss").status_code == 200  # SkySlope's sample writes `ss`
    users = requests.get(f"{api(sandbox)}/users", headers={"Session": body["Session"]})
    assert users.status_code == 200


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"secret": "not-the-secret"}, 401),  # wrong signature
        ({"stamp_offset": timedelta(minutes=-20)}, 401),  # stale timestamp (±15 min)
        ({"stamp_offset": timedelta(minutes=20)}, 401),  # from the future
        ({"stamp": "yesterday"}, 401),
        ({"client_secret": "wrong"}, 401),
        ({"key": "unknown-key"}, 401),
        ({"scheme": "Bearer"}, 401),
    ],
)
def test_bad_logins_get_401_with_a_message(sandbox: Sandbox, change: dict, status: int) -> None:
    change = dict(change)
    if "stamp_offset" in change:  # computed now, not at collection: a long suite must not age it
        change["stamp"] = now_stamp(change.pop("stamp_offset"))
    response = login_response(sandbox, **change)
    assert response.status_code == status
    assert "Message" in response.json()


def test_a_timestamp_within_the_skew_is_accepted(sandbox: Sandbox) -> None:
    assert login_response(sandbox, stamp=now_stamp(timedelta(minutes=-10))).status_code == 200


def test_calls_without_a_valid_session_get_401(sandbox: Sandbox) -> None:
    url = f"{api(sandbox)}/files/sales"
    assert requests.get(url).status_code == 401
    bogus = requests.get(url, headers={"Session": "not-a-session"})
    assert bogus.status_code == 401 and "Message" in bogus.json()


def test_expired_credentials_fault_issues_sessions_that_are_already_expired(sandbox: Sandbox) -> None:
    sandbox["skyslope"].faults.update({"expired_credentials": True})
    response = login_response(sandbox)
    assert response.status_code == 200
    expires = datetime.fromisoformat(response.json()["Expiration"].replace("Z", "+00:00"))
    assert expires <= datetime.now(UTC)
    used = requests.get(f"{api(sandbox)}/users", headers={"Session": response.json()["Session"]})
    assert used.status_code == 401 and "expired" in used.json()["Message"]
    sandbox["skyslope"].faults.reset()
    assert session(sandbox).get(f"{api(sandbox)}/users").status_code == 200  # logging in again works


def test_revoked_key_and_suspended_brokerage(sandbox: Sandbox) -> None:
    skyslope = sandbox["skyslope"]
    http = session(sandbox)
    skyslope.faults.update({"revoked_keys": [ACCESS_KEY]})
    assert http.get(f"{api(sandbox)}/offices").status_code == 401  # the live session dies with its key
    assert login_response(sandbox).status_code == 401
    assert session(sandbox, OTHER_KEY, OTHER_SECRET).get(f"{api(sandbox)}/offices").status_code == 200
    skyslope.faults.reset()
    skyslope.faults.update({"suspended_accounts": ["harbor"]})
    assert http.get(f"{api(sandbox)}/offices").status_code == 403


# -- paging and filters ----------------------------------------------------------------------------------


def test_sales_and_listings_page_by_links_until_there_is_no_next(sandbox: Sandbox) -> None:
    unthrottled(sandbox)
    http = session(sandbox)
    counts = sandbox["skyslope"].counts("harbor")
    sales = walk(http, f"{api(sandbox)}/files/sales", "sales")
    listings = walk(http, f"{api(sandbox)}/files/listings", "listings")
    assert len(sales) == len({s["saleGuid"] for s in sales}) == counts["sales"] == 300
    assert len(listings) == len({x["listingGuid"] for x in listings}) == counts["listings"] == 150
    first = http.get(f"{api(sandbox)}/files/sales").json()
    assert {link["rel"] for link in first["links"]} == {"self", "next"}
    assert len(first["value"]["sales"]) == 100
    detail = http.get(sales[42]["link"]["href"]).json()["value"]["sale"]
    assert detail["saleGuid"] == sales[42]["saleGuid"] and detail["objectType"] == "sale"
    # The other brokerage's files are its own.
    other = walk(session(sandbox, OTHER_KEY, OTHER_SECRET), f"{api(sandbox)}/files/sales", "sales")
    assert len(other) == sandbox["skyslope"].counts("canyon")["sales"] and not {s["saleGuid"] for s in other} & {
        s["saleGuid"] for s in sales
    }


def test_earliest_and_latest_date_are_inclusive_days(sandbox: Sandbox) -> None:
    unthrottled(sandbox)
    http = session(sandbox)
    january = walk(
        http, f"{api(sandbox)}/files/sales", "sales", {"earliestDate": "2024-01-01", "latestDate": "2024-01-31"}
    )
    assert len(january) == sandbox["skyslope"].counts("harbor", "2024-01")["sales"] > 0
    assert all(s["createdOn"].startswith("2024-01") for s in january)


def test_bulk_export_window_is_exact_mixes_sales_and_listings_and_matches_counts(sandbox: Sandbox) -> None:
    http = session(sandbox)
    files = export(http, sandbox, {"createdAfter": "2023-12-31T23:59:59.999", "createdBefore": "2024-02-01"})
    counts = sandbox["skyslope"].counts("harbor", "2024-01")
    assert len(files) == counts["sales"] + counts["listings"]
    assert {f["objectType"] for f in files} == {"sale", "listing"}
    assert all(f["createdOn"].startswith("2024-01") for f in files)
    created = [f["createdOn"] for f in files]
    assert created == sorted(created)  # merged by creation time
    everything = export(http, sandbox, {"createdAfter": "2020-01-01"})
    assert len(everything) == sum(sandbox["skyslope"].counts("harbor")[k] for k in ("sales", "listings"))
    in_january = [f for f in everything if f["createdOn"].startswith("2024-01")]
    assert [f.get("saleGuid") or f["listingGuid"] for f in in_january] == [
        f.get("saleGuid") or f["listingGuid"] for f in files
    ]


def test_bulk_export_defaults_to_the_last_seven_days(sandbox: Sandbox) -> None:
    skyslope = sandbox["skyslope"]
    # This source's clock work only: the sandbox-wide advance would also run every other simulator.
    sandbox.clock.advance(3 * 86400)
    skyslope.advance(3 * 86400)
    http = session(sandbox)
    default = export(http, sandbox)
    now = skyslope.now()
    explicit = export(http, sandbox, {"createdAfter": (now - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%S")})
    assert default == explicit and default
    for f in default:
        created = datetime.fromisoformat(f["createdOn"]).replace(tzinfo=UTC)
        assert now - timedelta(days=7) < created <= now


def test_modified_after_returns_exactly_what_changed(sandbox: Sandbox) -> None:
    skyslope = sandbox["skyslope"]
    watermark = skyslope.now().strftime("%Y-%m-%dT%H:%M:%S")
    sales = skyslope.mutate("harbor", "sales", creates=2, updates=3, deletes=1)
    listings = skyslope.mutate("harbor", "listings", updates=2)
    http = session(sandbox)
    changed = export(http, sandbox, {"modifiedAfter": watermark})
    assert {f.get("saleGuid") for f in changed if f["objectType"] == "sale"} == set(sales["created"]) | set(
        sales["updated"]
    )
    assert {f["listingGuid"] for f in changed if f["objectType"] == "listing"} == set(listings["updated"])
    assert all(f["modifiedOn"] > watermark for f in changed)
    remaining = {s["saleGuid"] for s in walk(http, f"{api(sandbox)}/files/sales", "sales")}
    for deleted in sales["deleted"]:
        assert http.get(f"{api(sandbox)}/files/sales/{deleted}").status_code == 404
        assert deleted not in remaining
    only_sales = export(http, sandbox, {"modifiedAfter": watermark, "type": "sale"})
    assert {f["objectType"] for f in only_sales} == {"sale"}


def test_bulk_export_post_filters(sandbox: Sandbox) -> None:
    http = session(sandbox)
    everything = export(http, sandbox, {"createdAfter": "2020-01-01"})
    closed = export(http, sandbox, {"createdAfter": "2020-01-01", "status": "Closed"})
    assert {f["status"] for f in closed} == {"Closed"}
    assert len(closed) == len([f for f in everything if f["status"] == "Closed"])
    closing = export(http, sandbox, {"closedAfter": "2024-01-01", "closedBefore": "2024-07-01"})
    assert closing and all("2024-01" <= f["actualClosingDate"][:7] <= "2024-06" for f in closing)


def test_dates_have_no_time_zone_and_net_milliseconds(sandbox: Sandbox) -> None:
    files = export(session(sandbox), sandbox, {"createdAfter": "2023-01-01", "createdBefore": "2023-03-01"})
    assert files
    for f in files:
        assert NET_TIME.match(f["createdOn"]) and NET_TIME.match(f["modifiedOn"])
    assert any("." in f["createdOn"] for f in files)
    acceptance = [f["contractAcceptanceDate"] for f in files if f["objectType"] == "sale"]
    assert all(NET_TIME.match(a) for a in acceptance)


def test_files_point_at_users_and_offices_of_the_brokerage(sandbox: Sandbox) -> None:
    http = session(sandbox)
    users = http.get(f"{api(sandbox)}/users", params={"includeDeactivated": "true"}).json()["value"]["users"]
    active = http.get(f"{api(sandbox)}/users").json()["value"]["users"]
    assert len(users) == sandbox["skyslope"].counts("harbor")["users"] and len(active) < len(users)
    offices = http.get(f"{api(sandbox)}/offices").json()["value"]["offices"]
    user_ids = {u["userGuid"] for u in users}
    office_ids = {o["officeGuid"] for o in offices}
    listings = {x["listingGuid"] for x in export(http, sandbox, {"createdAfter": "2020-01-01", "type": "listing"})}
    for f in export(http, sandbox, {"createdAfter": "2020-01-01"}):
        assert f["agentGuid"] in user_ids and f["agent"]["userGuid"] == f["agentGuid"]
        assert f["officeGuid"] is None or f["officeGuid"] in office_ids
        if f["objectType"] == "sale" and f["listingGuid"]:
            assert f["listingGuid"] in listings
    one = http.get(f"{api(sandbox)}/offices/{offices[0]['officeGuid']}").json()["value"]["office"]
    assert one["guid"] == offices[0]["officeGuid"] and one["name"] == offices[0]["officeName"]
    user = http.get(f"{api(sandbox)}/users/{users[3]['userGuid']}").json()["value"]["user"]
    assert user == users[3]
    assert http.get(f"{api(sandbox)}/files/sales/{users[3]['userGuid']}").status_code == 404


# -- rate limits -----------------------------------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after(sandbox: Sandbox) -> None:
    skyslope = sandbox["skyslope"]
    http = session(sandbox)
    skyslope.rate_limits["global"] = (3, 60.0)
    skyslope.limiter.reset()
    responses = [http.get(f"{api(sandbox)}/offices") for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert responses[0].headers["X-RateLimit-Limit"] == "3"
    assert int(responses[3].headers["Retry-After"]) >= 1 and "Message" in responses[3].json()


# -- determinism -----------------------------------------------------------------------------------------


def test_same_seed_gives_the_same_data_and_another_seed_differs() -> None:
    def snapshot(seed: int) -> list[dict]:
        with SandboxServer(Sandbox(seed=seed, scale=60, sources=["skyslope"])) as server:
            return export(session(server.sandbox), server.sandbox, {"createdAfter": "2020-01-01"})

    assert snapshot(7) == snapshot(7)
    assert snapshot(7) != snapshot(8)


# -- faults ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "check"),
    [
        ({"rate_limit_storm": 2}, lambda r: r.status_code == 429 and "Retry-After" in r.headers),
        ({"server_errors": 1}, lambda r: r.status_code in (500, 502, 503) and "Message" in r.json()),
    ],
)
def test_counted_faults_fire_then_stop(
    sandbox: Sandbox, fault: dict, check: Callable[[requests.Response], bool]
) -> None:
    http = session(sandbox)
    sandbox["skyslope"].faults.update(fault)
    assert check(http.get(f"{api(sandbox)}/files/sales"))
    sandbox["skyslope"].faults.reset()
    assert http.get(f"{api(sandbox)}/files/sales").status_code == 200


def test_slow_response_exceeds_a_client_timeout(sandbox: Sandbox) -> None:
    http = session(sandbox)
    sandbox["skyslope"].faults.update({"slow_requests": 1, "slow_seconds": 1.0})
    with pytest.raises(requests.Timeout):
        http.get(f"{api(sandbox)}/offices", timeout=0.2)


@pytest.mark.parametrize("path", ["/files/sales", "/files?createdAfter=2020-01-01"])
def test_truncated_json(sandbox: Sandbox, path: str) -> None:
    http = session(sandbox)
    sandbox["skyslope"].faults.update({"truncated_pages": 1})
    response = http.get(f"{api(sandbox)}{path}")
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)
    assert json.loads(http.get(f"{api(sandbox)}{path}").content)["value"]


def test_malformed_records_are_the_same_records_every_time(sandbox: Sandbox) -> None:
    http = session(sandbox)
    sandbox["skyslope"].faults.update({"malformed_rate": 0.1})
    first = export(http, sandbox, {"createdAfter": "2020-01-01"})
    second = export(http, sandbox, {"createdAfter": "2020-01-01"})
    broken = [
        f
        for f in first
        if ("saleGuid" not in f and "listingGuid" not in f) or f["createdOn"] == "not-a-date" or f["modifiedOn"] is None
    ]
    assert 15 <= len(broken) <= 90
    assert first == second


def test_records_inserted_between_pages_are_not_lost_by_a_link_walk(sandbox: Sandbox) -> None:
    unthrottled(sandbox)
    skyslope = sandbox["skyslope"]
    skyslope.faults.update({"insert_between_pages": 2})
    walked = walk(session(sandbox), f"{api(sandbox)}/files/sales", "sales")
    # New files sort last, so a walk that keeps following `next` sees them too.
    assert len(walked) == len({s["saleGuid"] for s in walked}) == skyslope.counts("harbor")["sales"] - 2


def test_child_before_parent_then_parent_arrives_at_the_next_step(sandbox: Sandbox) -> None:
    skyslope = sandbox["skyslope"]
    http = session(sandbox)
    skyslope.faults.update({"child_before_parent": True})
    sale_guid = skyslope.mutate("harbor", "sales", creates=1)["created"][0]
    sale = http.get(f"{api(sandbox)}/files/sales/{sale_guid}").json()["value"]["sale"]
    assert http.get(f"{api(sandbox)}/files/listings/{sale['listingGuid']}").status_code == 404
    skyslope.faults.reset()
    skyslope.mutate("harbor", "users", updates=1)
    listing = http.get(f"{api(sandbox)}/files/listings/{sale['listingGuid']}")
    assert listing.status_code == 200 and listing.json()["value"]["listing"]["status"] == "Active"


def test_session_max_requests_fault_expires_each_session_after_that_many_requests(sandbox: Sandbox) -> None:
    sandbox["skyslope"].faults.update({"session_max_requests": 2})
    http = session(sandbox)
    statuses = [http.get(f"{api(sandbox)}/offices").status_code for _ in range(3)]
    assert statuses == [200, 200, 401]
    refused = http.get(f"{api(sandbox)}/offices")
    assert refused.status_code == 401 and "expired" in refused.json()["Message"]
    assert session(sandbox).get(f"{api(sandbox)}/offices").status_code == 200  # a new login gets a new session


def test_control_bytes_fault_puts_raw_bytes_in_the_bulk_feed_only(sandbox: Sandbox) -> None:
    skyslope = sandbox["skyslope"]
    http = session(sandbox)
    skyslope.faults.update({"control_bytes_rate": 0.2})
    body = http.get(f"{api(sandbox)}/files", params={"createdAfter": "2020-01-01", "type": "sale"}).content
    assert all(byte in body for byte in (b"\x00", b"\x01", b"\x1a", b"\x92"))
    with pytest.raises(ValueError):  # neither strict JSON nor UTF-8
        json.loads(body)
    again = http.get(f"{api(sandbox)}/files", params={"createdAfter": "2020-01-01", "type": "sale"}).content
    assert again == body  # the same files, the same bytes, every time
    guid = walk(http, f"{api(sandbox)}/files/sales", "sales")[0]["saleGuid"]
    assert http.get(f"{api(sandbox)}/files/sales/{guid}").json()["value"]["sale"]["saleGuid"] == guid
