"""Contract tests of the Follow Up Boss simulator, over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime, timedelta

import pytest
import requests

from sync_pipelines.sandbox.app import Sandbox, SandboxServer
from sync_pipelines.sandbox.fub import MAX_OFFSET
from sync_pipelines_tests.test_sandbox.webhook_sink import WebhookSink

KEY = "fub_sandbox_key_acme"
SYSTEM_HEADERS = {"X-System": "SyncPipelines", "X-System-Key": "fub_sandbox_system_key"}


def client(key: str = KEY) -> requests.Session:
    session = requests.Session()
    session.auth = (key, "")
    session.headers.update(SYSTEM_HEADERS)
    return session


def fetch_all(sandbox: Sandbox, path: str, params: dict | None = None, key: str = KEY) -> list[dict]:
    session = client(key)
    url: str | None = f"{sandbox['fub'].base_url}/v1/{path}"
    collection = path.split("?")[0]
    out: list[dict] = []
    first = True
    while url:
        response = session.get(url, params=params if first else None)
        first = False
        response.raise_for_status()
        body = response.json()
        out.extend(body[collection])
        url = body["_metadata"]["nextLink"]
    return out


def test_missing_or_wrong_credentials_get_401_with_an_error_message(sandbox: Sandbox) -> None:
    url = f"{sandbox['fub'].base_url}/v1/people"
    missing = requests.get(url)
    assert missing.status_code == 401 and "errorMessage" in missing.json()
    wrong = requests.get(url, auth=("nope", ""), headers=SYSTEM_HEADERS)
    assert wrong.status_code == 401 and "invalid API key" in wrong.json()["errorMessage"]


def test_revoked_key_gets_401_and_a_suspended_account_403_while_the_other_account_works(
    sandbox: Sandbox,
) -> None:
    sandbox["fub"].faults.update({"revoked_keys": [KEY]})
    assert client().get(f"{sandbox['fub'].base_url}/v1/people").status_code == 401
    assert client("fub_sandbox_key_summit").get(f"{sandbox['fub'].base_url}/v1/people").status_code == 200
    sandbox["fub"].faults.reset()
    sandbox["fub"].faults.update({"suspended_accounts": ["acme"]})
    assert client().get(f"{sandbox['fub'].base_url}/v1/people").status_code == 403


def test_next_cursor_paging_returns_every_record_exactly_once(sandbox: Sandbox) -> None:
    people = fetch_all(sandbox, "people", {"limit": 37, "sort": "id"})
    ids = [p["id"] for p in people]
    assert len(ids) == len(set(ids)) == sandbox["fub"].counts("acme")["people"] == 300
    # The default order is id descending, as FUB's is.
    default = fetch_all(sandbox, "people", {"limit": 100})
    assert [p["id"] for p in default] == sorted(ids, reverse=True)


def test_offset_paging_with_metadata_and_limit_capped_at_100(sandbox: Sandbox) -> None:
    session = client()
    body = session.get(f"{sandbox['fub'].base_url}/v1/calls", params={"limit": 500, "offset": 0}).json()
    metadata = body["_metadata"]
    assert set(metadata) == {"collection", "offset", "limit", "total", "next", "nextLink"}
    assert metadata["limit"] == 100 and metadata["total"] == 150 and len(body["calls"]) == 100
    seen: list[int] = []
    for offset in range(0, metadata["total"], 40):
        page = session.get(f"{sandbox['fub'].base_url}/v1/calls", params={"limit": 40, "offset": offset})
        seen += [c["id"] for c in page.json()["calls"]]
    assert sorted(seen) == list(range(1, 151))


def test_created_window_is_exact_and_matches_the_period_counts(sandbox: Sandbox) -> None:
    params = {"createdAfter": "2023-12-31T23:59:59Z", "createdBefore": "2024-02-01T00:00:00Z", "limit": 100}
    people = fetch_all(sandbox, "people", params)
    assert len(people) == sandbox["fub"].counts("acme", "2024-01")["people"] > 0
    for person in people:
        assert person["created"].startswith("2024-01")
    everything = fetch_all(sandbox, "people", {"limit": 100})
    in_january = [p for p in everything if p["created"].startswith("2024-01")]
    assert sorted(p["id"] for p in in_january) == sorted(p["id"] for p in people)


def test_clock_mutations_show_up_in_updated_after_and_deletes_disappear(sandbox: Sandbox) -> None:
    fub = sandbox["fub"]
    before = fub.counts("acme")["people"]
    watermark = fub.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    result = fub.mutate("acme", "people", creates=3, updates=4, deletes=2)
    changed = fetch_all(sandbox, "people", {"updatedAfter": watermark, "sort": "updated", "limit": 100})
    assert {p["id"] for p in changed} == set(result["created"]) | set(result["updated"])
    assert fub.counts("acme")["people"] == before + 3 - 2
    for deleted in result["deleted"]:
        assert client().get(f"{fub.base_url}/v1/people/{deleted}").status_code == 404


def test_rate_limit_answers_429_with_retry_after_and_rate_headers(sandbox: Sandbox) -> None:
    fub = sandbox["fub"]
    fub.rate_limits["global"] = (3, 10.0)
    session = client()
    statuses = [session.get(f"{fub.base_url}/v1/users") for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    assert statuses[0].headers["X-RateLimit-Limit"] == "3"
    assert statuses[0].headers["X-RateLimit-Window"] == "10"
    assert statuses[0].headers["X-RateLimit-Context"] == "global"
    assert int(statuses[3].headers["Retry-After"]) >= 1
    assert "errorMessage" in statuses[3].json()


def test_events_have_their_own_tighter_rate_context(sandbox: Sandbox) -> None:
    response = client().get(f"{sandbox['fub'].base_url}/v1/events")
    assert response.headers["X-RateLimit-Context"] == "events"
    assert response.headers["X-RateLimit-Limit"] == "20"


def test_same_seed_gives_the_same_data_and_another_seed_differs() -> None:
    def snapshot(seed: int) -> list[dict]:
        with SandboxServer(Sandbox(seed=seed, scale=50, sources=["fub"])) as server:
            return fetch_all(server.sandbox, "people", {"limit": 100, "sort": "id"})

    assert snapshot(7) == snapshot(7)
    assert snapshot(7) != snapshot(8)


def test_children_point_at_people_created_no_later_than_them(sandbox: Sandbox) -> None:
    people = {p["id"]: p for p in fetch_all(sandbox, "people", {"limit": 100})}
    for call in fetch_all(sandbox, "calls", {"limit": 100}):
        assert call["personId"] in people
        assert people[call["personId"]]["created"] <= call["created"]


@pytest.mark.parametrize(
    ("fault", "check"),
    [
        ({"rate_limit_storm": 2}, lambda r: r.status_code == 429 and "Retry-After" in r.headers),
        ({"server_errors": 1}, lambda r: r.status_code in (500, 502, 503)),
    ],
)
def test_counted_faults_fire_then_stop(sandbox: Sandbox, fault: dict, check) -> None:  # type: ignore[no-untyped-def]
    sandbox["fub"].faults.update(fault)
    assert check(client().get(f"{sandbox['fub'].base_url}/v1/people"))
    sandbox["fub"].faults.reset()
    assert client().get(f"{sandbox['fub'].base_url}/v1/people").status_code == 200


def test_slow_response_exceeds_a_client_timeout(sandbox: Sandbox) -> None:
    sandbox["fub"].faults.update({"slow_requests": 1, "slow_seconds": 1.0})
    with pytest.raises(requests.Timeout):
        client().get(f"{sandbox['fub'].base_url}/v1/people", timeout=0.2)


def test_truncated_json_page(sandbox: Sandbox) -> None:
    sandbox["fub"].faults.update({"truncated_pages": 1})
    response = client().get(f"{sandbox['fub'].base_url}/v1/people")
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)


def test_malformed_records_are_the_same_records_every_time(sandbox: Sandbox) -> None:
    sandbox["fub"].faults.update({"malformed_rate": 0.1})
    first = fetch_all(sandbox, "people", {"limit": 100, "sort": "id"})
    second = fetch_all(sandbox, "people", {"limit": 100, "sort": "id"})
    broken = [p for p in first if "id" not in p or p["created"] == "not-a-date" or not isinstance(p["updated"], str)]
    assert 10 <= len(broken) <= 60
    assert first == second


def test_records_inserted_between_pages_exist_after_the_walk(sandbox: Sandbox) -> None:
    fub = sandbox["fub"]
    fub.faults.update({"insert_between_pages": 1})
    walked = fetch_all(sandbox, "people", {"limit": 100, "sort": "id"})
    assert fub.counts("acme")["people"] > len({p["id"] for p in walked}) - 1
    assert fub.counts("acme")["people"] >= 303


def test_timestamp_ties_give_runs_of_equal_updated_times(sandbox: Sandbox) -> None:
    sandbox["fub"].faults.update({"timestamp_ties": 150})
    url = f"{sandbox['fub'].base_url}/v1/people"
    first_page = client().get(url, params={"limit": 100, "sort": "updated"}).json()["people"]
    second_page = client().get(url, params={"limit": 100, "offset": 100, "sort": "updated"}).json()["people"]
    assert first_page[-1]["updated"] == second_page[0]["updated"]
    assert first_page[0]["updated"] == first_page[-1]["updated"]


def test_child_before_parent_then_parent_arrives_at_the_next_step(sandbox: Sandbox) -> None:
    fub = sandbox["fub"]
    fub.faults.update({"child_before_parent": True})
    created = fub.mutate("acme", "calls", creates=1)["created"][0]
    call = client().get(f"{fub.base_url}/v1/calls/{created}").json()
    assert client().get(f"{fub.base_url}/v1/people/{call['personId']}").status_code == 404
    fub.faults.reset()
    fub.mutate("acme", "deals", updates=1)
    assert client().get(f"{fub.base_url}/v1/people/{call['personId']}").status_code == 200


def _independent_fub_signature(body: bytes, key: str) -> str:
    # Written from FUB's webhook guide, not from our code: hex HMAC-SHA256 over base64 of the raw body.
    return hmac.new(key.encode("utf-8"), base64.b64encode(body), hashlib.sha256).hexdigest()


def test_webhooks_are_registered_signed_and_redelivered_until_acknowledged(sandbox: Sandbox) -> None:
    fub = sandbox["fub"]
    with WebhookSink(statuses=[500, 503]) as sink:
        registered = client().post(f"{fub.base_url}/v1/webhooks", json={"event": "peopleCreated", "url": sink.url})
        assert registered.status_code == 201 and registered.json()["status"] == "Active"
        ids = fub.mutate("acme", "people", creates=2)["created"]
        assert sink.wait_for(3)  # two failures, then the redelivery that succeeds
        body, headers = sink.received[-1]
        assert headers["fub-signature"] == _independent_fub_signature(body, "fub_sandbox_system_key")
        payload = json.loads(body)
        assert payload["event"] == "peopleCreated" and payload["resourceIds"] == ids
        assert payload["uri"].endswith(f"/v1/people?id={','.join(map(str, ids))}")
        assert all(b == body for b, _ in sink.received)  # the same event, redelivered
        datetime.fromisoformat(payload["eventCreated"])


def test_at_most_two_webhooks_per_event_and_only_with_a_system_key(sandbox: Sandbox) -> None:
    url = f"{sandbox['fub'].base_url}/v1/webhooks"
    for _ in range(2):
        assert client().post(url, json={"event": "callsCreated", "url": "http://127.0.0.1:9/x"}).status_code == 201
    assert client().post(url, json={"event": "callsCreated", "url": "http://127.0.0.1:9/x"}).status_code == 400
    bare = requests.post(url, auth=(KEY, ""), json={"event": "dealsCreated", "url": "http://127.0.0.1:9/x"})
    assert bare.status_code == 403


def test_duplicate_and_out_of_order_webhooks(sandbox: Sandbox) -> None:
    fub = sandbox["fub"]
    fub.faults.update({"webhook_duplicates": 1})
    with WebhookSink() as sink:
        client().post(f"{fub.base_url}/v1/webhooks", json={"event": "peopleUpdated", "url": sink.url})
        fub.mutate("acme", "people", updates=1)
        assert sink.wait_for(2)
        assert sink.received[0][0] == sink.received[1][0]
    fub.faults.reset()
    fub.faults.update({"webhook_out_of_order": True})
    with WebhookSink() as sink:
        client().post(f"{fub.base_url}/v1/webhooks", json={"event": "dealsUpdated", "url": sink.url})
        first = fub.mutate("acme", "deals", updates=1)["updated"]
        second = fub.mutate("acme", "deals", updates=1)["updated"]
        assert sink.wait_for(2)
        assert [json.loads(body)["resourceIds"] for body, _ in sink.received] == [second, first]


def test_admin_api_switches_faults_and_moves_the_clock(sandbox: Sandbox) -> None:
    base = sandbox.base_url
    assert requests.post(f"{base}/_sandbox/fub/faults", json={"server_errors": 1}).json()["server_errors"] == 1
    assert requests.post(f"{base}/_sandbox/fub/faults", json={"nonsense": 1}).status_code == 400
    assert client().get(f"{sandbox['fub'].base_url}/v1/people").status_code in (500, 502, 503)
    before = sandbox["fub"].counts("acme")["people"]
    now = requests.post(f"{base}/_sandbox/clock/advance", json={"seconds": 7200}).json()["now"]
    assert datetime.fromisoformat(now) >= sandbox.clock.now() - timedelta(seconds=60)
    assert sandbox["fub"].counts("acme")["people"] != before or sandbox["fub"].counts("acme")["calls"] > 150
    info = requests.get(f"{base}/_sandbox/info").json()
    assert info["sources"]["fub"]["credentials"]["accounts"]["acme"] == KEY


def test_list_pages_and_single_fetches_serve_identical_records(sandbox: Sandbox) -> None:
    # List pages are spliced from cached JSON; single fetches are built as dicts: both must agree.
    for collection in ("people", "deals", "events", "calls", "textMessages", "appointments", "users"):
        listed = client().get(f"{sandbox['fub'].base_url}/v1/{collection}", params={"limit": 5}).json()[collection]
        for record in listed:
            single = client().get(f"{sandbox['fub'].base_url}/v1/{collection}/{record['id']}").json()
            assert single == record


def test_deep_offsets_are_refused_in_every_order_while_the_next_cursor_pages_past_them() -> None:
    # FUB enforces `next` past an unpublished depth; the sandbox's is MAX_OFFSET (docs/integrations/fub.md).
    with SandboxServer(Sandbox(seed=5, scale=2500, sources=["fub"])) as server:
        url = f"{server.sandbox['fub'].base_url}/v1/people"
        session = client()
        for sort in ("id", "-id", "created", "-created", "updated", "-updated"):
            deepest = session.get(url, params={"limit": 100, "offset": MAX_OFFSET - 1, "sort": sort})
            assert deepest.status_code == 200 and len(deepest.json()["people"]) == 100
            refused = session.get(url, params={"limit": 100, "offset": MAX_OFFSET, "sort": sort})
            assert refused.status_code == 400
            assert refused.json() == {
                "errorMessage": f"Offset {MAX_OFFSET} is too deep: offsets of {MAX_OFFSET} or more are not "
                "allowed, use the next parameter (_metadata.nextLink) to page further"
            }
        walked = fetch_all(server.sandbox, "people", {"limit": 100, "sort": "id"})
        assert [p["id"] for p in walked] == list(range(1, 2501))
        # A run of equal `updated` seconds deeper than MAX_OFFSET is walked by keyset on id within that second,
        # the filters riding in the `next` token (what FubClient.updated_pages does with a long run of ties).
        server.sandbox["fub"].faults.update({"timestamp_ties": 2500})
        one_second = {"updatedAfter": "2021-10-31T23:59:59Z", "updatedBefore": "2021-11-01T00:00:01Z"}
        tied = fetch_all(server.sandbox, "people", {"limit": 100, "sort": "id", **one_second})
        assert [p["id"] for p in tied] == list(range(1, 2501))
        assert {p["updated"] for p in tied} == {"2021-11-01T00:00:00Z"}
