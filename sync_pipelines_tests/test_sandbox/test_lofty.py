"""Contract tests of the Lofty simulator over real HTTP: auth, scopes, offset and scroll paging, webhooks."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable

import pytest
import requests

from sync_pipelines.sandbox.app import Sandbox, SandboxServer
from sync_pipelines.sandbox.lofty import Lofty
from sync_pipelines_tests.test_sandbox.webhook_sink import WebhookSink

KEY = "lofty_sandbox_key_acme"
SUMMIT_KEY = "lofty_sandbox_key_summit"
LEADS_ONLY_KEY = "lofty_sandbox_key_acme_leads_only"
CLIENT = ("lofty_sandbox_client", "lofty_sandbox_vendor_secret")


def lofty(sandbox: Sandbox) -> Lofty:
    simulator = sandbox["lofty"]
    assert isinstance(simulator, Lofty)
    return simulator


def client(key: str = KEY) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"token {key}"
    return session


def url(sandbox: Sandbox, path: str) -> str:
    return f"{lofty(sandbox).base_url}/v1.0/{path}"


def scroll_all(sandbox: Sandbox, params: dict | None = None, key: str = KEY) -> list[dict]:
    """Every lead by following scrollId until the API stops handing one out."""
    session = client(key)
    out: list[dict] = []
    query = {"limit": 100, **(params or {})}
    while True:
        response = session.get(url(sandbox, "leads"), params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        out.extend(body["leads"])
        scroll = body["get_metadata"]["scrollId"]
        if not scroll:
            return out
        query = {"limit": query["limit"], "scrollId": scroll}


def offset_all(sandbox: Sandbox, params: dict, limit: int = 100) -> list[dict]:
    session = client()
    out: list[dict] = []
    offset = 0
    while True:
        body = session.get(url(sandbox, "leads"), params={**params, "limit": limit, "offset": offset}).json()
        out.extend(body["leads"])
        offset += limit
        if offset >= body["get_metadata"]["total"]:
            return out


# -- auth --------------------------------------------------------------------------------------


def test_missing_or_wrong_credentials_get_401_bad_credentials(sandbox: Sandbox) -> None:
    missing = requests.get(url(sandbox, "leads"))
    assert missing.status_code == 401 and missing.json()["code"] == "BAD_CREDENTIALS"
    wrong = requests.get(url(sandbox, "leads"), headers={"Authorization": "token nope"})
    assert wrong.status_code == 401 and set(wrong.json()) == {"code", "message"}
    wrong_scheme = requests.get(url(sandbox, "leads"), auth=(KEY, ""))
    assert wrong_scheme.status_code == 401
    assert client().get(url(sandbox, "leads")).status_code == 200
    assert requests.get(url(sandbox, "leads"), headers={"Authorization": f"TOKEN {KEY}"}).status_code == 200


def test_client_credentials_bearer_token_works_and_expires(sandbox: Sandbox) -> None:
    base = lofty(sandbox).base_url
    grant = {"grant_type": "client_credentials", "customer_key": KEY}
    issued = requests.post(f"{base}/oauth/token", auth=CLIENT, data=grant)
    assert issued.status_code == 200
    token = issued.json()
    assert token["token_type"] == "Bearer" and token["expires_in"] == 3600
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    assert requests.get(url(sandbox, "leads"), headers=bearer).json()["get_metadata"]["total"] == 300
    sandbox.clock.advance(3600)
    expired = requests.get(url(sandbox, "leads"), headers=bearer)
    assert expired.status_code == 401 and expired.json()["code"] == "BAD_CREDENTIALS"
    bad_client = requests.post(f"{base}/oauth/token", auth=(CLIENT[0], "wrong"), data=grant)
    assert bad_client.status_code == 401
    bad_key = requests.post(f"{base}/oauth/token", auth=CLIENT, data={**grant, "customer_key": "nope"})
    assert bad_key.status_code == 400


def test_out_of_scope_calls_get_403_with_code_200100(sandbox: Sandbox) -> None:
    limited = client(LEADS_ONLY_KEY)
    assert limited.get(url(sandbox, "leads")).status_code == 200
    for response in (
        limited.get(url(sandbox, "members")),
        limited.post(url(sandbox, "webhook"), json={"listId": 2, "callbackUrl": "https://example.com/h"}),
    ):
        assert response.status_code == 403
        assert response.json() == {
            "code": 200100,
            "message": "Sorry, the vendor does not have permission for this API.",
        }


# -- records and paging ------------------------------------------------------------------------


def test_leads_have_int64_ids_plain_string_contacts_and_tag_objects(sandbox: Sandbox) -> None:
    response = client().get(url(sandbox, "leads"), params={"limit": 5})
    body = response.json()
    assert set(body) == {"get_metadata", "leads"}
    assert set(body["get_metadata"]) == {"collection", "limit", "offset", "total", "scrollId"}
    assert body["get_metadata"]["collection"] == "note"  # as Lofty's published list-leads example has it
    lead = body["leads"][0]
    assert {"leadInquiry", "leadPropertyList"} <= set(lead) and isinstance(lead["leadPropertyList"], list)
    assert {"id", "leadUserId", "priceMin", "priceMax", "createTime"} <= set(lead["leadInquiry"])
    assert lead["leadId"] > 2**48  # int64: a client storing it in 32 bits, or a JS double near 2**53, breaks
    assert str(lead["leadId"]).encode() in response.content  # a plain JSON integer, not a string
    assert all(isinstance(e, str) for e in lead["emails"]) and all(isinstance(p, str) for p in lead["phones"])
    for field in ("firstName", "lastName", "source", "stageId", "stage", "assignedUserId", "score", "teamId"):
        assert field in lead
    assert lead["createTime"].endswith("Z") and lead["teamId"] == 13_233_324
    for tag in (t for lead in body["leads"] for t in lead["tags"]):
        assert {"tagId", "tagName", "leadId"} <= set(tag)
    members = {
        m["memberUserId"] for m in client().get(url(sandbox, "members"), params={"limit": 100}).json()["members"]
    }
    assert {lead["assignedUserId"] for lead in scroll_all(sandbox)} <= members


def test_offset_paging_returns_every_lead_exactly_once(sandbox: Sandbox) -> None:
    leads = offset_all(sandbox, {"sort": "CreateTime", "desc": "false"}, limit=37)
    ids = [lead["leadId"] for lead in leads]
    assert len(ids) == len(set(ids)) == lofty(sandbox).counts("acme")["leads"] == 300
    assert ids == sorted(ids)
    assert [lead["createTime"] for lead in leads] == sorted(lead["createTime"] for lead in leads)
    default = offset_all(sandbox, {})  # newest first
    assert [lead["leadId"] for lead in default] == sorted(ids, reverse=True)


@pytest.mark.parametrize("desc", ["true", "false"])
def test_scroll_id_walk_returns_every_lead_exactly_once(sandbox: Sandbox, desc: str) -> None:
    leads = scroll_all(sandbox, {"sort": "CreateTime", "desc": desc, "limit": 37})
    ids = [lead["leadId"] for lead in leads]
    assert len(ids) == len(set(ids)) == 300
    assert ids == sorted(ids, reverse=desc == "true")
    session = client()
    first = session.get(url(sandbox, "leads"), params={"limit": 100}).json()["get_metadata"]
    second = session.get(url(sandbox, "leads"), params={"scrollId": first["scrollId"], "limit": 100}).json()
    assert second["get_metadata"]["offset"] == 100 and second["get_metadata"]["total"] == 300


def test_deep_offsets_are_refused_and_scroll_id_goes_past_them(sandbox: Sandbox) -> None:
    lofty(sandbox).max_result_window = 50
    session = client()
    assert session.get(url(sandbox, "leads"), params={"limit": 10, "offset": 40}).status_code == 200
    deep = session.get(url(sandbox, "leads"), params={"limit": 10, "offset": 41})
    assert deep.status_code == 400 and deep.json()["code"] == "INVALID_PARAMETER"
    assert "scrollId" in deep.json()["message"]
    assert len(scroll_all(sandbox, {"limit": 20})) == 300


def test_parameter_validation(sandbox: Sandbox) -> None:
    session = client()
    for limit in (0, 101, "ten"):
        response = session.get(url(sandbox, "leads"), params={"limit": limit})
        assert response.status_code == 400 and response.json()["code"] == "LIMIT_NOT_VALID"
    assert session.get(url(sandbox, "leads"), params={"sort": "Price"}).json()["code"] == "INVALID_PARAMETER"
    assert session.get(url(sandbox, "leads"), params={"scrollId": "garbage!"}).status_code == 400
    assert session.get(url(sandbox, "leads"), params={"offset": -1}).status_code == 400
    assert session.get(url(sandbox, "leads/1")).json()["code"] == "LEAD_NOT_EXIST"


def test_create_time_months_match_the_period_counts(sandbox: Sandbox) -> None:
    leads = scroll_all(sandbox, {"sort": "CreateTime", "desc": "false"})
    months = Counter(lead["createTime"][:7] for lead in leads)
    for period in ("2021-11", "2024-01", "2026-10"):
        assert months[period] == lofty(sandbox).counts("acme", period)["leads"] > 0
    assert sum(months.values()) == lofty(sandbox).counts("acme")["leads"]


def test_update_time_sort_puts_changes_first_and_trashed_leads_disappear(sandbox: Sandbox) -> None:
    lf = lofty(sandbox)
    created = lf.mutate("acme", "leads", creates=2)["created"]
    updated = lf.mutate("acme", "leads", updates=3)["updated"]
    deleted = lf.mutate("acme", "leads", deletes=2)["deleted"]
    session = client()
    changed = (set(created) | set(updated)) - set(deleted)
    params = {"sort": "UpdateTime", "desc": "true", "limit": len(changed)}
    newest = session.get(url(sandbox, "leads"), params=params).json()
    assert {lead["leadId"] for lead in newest["leads"]} == changed
    assert newest["get_metadata"]["total"] == 300 + 2 - 2
    for lead_id in deleted:
        trashed = session.get(url(sandbox, f"leads/{lead_id}"))
        assert trashed.status_code == 404 and trashed.json()["code"] == "LEAD_NOT_EXIST"
    for lead_id in set(updated) - set(deleted):
        lead = session.get(url(sandbox, f"leads/{lead_id}")).json()["lead"]
        assert lead["updateTime"] > lead["createTime"]
    walked = {lead["leadId"] for lead in scroll_all(sandbox, {"sort": "UpdateTime"})}
    assert len(walked) == 300 and not walked & set(deleted)


def test_teams_are_separate_accounts(sandbox: Sandbox) -> None:
    acme, summit = scroll_all(sandbox), scroll_all(sandbox, key=SUMMIT_KEY)
    assert len(summit) == lofty(sandbox).counts("summit")["leads"] == 150
    assert {lead["teamId"] for lead in summit} == {13_233_325}
    assert not {lead["leadId"] for lead in acme} & {lead["leadId"] for lead in summit}
    assert client(SUMMIT_KEY).get(url(sandbox, f"leads/{acme[0]['leadId']}")).status_code == 404
    me = client(SUMMIT_KEY).get(url(sandbox, "me")).json()
    assert me["teamId"] == 13_233_325 and me["isAdmin"] is True


def test_list_pages_and_single_fetches_serve_identical_leads(sandbox: Sandbox) -> None:
    session = client()
    for lead in session.get(url(sandbox, "leads"), params={"limit": 5}).json()["leads"]:
        assert session.get(url(sandbox, f"leads/{lead['leadId']}")).json() == {"lead": lead}


def test_same_seed_gives_the_same_data_and_another_seed_differs() -> None:
    def snapshot(seed: int) -> list[dict]:
        with SandboxServer(Sandbox(seed=seed, scale=50, sources=["lofty"])) as server:
            return scroll_all(server.sandbox)

    assert snapshot(7) == snapshot(7)
    assert snapshot(7) != snapshot(8)


# -- rate limits -------------------------------------------------------------------------------


def test_rate_limit_is_per_app_with_epoch_reset_and_lofty_429_body(sandbox: Sandbox) -> None:
    lf = lofty(sandbox)
    first = client().get(url(sandbox, "leads"))
    assert first.headers["X-RateLimit-Limit"] == "500" and first.headers["X-RateLimit-Remaining"] == "499"
    assert time.time() < int(first.headers["X-RateLimit-Reset"]) <= time.time() + 61  # UTC epoch seconds
    lf.rate_limits["global"] = (3, 60.0)
    lf.limiter.reset()
    statuses = [client().get(url(sandbox, "leads")).status_code for _ in range(2)]
    # Every team of the app draws on the same budget.
    statuses.append(client(SUMMIT_KEY).get(url(sandbox, "leads")).status_code)
    refused = client(SUMMIT_KEY).get(url(sandbox, "leads"))
    assert statuses == [200, 200, 200] and refused.status_code == 429
    assert refused.json() == {"message": "Too Many Requests"}
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert int(refused.headers["Retry-After"]) >= 1
    assert int(refused.headers["X-RateLimit-Reset"]) >= int(time.time())


# -- webhooks ----------------------------------------------------------------------------------


def subscribe(sandbox: Sandbox, target: str, list_id: int = 2, limit: int = 100, key: str = KEY) -> dict:
    response = client(key).post(
        url(sandbox, "webhook"), json={"listId": list_id, "callbackUrl": target, "limit": limit}
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_lead_info_webhooks_are_batched_up_to_the_limit_and_posted_to_the_callback_url_as_given(
    sandbox: Sandbox,
) -> None:
    lf = lofty(sandbox)
    with WebhookSink() as sink:
        target = f"{sink.url}?token=abc123"  # a receiver's own secret travels in the URL, untouched
        subscription = subscribe(sandbox, target, limit=2)
        assert subscription == {
            "subscribeId": subscription["subscribeId"],
            "teamId": 13_233_324,
            "listId": 2,
            "callbackUrl": target,
            "vendorId": 10_234,
            "limit": 2,
        }
        created = lf.mutate("acme", "leads", creates=3)["created"]
        assert sink.wait_for(2)
        sandbox.emitter.wait_idle()
        assert len(sink.received) == 2
        batches = [json.loads(body) for body, _ in sink.received]
        for (_, headers), batch in zip(sink.received, batches, strict=True):
            assert "x-lofty-signature" not in headers  # Lofty documents no signature, so none is sent
            assert batch["teamId"] == 13_233_324 and batch["listId"] == 2
        events = sorted((e for b in batches for e in b["events"]), key=lambda e: e["leadId"])
        assert [e["leadId"] for e in events] == created
        assert {e["eventType"] for e in events} == {"CREATE"}
        assert sorted(len(b["events"]) for b in batches) == [1, 2]
        # Another team's changes do not reach this team's subscription.
        lf.mutate("summit", "leads", creates=1)
        sandbox.emitter.wait_idle()
        assert len(sink.received) == 2


def test_webhooks_are_redelivered_until_acknowledged(sandbox: Sandbox) -> None:
    with WebhookSink(statuses=[500, 502, 503]) as sink:
        subscribe(sandbox, sink.url)
        lofty(sandbox).mutate("acme", "leads", deletes=1)
        assert sink.wait_for(4)
        assert all(body == sink.received[0][0] for body, _ in sink.received)
        assert json.loads(sink.received[-1][0])["events"][0]["eventType"] == "DELETE"


def test_pipeline_change_webhook_reports_stage_moves(sandbox: Sandbox) -> None:
    lf = lofty(sandbox)
    with WebhookSink() as sink:
        subscribe(sandbox, sink.url, list_id=12)
        updated = lf.mutate("acme", "leads", updates=5)["updated"]
        sandbox.emitter.wait_idle()
        moves = [e for body, _ in sink.received for e in json.loads(body)["events"]]
        assert moves and {m["leadId"] for m in moves} <= set(updated)
        for move in moves:
            assert move["oldStageId"] != move["newStageId"]
            lead = client().get(url(sandbox, f"leads/{move['leadId']}")).json()["lead"]
            assert lead["stageId"] == move["newStageId"] and lead["stage"] == move["newStage"]


def test_webhook_subscriptions_are_listed_validated_and_deleted(sandbox: Sandbox) -> None:
    session = client()
    created = subscribe(sandbox, "https://example.com/lofty")
    subscribe(sandbox, "https://example.com/summit", key=SUMMIT_KEY)
    assert session.get(url(sandbox, "webhooks")).json() == [created]
    for body in (
        {"listId": 13, "callbackUrl": "https://example.com/h"},
        {"listId": 2, "callbackUrl": "https://example.com/h", "limit": 5001},
        {"listId": 2, "callbackUrl": "http://example.com/h"},
        {"callbackUrl": "https://example.com/h"},
    ):
        assert session.post(url(sandbox, "webhook"), json=body).status_code == 400
    assert session.delete(url(sandbox, f"webhook/{created['subscribeId']}")).status_code == 200
    assert session.get(url(sandbox, "webhooks")).json() == []
    assert session.delete(url(sandbox, f"webhook/{created['subscribeId']}")).status_code == 404


def test_duplicate_and_out_of_order_webhooks(sandbox: Sandbox) -> None:
    lf = lofty(sandbox)
    lf.faults.update({"webhook_duplicates": 1})
    with WebhookSink() as sink:
        subscribe(sandbox, sink.url)
        lf.mutate("acme", "leads", updates=1)
        assert sink.wait_for(2)
        assert sink.received[0][0] == sink.received[1][0]
    lf.faults.reset()
    lf.subscriptions.clear()
    lf.faults.update({"webhook_out_of_order": True})
    with WebhookSink() as sink:
        subscribe(sandbox, sink.url)
        first = lf.mutate("acme", "leads", updates=1)["updated"]
        second = lf.mutate("acme", "leads", updates=1)["updated"]
        assert sink.wait_for(2)
        assert [[e["leadId"] for e in json.loads(body)["events"]] for body, _ in sink.received] == [
            second,
            first,
        ]


# -- faults ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "check"),
    [
        ({"rate_limit_storm": 2}, lambda r: r.status_code == 429 and "Retry-After" in r.headers),
        ({"server_errors": 1}, lambda r: r.status_code in (500, 502, 503) and "message" in r.json()),
    ],
)
def test_counted_faults_fire_then_stop(sandbox: Sandbox, fault: dict, check: Callable) -> None:
    lofty(sandbox).faults.update(fault)
    assert check(client().get(url(sandbox, "leads")))
    lofty(sandbox).faults.reset()
    assert client().get(url(sandbox, "leads")).status_code == 200


def test_slow_response_exceeds_a_client_timeout(sandbox: Sandbox) -> None:
    lofty(sandbox).faults.update({"slow_requests": 1, "slow_seconds": 1.0})
    with pytest.raises(requests.Timeout):
        client().get(url(sandbox, "leads"), timeout=0.2)


def test_truncated_json_page(sandbox: Sandbox) -> None:
    lofty(sandbox).faults.update({"truncated_pages": 1})
    response = client().get(url(sandbox, "leads"))
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)


def test_malformed_leads_are_the_same_leads_every_time(sandbox: Sandbox) -> None:
    lofty(sandbox).faults.update({"malformed_rate": 0.1})
    first = offset_all(sandbox, {"sort": "CreateTime"})
    second = offset_all(sandbox, {"sort": "CreateTime"})
    broken = [
        lead
        for lead in first
        if "leadId" not in lead or lead["createTime"] == "0000-00-00 00:00:00" or not isinstance(lead["emails"], list)
    ]
    assert 10 <= len(broken) <= 60
    assert first == second


def test_leads_inserted_during_a_scroll(sandbox: Sandbox) -> None:
    lf = lofty(sandbox)
    lf.faults.update({"insert_between_pages": 1})
    newest_first = scroll_all(sandbox)  # a descending scroll never sees leads created behind it
    assert len({lead["leadId"] for lead in newest_first}) == len(newest_first) == 300
    assert lf.counts("acme")["leads"] == 303
    oldest_first = scroll_all(sandbox, {"sort": "CreateTime", "desc": "false"})
    ids = [lead["leadId"] for lead in oldest_first]
    assert len(ids) == len(set(ids)) > 303  # an ascending scroll reaches the new ones at its end


def test_child_before_parent_assigns_leads_to_an_agent_that_arrives_next_step(sandbox: Sandbox) -> None:
    lf = lofty(sandbox)
    lf.faults.update({"child_before_parent": True})
    with WebhookSink() as sink:
        subscribe(sandbox, sink.url, list_id=1)
        lead_id = lf.mutate("acme", "leads", creates=1)["created"][0]
        agent = client().get(url(sandbox, f"leads/{lead_id}")).json()["lead"]["assignedUserId"]
        members = client().get(url(sandbox, "members"), params={"limit": 100}).json()["members"]
        assert agent not in {m["memberUserId"] for m in members}
        lf.faults.reset()
        lf.mutate("acme", "leads", updates=1)
        assert sink.wait_for(1)
        assert json.loads(sink.received[0][0])["events"][0]["memberUserId"] == agent
    members = client().get(url(sandbox, "members"), params={"limit": 100}).json()["members"]
    assert agent in {m["memberUserId"] for m in members}


def test_expired_revoked_and_suspended_credentials(sandbox: Sandbox) -> None:
    lf = lofty(sandbox)
    lf.faults.update({"expired_credentials": True})
    expired = client().get(url(sandbox, "leads"))
    assert expired.status_code == 401 and "expired" in expired.json()["message"]
    lf.faults.reset()
    lf.faults.update({"revoked_keys": [KEY]})
    assert client().get(url(sandbox, "leads")).status_code == 401
    assert client(SUMMIT_KEY).get(url(sandbox, "leads")).status_code == 200
    lf.faults.reset()
    lf.faults.update({"suspended_accounts": ["acme"]})
    assert client().get(url(sandbox, "leads")).status_code == 403
    assert client(SUMMIT_KEY).get(url(sandbox, "leads")).status_code == 200


def test_a_leads_activities_page_by_current_id_in_time_order_and_a_new_call_moves_it_up_last_activity(
    sandbox: Sandbox,
) -> None:
    lf = lofty(sandbox)
    lead_id = lf.teams["acme"].spec.lead_base + 7
    base = f"{lf.base_url}/v2.0/leads/{lead_id}/activities"
    before = client().get(base, params={"limit": 1000}).json()["activities"]
    lf.mutate("acme", "activities", creates=2, update_ids=[lead_id, lead_id])
    every = client().get(base, params={"limit": 1000}).json()["activities"]
    assert len(every) == len(before) + 2
    assert [a["id"] for a in every] == sorted(a["id"] for a in every)
    assert [a["activityTime"] for a in every] == sorted(a["activityTime"] for a in every)
    assert all(a["leadId"] == lead_id and a["channel"] in ("call", "text", "email") for a in every)
    first = client().get(base, params={"limit": 1}).json()["activities"]
    rest = client().get(base, params={"limit": 1000, "currentId": first[0]["id"]}).json()["activities"]
    assert first + rest == every
    top = client().get(url(sandbox, "leads"), params={"limit": 1, "sort": "LastActivity", "desc": "true"}).json()
    assert top["leads"][0]["leadId"] == lead_id
    assert client().get(f"{lf.base_url}/v2.0/leads/1/activities").status_code == 404
    assert client().get(base, params={"limit": 1001}).json()["code"] == "LIMIT_NOT_VALID"
