"""Contract tests of the DotLoop simulator over real HTTP: OAuth, batches, filters, webhooks, faults."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from sync_pipelines.sandbox.app import Sandbox, SandboxServer
from sync_pipelines.sandbox.dotloop import DotLoop
from sync_pipelines_tests.test_sandbox.webhook_sink import WebhookSink

CLIENT = ("dotloop_sandbox_client", "dotloop_sandbox_secret")
ACME_PROFILE, ACME_COMPANY, SUMMIT_PROFILE = 4_001_001, 4_001_002, 4_001_003


def dotloop(sandbox: Sandbox) -> DotLoop:
    simulator = sandbox["dotloop"]
    assert isinstance(simulator, DotLoop)
    return simulator


def tokens(sandbox: Sandbox, user: str = "acme") -> dict:
    base = dotloop(sandbox).base_url
    code = requests.post(f"{base}/oauth/_sandbox/code", auth=CLIENT, data={"user": user}).json()["code"]
    response = requests.post(
        f"{base}/oauth/token", auth=CLIENT, data={"grant_type": "authorization_code", "code": code}
    )
    assert response.status_code == 200, response.text
    return response.json()


def client(sandbox: Sandbox, user: str = "acme") -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {tokens(sandbox, user)['access_token']}"
    return session


def api(sandbox: Sandbox, path: str) -> str:
    return f"{dotloop(sandbox).base_url}/public/v2/{path}"


def fetch_batches(session: requests.Session, url: str, params: dict | None = None, size: int = 100) -> list[dict]:
    """Every record of a batched listing: batch_number from 1 until a batch comes back short."""
    out: list[dict] = []
    number = 1
    while True:
        response = session.get(url, params={**(params or {}), "batch_number": number, "batch_size": size})
        assert response.status_code == 200, response.text
        batch = response.json()["data"]
        out.extend(batch)
        if len(batch) < size:
            return out
        number += 1


def loops_url(sandbox: Sandbox, profile: int = ACME_PROFILE) -> str:
    return api(sandbox, f"profile/{profile}/loop")


# -- auth --------------------------------------------------------------------------------------


def test_missing_or_invalid_bearer_tokens_get_401_with_an_oauth_error(sandbox: Sandbox) -> None:
    missing = requests.get(api(sandbox, "account"))
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert missing.json()["error"] == "unauthorized"
    wrong = requests.get(api(sandbox, "account"), headers={"Authorization": "Bearer not-a-token"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]
    basic = requests.get(api(sandbox, "account"), auth=CLIENT)
    assert basic.status_code == 401


def test_full_oauth_flow_code_token_call_expiry_refresh_rotation_and_revoke(sandbox: Sandbox) -> None:
    dl = dotloop(sandbox)
    base = dl.base_url
    redirect = "http://127.0.0.1:9/callback"
    # 1. The authorize redirect carries a code and our state back.
    authorized = requests.get(
        f"{base}/oauth/authorize",
        params={"response_type": "code", "client_id": CLIENT[0], "redirect_uri": redirect, "state": "s-42"},
        allow_redirects=False,
    )
    assert authorized.status_code == 302
    location = urlsplit(authorized.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == redirect
    query = parse_qs(location.query)
    assert query["state"] == ["s-42"]
    # 2. The code buys a Bearer token pair, once, with the same redirect_uri.
    exchange = {"grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": redirect}
    issued = requests.post(f"{base}/oauth/token", auth=CLIENT, data=exchange)
    assert issued.status_code == 200
    first = issued.json()
    assert set(first) == {"access_token", "token_type", "refresh_token", "expires_in", "scope"}
    assert first["token_type"] == "Bearer" and first["expires_in"] == 12 * 3600
    assert issued.headers["Cache-Control"] == "no-store"
    replay = requests.post(f"{base}/oauth/token", auth=CLIENT, data=exchange)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    # 3. The token works for the user who approved.
    bearer = {"Authorization": f"Bearer {first['access_token']}"}
    account = requests.get(api(sandbox, "account"), headers=bearer)
    assert account.status_code == 200 and account.json()["data"]["defaultProfileId"] == ACME_PROFILE
    # 4. Past its lifetime (sandbox clock) it is refused.
    sandbox.clock.advance(12 * 3600 + 1)
    expired = requests.get(api(sandbox, "account"), headers=bearer)
    assert expired.status_code == 401 and expired.json()["error"] == "invalid_token"
    assert "expired" in expired.json()["error_description"]
    # 5. Refreshing rotates both tokens; the old refresh token is dead afterwards.
    refresh = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    refreshed = requests.post(f"{base}/oauth/token", auth=CLIENT, data=refresh)
    assert refreshed.status_code == 200
    second = refreshed.json()
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    bearer = {"Authorization": f"Bearer {second['access_token']}"}
    assert requests.get(api(sandbox, "account"), headers=bearer).status_code == 200
    reused = requests.post(f"{base}/oauth/token", auth=CLIENT, data=refresh)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    # Parameters in the query string (as some clients send them) work as well as a form body.
    third = requests.post(
        f"{base}/oauth/token",
        auth=CLIENT,
        params={"grant_type": "refresh_token", "refresh_token": second["refresh_token"]},
    ).json()
    assert requests.get(api(sandbox, "account"), headers=bearer).status_code == 401  # rotated out
    # 6. Revoking the access token kills the grant, refresh token included.
    bearer = {"Authorization": f"Bearer {third['access_token']}"}
    revoked = requests.post(f"{base}/oauth/token/revoke", auth=CLIENT, params={"token": third["access_token"]})
    assert revoked.status_code == 200
    assert requests.get(api(sandbox, "account"), headers=bearer).status_code == 401
    after = {"grant_type": "refresh_token", "refresh_token": third["refresh_token"]}
    assert requests.post(f"{base}/oauth/token", auth=CLIENT, data=after).status_code == 400


def test_access_token_lifetime_is_configurable(sandbox: Sandbox) -> None:
    dl = dotloop(sandbox)
    dl.access_token_ttl = 60
    issued = tokens(sandbox)
    assert issued["expires_in"] == 60
    bearer = {"Authorization": f"Bearer {issued['access_token']}"}
    sandbox.clock.advance(59)
    assert requests.get(api(sandbox, "account"), headers=bearer).status_code == 200
    sandbox.clock.advance(1)
    assert requests.get(api(sandbox, "account"), headers=bearer).status_code == 401


def test_token_endpoint_rejects_bad_clients_codes_and_grants(sandbox: Sandbox) -> None:
    base = dotloop(sandbox).base_url
    bad_client = requests.post(f"{base}/oauth/token", auth=(CLIENT[0], "wrong"), data={"grant_type": "x"})
    assert bad_client.status_code == 401 and bad_client.json()["error"] == "invalid_client"
    no_client = requests.post(f"{base}/oauth/token", data={"grant_type": "refresh_token"})
    assert no_client.status_code == 401
    unknown = requests.post(f"{base}/oauth/token", auth=CLIENT, data={"grant_type": "password"})
    assert unknown.status_code == 400 and unknown.json()["error"] == "unsupported_grant_type"
    bad_code = requests.post(
        f"{base}/oauth/token", auth=CLIENT, data={"grant_type": "authorization_code", "code": "nope"}
    )
    assert bad_code.status_code == 400 and bad_code.json()["error"] == "invalid_grant"
    code = dotloop(sandbox).issue_code("acme", "http://127.0.0.1:9/a")
    mismatch = requests.post(
        f"{base}/oauth/token",
        auth=CLIENT,
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": "http://127.0.0.1:9/b"},
    )
    assert mismatch.status_code == 400
    wrong_app = requests.get(
        f"{base}/oauth/authorize",
        params={"response_type": "code", "client_id": "other", "redirect_uri": "http://127.0.0.1:9/cb"},
        allow_redirects=False,
    )
    assert wrong_app.status_code == 400


def test_each_user_sees_only_its_own_profiles(sandbox: Sandbox) -> None:
    acme, summit = client(sandbox, "acme"), client(sandbox, "summit")
    profiles = acme.get(api(sandbox, "profile")).json()
    assert profiles["meta"]["total"] == 2
    assert [p["id"] for p in profiles["data"]] == [ACME_PROFILE, ACME_COMPANY]
    assert [p["default"] for p in profiles["data"]] == [True, False]
    assert [p["id"] for p in summit.get(api(sandbox, "profile")).json()["data"]] == [SUMMIT_PROFILE]
    assert summit.get(loops_url(sandbox, ACME_PROFILE)).status_code == 403
    assert acme.get(loops_url(sandbox, 999)).status_code == 404
    dl = dotloop(sandbox)
    for profile, user in ((ACME_PROFILE, acme), (ACME_COMPANY, acme), (SUMMIT_PROFILE, summit)):
        owner = "summit" if profile == SUMMIT_PROFILE else "acme"
        total = user.get(loops_url(sandbox, profile)).json()["meta"]["total"]
        assert total == dl.counts(f"{owner}:{profile}")["loops"]
    assert dl.counts("acme:4001001")["loops"] == 300
    assert dl.counts("acme:4001002")["loops"] == 120 and dl.counts("summit")["loops"] == 150


# -- paging and filters ------------------------------------------------------------------------


def test_batches_return_every_loop_exactly_once(sandbox: Sandbox) -> None:
    session = client(sandbox)
    loops = fetch_batches(session, loops_url(sandbox), {"sort": "created:asc"}, size=37)
    ids = [loop["id"] for loop in loops]
    assert len(ids) == len(set(ids)) == 300
    assert ids == sorted(ids)
    assert [loop["created"] for loop in loops] == sorted(loop["created"] for loop in loops)
    # The default order is most recently updated first.
    default = fetch_batches(session, loops_url(sandbox))
    assert [loop["id"] for loop in default] == sorted(ids, reverse=True)
    first = session.get(loops_url(sandbox), params={"batch_size": 5}).json()
    assert set(first) == {"meta", "data"} and first["meta"] == {"total": 300} and len(first["data"]) == 5
    assert set(first["data"][0]) >= {
        "id",
        "name",
        "status",
        "transactionType",
        "totalTaskCount",
        "completedTaskCount",
        "updated",
        "created",
        "loopUrl",
    }


def test_batch_size_above_100_is_refused_and_batches_past_the_end_are_empty(sandbox: Sandbox) -> None:
    session = client(sandbox)
    too_big = session.get(loops_url(sandbox), params={"batch_size": 101})
    assert too_big.status_code == 400 and "batch_size" in too_big.json()["message"]
    assert session.get(loops_url(sandbox), params={"batch_number": 0}).status_code == 400
    past = session.get(loops_url(sandbox), params={"batch_number": 4, "batch_size": 100}).json()
    assert past == {"meta": {"total": 300}, "data": []}
    assert session.get(loops_url(sandbox), params={"sort": "purchase_price:asc"}).status_code == 400
    assert session.get(loops_url(sandbox), params={"filter": "nonsense=1"}).status_code == 400


def test_updated_min_with_updated_desc_finds_exactly_the_changed_loops(sandbox: Sandbox) -> None:
    dl = dotloop(sandbox)
    watermark = dl.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    created = dl.mutate("acme", "loops", creates=3)["created"]
    updated = dl.mutate("acme", "loops", updates=4)["updated"]
    session = client(sandbox)
    changed = fetch_batches(session, loops_url(sandbox), {"sort": "updated:desc", "filter": f"updated_min={watermark}"})
    assert {loop["id"] for loop in changed} == set(created) | set(updated)
    assert [loop["updated"] for loop in changed] == sorted((loop["updated"] for loop in changed), reverse=True)
    assert changed[0]["id"] in updated  # the last step comes first
    # updated_min is inclusive: the second step's own timestamp still finds it.
    second_step = max(loop["updated"] for loop in changed)
    again = session.get(loops_url(sandbox), params={"filter": f"updated_min={second_step}"}).json()
    assert {loop["id"] for loop in again["data"]} == set(updated)
    # The other profile of the same user did not change.
    other = session.get(loops_url(sandbox, ACME_COMPANY), params={"filter": f"updated_min={watermark}"})
    assert other.json()["meta"]["total"] == 0


def test_created_min_month_walk_matches_the_period_counts(sandbox: Sandbox) -> None:
    session = client(sandbox)
    in_month = []
    number = 1
    while True:
        batch = session.get(
            loops_url(sandbox),
            params={
                "sort": "created:asc",
                "filter": "created_min=2024-01-01T00:00:00Z",
                "batch_size": 10,
                "batch_number": number,
            },
        ).json()["data"]
        in_month += [loop for loop in batch if loop["created"] < "2024-02"]
        if not batch or batch[-1]["created"] >= "2024-02":
            break
        number += 1
    assert all(loop["created"].startswith("2024-01") for loop in in_month)
    assert len(in_month) == dotloop(sandbox).counts("acme:4001001", "2024-01")["loops"] > 0
    everything = fetch_batches(session, loops_url(sandbox))
    assert sorted(loop["id"] for loop in everything if loop["created"].startswith("2024-01")) == sorted(
        loop["id"] for loop in in_month
    )


def test_participants_belong_to_their_loop_and_their_changes_move_the_loop(sandbox: Sandbox) -> None:
    dl = dotloop(sandbox)
    dl.rate_limits["global"] = (0, 60.0)  # one request per loop is more than 100 a minute
    session = client(sandbox)
    loops = fetch_batches(session, loops_url(sandbox))
    seen: dict[int, int] = {}
    for loop in loops[:40]:
        body = session.get(f"{loops_url(sandbox)}/{loop['id']}/participant").json()
        assert body["meta"]["total"] == len(body["data"]) == 3
        for participant in body["data"]:
            assert set(participant) == {"id", "fullName", "email", "role", "phone"}
            assert participant["id"] not in seen
            seen[participant["id"]] = loop["id"]
    assert dl.counts("acme:4001001")["participants"] == 900
    watermark = dl.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    participant_id = next(iter(seen))
    dl.mutate("acme", "participants", updates=1, update_ids=[participant_id])
    created = dl.mutate("acme", "participants", creates=1)["created"][0]
    touched = session.get(loops_url(sandbox), params={"filter": f"updated_min={watermark}"}).json()["data"]
    assert seen[participant_id] in {loop["id"] for loop in touched}
    host = next(
        loop["id"]
        for loop in touched
        if created in [p["id"] for p in session.get(f"{loops_url(sandbox)}/{loop['id']}/participant").json()["data"]]
    )
    single = session.get(f"{loops_url(sandbox)}/{host}/participant/{created}")
    assert single.status_code == 200 and single.json()["data"]["id"] == created
    assert session.get(f"{loops_url(sandbox)}/{seen[participant_id]}/participant/{created}").status_code == 404


def test_contacts_are_batched_and_deleted_contacts_disappear(sandbox: Sandbox) -> None:
    dl = dotloop(sandbox)
    session = client(sandbox)
    contacts = fetch_batches(session, api(sandbox, "contact"), size=40)
    ids = [c["id"] for c in contacts]
    assert len(ids) == len(set(ids)) == dl.counts("acme")["contacts"] == 300
    assert set(contacts[0]) == {
        "id",
        "firstName",
        "lastName",
        "email",
        "home",
        "office",
        "fax",
        "address",
        "city",
        "zipCode",
        "state",
        "country",
        "updated",
    }
    summit = fetch_batches(client(sandbox, "summit"), api(sandbox, "contact"))
    assert len(summit) == 150 and not {c["id"] for c in summit} & set(ids)
    deleted = dl.mutate("acme", "contacts", deletes=2)["deleted"]
    for contact_id in deleted:
        assert session.get(api(sandbox, f"contact/{contact_id}")).status_code == 404
    remaining = fetch_batches(session, api(sandbox, "contact"))
    assert len(remaining) == 298 and not set(deleted) & {c["id"] for c in remaining}


def test_loop_detail_sections_and_include_details(sandbox: Sandbox) -> None:
    session = client(sandbox)
    loop = session.get(loops_url(sandbox), params={"batch_size": 1}).json()["data"][0]
    detail = session.get(f"{loops_url(sandbox)}/{loop['id']}/detail").json()["data"]
    address = detail["Property Address"]
    assert {"Street Number", "Street Name", "City", "State/Prov", "Zip/Postal Code"} <= set(address)
    assert all(isinstance(v, str) for section in detail.values() for v in section.values())
    assert f"{address['Street Number']} {address['Street Name']}" in loop["name"]
    with_details = session.get(loops_url(sandbox), params={"batch_size": 1, "include_details": "true"}).json()
    assert with_details["data"][0]["details"] == detail


def test_list_batches_and_single_fetches_serve_identical_records(sandbox: Sandbox) -> None:
    session = client(sandbox)
    for loop in session.get(loops_url(sandbox), params={"batch_size": 5}).json()["data"]:
        assert session.get(f"{loops_url(sandbox)}/{loop['id']}").json()["data"] == loop
    for contact in session.get(api(sandbox, "contact"), params={"batch_size": 5}).json()["data"]:
        assert session.get(api(sandbox, f"contact/{contact['id']}")).json()["data"] == contact


def test_same_seed_gives_the_same_data_and_another_seed_differs() -> None:
    def snapshot(seed: int) -> list[dict]:
        with SandboxServer(Sandbox(seed=seed, scale=50, sources=["dotloop"])) as server:
            session = client(server.sandbox)
            return fetch_batches(session, loops_url(server.sandbox)) + fetch_batches(
                session, api(server.sandbox, "contact")
            )

    assert snapshot(7) == snapshot(7)
    assert snapshot(7) != snapshot(8)


# -- rate limits -------------------------------------------------------------------------------


def test_rate_limit_is_per_user_with_headers_and_retry_after(sandbox: Sandbox) -> None:
    dl = dotloop(sandbox)
    assert dl.rate_limits["global"] == (100, 60.0)
    first = client(sandbox).get(api(sandbox, "account"))
    assert first.headers["X-RateLimit-Limit"] == "100"
    assert first.headers["X-RateLimit-Remaining"] == "99"
    assert 0 < int(first.headers["X-RateLimit-Reset"]) <= 60_000  # milliseconds left in the window
    dl.rate_limits["global"] = (3, 60.0)
    dl.limiter.reset()
    acme, summit = client(sandbox, "acme"), client(sandbox, "summit")
    responses = [acme.get(api(sandbox, "account")) for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in responses] == ["2", "1", "0", "0"]
    assert int(responses[3].headers["Retry-After"]) >= 1
    assert responses[3].json()["status"] == 429
    # A second token of the same user shares the budget; another user has its own.
    assert client(sandbox, "acme").get(api(sandbox, "account")).status_code == 429
    assert summit.get(api(sandbox, "account")).status_code == 200


# -- webhooks ----------------------------------------------------------------------------------


def _independent_dotloop_signature(body: bytes, key: str) -> str:
    # Written from the contract in docs/integrations/dotloop.md: hex HMAC-SHA1 of the raw body.
    return hmac.new(key.encode("utf-8"), body, hashlib.sha1).hexdigest()


def subscribe(sandbox: Sandbox, session: requests.Session, url: str, events: list[str], **extra: object) -> dict:
    body = {
        "targetType": "PROFILE",
        "targetId": ACME_PROFILE,
        "url": url,
        "eventTypes": events,
        "signingKey": "whsec-dotloop-test",
        "externalId": "sync-acme",
        "enabled": True,
        **extra,
    }
    response = session.post(api(sandbox, "subscription"), json=body)
    assert response.status_code == 201, response.text
    return response.json()["data"]


def test_webhooks_are_signed_with_hmac_sha1_and_redelivered_until_acknowledged(sandbox: Sandbox) -> None:
    dl = dotloop(sandbox)
    session = client(sandbox)
    with WebhookSink(statuses=[500, 503]) as sink:
        subscription = subscribe(sandbox, session, sink.url, ["LOOP_CREATED"])
        assert "signingKey" not in subscription and subscription["enabled"] is True
        loop_id = dl.mutate("acme", "loops", creates=1)["created"][0]
        assert sink.wait_for(3)  # two failures, then the redelivery that succeeds
        body, headers = sink.received[-1]
        assert headers["x-dotloop-signature"] == _independent_dotloop_signature(body, "whsec-dotloop-test")
        assert int(headers["x-dotloop-timestamp"]) > 1_600_000_000_000  # epoch milliseconds
        payload = json.loads(body)
        assert payload["eventType"] == "LOOP_CREATED"
        assert payload["subscriptionExternalId"] == "sync-acme"
        assert payload["profileId"] == ACME_PROFILE
        assert payload["event"] == {"id": loop_id, "profileId": ACME_PROFILE}
        assert payload["timestamp"] == int(dl.now().timestamp() * 1000)
        assert all(b == body for b, _ in sink.received)  # the same event, redelivered
        sandbox.emitter.wait_idle()
        events = session.get(api(sandbox, f"subscription/{subscription['id']}/event")).json()["data"]
        assert [(e["id"], e["deliveryStatus"], e["deliveryAttempts"]) for e in events] == [
            (payload["eventId"], "SUCCESS", 3)
        ]
    assert session.delete(api(sandbox, f"subscription/{subscription['id']}")).status_code == 204
    assert session.get(api(sandbox, "subscription")).json() == {"meta": {"total": 0}, "data": []}


def test_subscription_targets_route_loop_and_contact_events(sandbox: Sandbox) -> None:
    dl = dotloop(sandbox)
    session = client(sandbox)
    with WebhookSink() as profile_sink, WebhookSink() as user_sink:
        subscribe(sandbox, session, profile_sink.url, ["LOOP_UPDATED", "CONTACT_CREATED"])
        subscribe(
            sandbox,
            session,
            user_sink.url,
            ["LOOP_UPDATED", "CONTACT_CREATED"],
            targetType="USER",
            targetId=2_000_101,
            signingKey=None,
        )
        dl.mutate("acme", "loops", updates=1)
        dl.mutate("acme", "contacts", creates=1)
        dl.mutate(f"acme:{ACME_COMPANY}", "loops", updates=1)
        dl.mutate("summit", "loops", updates=1)  # another user's change reaches neither
        assert user_sink.wait_for(3)
        sandbox.emitter.wait_idle()
        assert [json.loads(b)["eventType"] for b, _ in profile_sink.received] == ["LOOP_UPDATED"]
        assert sorted(json.loads(b)["eventType"] for b, _ in user_sink.received) == [
            "CONTACT_CREATED",
            "LOOP_UPDATED",
            "LOOP_UPDATED",
        ]
        assert all("x-dotloop-signature" not in h for _, h in user_sink.received)  # no signing key
    bad = session.post(
        api(sandbox, "subscription"),
        json={
            "targetType": "PROFILE",
            "targetId": SUMMIT_PROFILE,
            "url": "http://x",
            "eventTypes": ["LOOP_CREATED"],
        },
    )
    assert bad.status_code == 400
    unknown_event = session.post(
        api(sandbox, "subscription"),
        json={"targetType": "PROFILE", "targetId": ACME_PROFILE, "url": "http://x", "eventTypes": ["NOPE"]},
    )
    assert unknown_event.status_code == 400


def test_duplicate_and_out_of_order_webhooks(sandbox: Sandbox) -> None:
    dl = dotloop(sandbox)
    session = client(sandbox)
    dl.faults.update({"webhook_duplicates": 1})
    with WebhookSink() as sink:
        subscribe(sandbox, session, sink.url, ["CONTACT_UPDATED"], targetType="USER", targetId=2_000_101)
        dl.mutate("acme", "contacts", updates=1)
        assert sink.wait_for(2)
        assert sink.received[0][0] == sink.received[1][0]
    dl.faults.reset()
    dl.subscriptions.clear()
    dl.faults.update({"webhook_out_of_order": True})
    with WebhookSink() as sink:
        subscribe(sandbox, session, sink.url, ["LOOP_UPDATED"])
        first = dl.mutate("acme", "loops", updates=1)["updated"]
        second = dl.mutate("acme", "loops", updates=1)["updated"]
        assert sink.wait_for(2)
        assert [[json.loads(body)["event"]["id"]] for body, _ in sink.received] == [second, first]


# -- faults ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "check"),
    [
        ({"rate_limit_storm": 2}, lambda r: r.status_code == 429 and "Retry-After" in r.headers),
        ({"server_errors": 1}, lambda r: r.status_code in (500, 502, 503) and "message" in r.json()),
    ],
)
def test_counted_faults_fire_then_stop(sandbox: Sandbox, fault: dict, check: Callable) -> None:
    session = client(sandbox)
    dotloop(sandbox).faults.update(fault)
    assert check(session.get(loops_url(sandbox)))
    dotloop(sandbox).faults.reset()
    assert session.get(loops_url(sandbox)).status_code == 200


def test_slow_response_exceeds_a_client_timeout(sandbox: Sandbox) -> None:
    session = client(sandbox)
    dotloop(sandbox).faults.update({"slow_requests": 1, "slow_seconds": 1.0})
    with pytest.raises(requests.Timeout):
        session.get(loops_url(sandbox), timeout=0.2)


def test_truncated_json_batch(sandbox: Sandbox) -> None:
    session = client(sandbox)
    dotloop(sandbox).faults.update({"truncated_pages": 1})
    response = session.get(loops_url(sandbox))
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)
    assert session.get(loops_url(sandbox)).json()["meta"]["total"] == 300


def test_malformed_records_are_the_same_records_every_time(sandbox: Sandbox) -> None:
    session = client(sandbox)
    dotloop(sandbox).faults.update({"malformed_rate": 0.1})
    first = fetch_batches(session, loops_url(sandbox), {"sort": "created:asc"})
    second = fetch_batches(session, loops_url(sandbox), {"sort": "created:asc"})
    broken = [
        loop
        for loop in first
        if "id" not in loop or loop["updated"] == "not-a-date" or not isinstance(loop["created"], str)
    ]
    assert 10 <= len(broken) <= 60
    assert first == second


def test_loops_inserted_between_batches_exist_after_the_walk(sandbox: Sandbox) -> None:
    dl = dotloop(sandbox)
    session = client(sandbox)
    dl.faults.update({"insert_between_pages": 1})
    walked = fetch_batches(session, loops_url(sandbox), {"sort": "created:asc"})
    ids = [loop["id"] for loop in walked]
    assert len(ids) == len(set(ids)) > 300  # the ascending walk reaches loops created behind it
    assert dl.counts("acme:4001001")["loops"] == len(ids) + 1  # one more after the last batch


def test_a_merged_loop_leaves_the_list_and_redirects_to_the_survivor(sandbox: Sandbox) -> None:
    dl = dotloop(sandbox)
    session = client(sandbox)
    with WebhookSink() as sink:
        subscribe(sandbox, session, sink.url, ["LOOP_MERGED"])
        result = dl.mutate("acme", "loops", deletes=1)
        [[source, target]] = result["merged_into"]
        assert result["deleted"] == [source]
        assert sink.wait_for(1)
        event = json.loads(sink.received[0][0])["event"]
        assert event["fromId"] == source and event["toId"] == target
    moved = session.get(f"{loops_url(sandbox)}/{source}", allow_redirects=False)
    assert moved.status_code == 301 and moved.headers["Location"].endswith(f"/loop/{target}")
    assert session.get(f"{loops_url(sandbox)}/{source}").json()["data"]["id"] == target
    ids = {loop["id"] for loop in fetch_batches(session, loops_url(sandbox))}
    assert source not in ids and target in ids and len(ids) == 299
    survivors = session.get(f"{loops_url(sandbox)}/{target}/participant").json()
    assert survivors["meta"]["total"] == 6  # the merged loop's participants moved over


def test_child_before_parent_then_the_loop_arrives_at_the_next_step(sandbox: Sandbox) -> None:
    dl = dotloop(sandbox)
    session = client(sandbox)
    dl.faults.update({"child_before_parent": True})
    with WebhookSink() as sink:
        subscribe(sandbox, session, sink.url, ["LOOP_PARTICIPANT_CREATED", "LOOP_CREATED"])
        participant_id = dl.mutate("acme", "participants", creates=1)["created"][0]
        assert sink.wait_for(1)
        event = json.loads(sink.received[0][0])["event"]
        assert event["id"] == participant_id
        loop_id = event["loopId"]
        assert session.get(f"{loops_url(sandbox)}/{loop_id}").status_code == 404
        dl.faults.reset()
        dl.mutate("acme", "contacts", updates=1)
        assert sink.wait_for(2)
        assert json.loads(sink.received[1][0])["event"]["id"] == loop_id
    participants = session.get(f"{loops_url(sandbox)}/{loop_id}/participant").json()["data"]
    assert [p["id"] for p in participants] == [participant_id]


def test_expired_credentials_fault_expires_every_token(sandbox: Sandbox) -> None:
    dl = dotloop(sandbox)
    session = client(sandbox)
    dl.faults.update({"expired_credentials": True})
    refused = session.get(api(sandbox, "account"))
    assert refused.status_code == 401 and "expired" in refused.json()["error_description"]
    assert tokens(sandbox)["expires_in"] == 0
    dl.faults.reset()
    assert session.get(api(sandbox, "account")).status_code == 200


def test_revoked_client_or_refresh_token_and_a_suspended_user(sandbox: Sandbox) -> None:
    dl = dotloop(sandbox)
    base = dl.base_url
    issued = tokens(sandbox)
    bearer = {"Authorization": f"Bearer {issued['access_token']}"}
    dl.faults.update({"revoked_keys": [CLIENT[0]]})
    assert requests.get(api(sandbox, "account"), headers=bearer).status_code == 401
    refresh = {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]}
    assert requests.post(f"{base}/oauth/token", auth=CLIENT, data=refresh).json()["error"] == "invalid_client"
    dl.faults.reset()
    dl.faults.update({"revoked_keys": [issued["refresh_token"]]})
    assert requests.get(api(sandbox, "account"), headers=bearer).status_code == 401
    assert requests.post(f"{base}/oauth/token", auth=CLIENT, data=refresh).status_code == 400
    dl.faults.reset()
    dl.faults.update({"suspended_accounts": ["acme"]})
    assert requests.get(api(sandbox, "account"), headers=bearer).status_code == 403
    assert client(sandbox, "summit").get(api(sandbox, "account")).status_code == 200


def test_admin_api_mutates_and_counts(sandbox: Sandbox) -> None:
    base = sandbox.base_url
    before = requests.get(f"{base}/_sandbox/dotloop/counts", params={"account": "acme"}).json()
    result = requests.post(
        f"{base}/_sandbox/dotloop/mutate", json={"account": "acme", "entity": "contacts", "creates": 2}
    ).json()
    assert len(result["created"]) == 2
    after = requests.get(f"{base}/_sandbox/dotloop/counts", params={"account": "acme"}).json()
    assert after["contacts"] == before["contacts"] + 2
    unknown = requests.post(f"{base}/_sandbox/dotloop/mutate", json={"account": "nobody", "entity": "loops"})
    assert unknown.status_code == 400
    info = requests.get(f"{base}/_sandbox/info").json()["sources"]["dotloop"]
    assert info["credentials"]["client_id"] == CLIENT[0]
    assert info["credentials"]["users"]["acme"]["profile_ids"] == [ACME_PROFILE, ACME_COMPANY]


def test_credentials_give_each_user_a_fresh_single_use_code(sandbox: Sandbox) -> None:
    dl = dotloop(sandbox)
    first, second = dl.credentials()["accounts"], dl.credentials()["accounts"]
    assert set(first) == set(dl.users) and first["acme"]["code"] != second["acme"]["code"]
    exchange = {"grant_type": "authorization_code", "code": first["summit"]["code"]}
    issued = requests.post(f"{dl.base_url}/oauth/token", auth=CLIENT, data=exchange)
    bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}
    assert requests.get(api(sandbox, "account"), headers=bearer).json()["data"]["id"] == 2_000_102
    assert requests.post(f"{dl.base_url}/oauth/token", auth=CLIENT, data=exchange).status_code == 400
