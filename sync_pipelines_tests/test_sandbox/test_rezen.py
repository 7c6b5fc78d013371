"""Contract tests of the reZEN simulator, over real HTTP (arrakis and yenta as path prefixes)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import requests

from sync_pipelines.sandbox.app import Sandbox, SandboxServer
from sync_pipelines_tests.test_sandbox.webhook_sink import WebhookSink

KEY = "rezen_sandbox_key_keystone"
OTHER_KEY = "rezen_sandbox_key_meridian"
API_ERROR = "com.real.commons.apierror.ApiError"


def client(key: str = KEY) -> requests.Session:
    session = requests.Session()
    session.headers["X-API-KEY"] = key
    return session


def owner(sandbox: Sandbox, account: str = "keystone") -> str:
    return sandbox["rezen"].credentials()["accounts"][account]["yenta_id"]


def arrakis(sandbox: Sandbox) -> str:
    return f"{sandbox['rezen'].base_url}/arrakis/api/v1"


def yenta(sandbox: Sandbox) -> str:
    return f"{sandbox['rezen'].base_url}/yenta/api/v1"


def unthrottled(sandbox: Sandbox) -> None:
    # Walks below make more requests than the default 100 per 10 s; the limit has its own test.
    sandbox["rezen"].rate_limits["global"] = (100_000, 10.0)


def walk_spring(url: str, params: dict | None = None, key: str = KEY) -> list[dict]:
    """Spring pages: pageNumber from 0 until `last`, checking the page metadata on the way."""
    session = client(key)
    out: list[dict] = []
    page = 0
    while True:
        response = session.get(url, params={**(params or {}), "pageNumber": page})
        response.raise_for_status()
        body = response.json()
        assert body["pageable"]["pageNumber"] == body["number"] == page
        assert body["numberOfElements"] == len(body["content"])
        out.extend(body["content"])
        if body["last"]:
            assert len(out) == body["totalElements"]
            assert body["totalPages"] == max(page + 1, 0) or body["totalElements"] == 0
            return out
        page += 1


def walk_until_empty(url: str, key: str, params: dict | None = None, size: int = 20) -> list[dict]:
    """Revshare style: no totals, ask for the next page until one comes back empty."""
    session = client(key)
    out: list[dict] = []
    for page in range(10_000):
        body = session.get(url, params={**(params or {}), "pageNumber": page, "pageSize": size}).json()
        if not body["contributions"]:
            return out
        out.extend(body["contributions"])
    raise AssertionError("never reached an empty page")


def all_transactions(sandbox: Sandbox, account: str = "keystone", key: str = KEY) -> list[dict]:
    base = f"{arrakis(sandbox)}/transactions/participant/{owner(sandbox, account)}/transactions"
    return [
        t for group in ("OPEN", "CLOSED", "TERMINATED") for t in walk_spring(f"{base}/{group}", {"pageSize": 37}, key)
    ]


def all_agents(sandbox: Sandbox, params: dict | None = None) -> list[dict]:
    statuses = {"statusIn": ["ACTIVE", "INACTIVE", "CANDIDATE", "REJECTED", "RESURRECTING"]}
    out = []
    session = client()
    for tier in range(1, 8):
        url = f"{yenta(sandbox)}/agents/{owner(sandbox)}/down-line/{tier}"
        page = 0
        while True:
            body = session.get(url, params={**statuses, **(params or {}), "pageNumber": page, "pageSize": 50}).json()
            assert body["tier"] == tier and body["agentId"] == owner(sandbox)
            out.extend(body["agents"])
            if not body["hasNext"]:
                break
            page += 1
    return out


def all_contributions(sandbox: Sandbox, params: dict | None = None) -> list[dict]:
    base = f"{arrakis(sandbox)}/revshares/{owner(sandbox)}/contributions"
    return [c for tier in range(1, 8) for c in walk_until_empty(f"{base}/{tier}", KEY, params)]


# -- auth ----------------------------------------------------------------------------------------------


def test_missing_wrong_or_bearer_credentials_get_401_with_the_nested_api_error(sandbox: Sandbox) -> None:
    url = f"{yenta(sandbox)}/agents/me"
    for response in (
        requests.get(url),
        requests.get(url, headers={"X-API-KEY": "nope"}),
        requests.get(url, headers={"Authorization": f"Bearer {KEY}"}),  # reZEN wants X-API-KEY, not Bearer
    ):
        assert response.status_code == 401
        error = response.json()[API_ERROR]
        assert error["status"] == "UNAUTHORIZED" and error["message"].startswith("Not authorized")
    me = client().get(url)
    assert me.status_code == 200 and me.json()["id"] == owner(sandbox)


def test_revoked_expired_and_suspended_keys_while_the_other_account_works(sandbox: Sandbox) -> None:
    rezen = sandbox["rezen"]
    url = f"{yenta(sandbox)}/agents/me"
    rezen.faults.update({"revoked_keys": [KEY]})
    assert client().get(url).status_code == 401
    assert client(OTHER_KEY).get(url).json()["id"] == owner(sandbox, "meridian")
    rezen.faults.reset()
    rezen.faults.update({"suspended_accounts": ["keystone"]})
    forbidden = client().get(url)
    assert forbidden.status_code == 403 and forbidden.json()[API_ERROR]["status"] == "FORBIDDEN"
    rezen.faults.reset()
    rezen.faults.update({"expired_credentials": True})
    expired = client().get(url)
    assert expired.status_code == 401 and "expired" in expired.json()[API_ERROR]["message"]


def test_another_agents_network_or_transactions_are_forbidden(sandbox: Sandbox) -> None:
    other = owner(sandbox, "meridian")
    assert client().get(f"{arrakis(sandbox)}/transactions/participant/{other}/transactions/OPEN").status_code == 403
    assert client().get(f"{yenta(sandbox)}/agents/{other}/down-line/1").status_code == 403
    assert client().get(f"{yenta(sandbox)}/agents/{other}").status_code == 404


# -- paging and filters ----------------------------------------------------------------------------------


def test_lifecycle_groups_page_every_transaction_exactly_once(sandbox: Sandbox) -> None:
    unthrottled(sandbox)
    transactions = all_transactions(sandbox)
    ids = [t["id"] for t in transactions]
    assert len(ids) == len(set(ids)) == sandbox["rezen"].counts("keystone")["transactions"] == 300
    states = {t["lifecycleState"]["state"] for t in transactions}
    assert {"CLOSED", "TERMINATED"} <= states and states & {
        "NEW",
        "NEEDS_COMMISSION_VALIDATION",
        "APPROVED_FOR_CLOSING",
    }
    counts = (
        client()
        .get(f"{arrakis(sandbox)}/transactions/participant/{owner(sandbox)}/transactions/lifecycle-group-counts")
        .json()
    )
    assert sum(counts.values()) == 300 and counts["OPEN"] > 0
    # The other account is a different agent with its own, smaller book.
    other = all_transactions(sandbox, "meridian", OTHER_KEY)
    assert len(other) == sandbox["rezen"].counts("meridian")["transactions"] == 120
    assert not {t["id"] for t in other} & set(ids)


def test_descending_order_and_transaction_type_filter(sandbox: Sandbox) -> None:
    unthrottled(sandbox)
    url = f"{arrakis(sandbox)}/transactions/participant/{owner(sandbox)}/transactions/CLOSED"
    ascending = walk_spring(url, {"pageSize": 50})
    descending = walk_spring(url, {"pageSize": 50, "sortDirection": "DESC", "sortBy": "CREATED_AT"})
    assert [t["id"] for t in descending] == [t["id"] for t in reversed(ascending)]
    created = [t["createdAt"] for t in ascending]
    assert created == sorted(created) and isinstance(created[0], int)  # epoch milliseconds
    leases = walk_spring(url, {"pageSize": 50, "transactionType": "LEASE"})
    assert leases and {t["transactionType"] for t in leases} == {"LEASE"}
    assert {t["id"] for t in leases} == {t["id"] for t in ascending if t["transactionType"] == "LEASE"}
    bad = client().get(url, params={"sortBy": "PRICE"})
    assert bad.status_code == 400 and set(bad.json()) == {"timestamp", "status", "error", "message", "path"}


def test_page_size_defaults_to_20_and_is_capped_at_100(sandbox: Sandbox) -> None:
    url = f"{arrakis(sandbox)}/transactions/participant/{owner(sandbox)}/transactions/CLOSED"
    assert client().get(url).json()["size"] == 20
    body = client().get(url, params={"pageSize": 500}).json()
    assert body["size"] == 100 and len(body["content"]) == 100


def test_listing_groups_cover_every_listing_once(sandbox: Sandbox) -> None:
    unthrottled(sandbox)
    base = f"{arrakis(sandbox)}/transactions/participant/{owner(sandbox)}/listing-transactions"
    groups = {g: walk_spring(f"{base}/{g}", {"pageSize": 40}) for g in ("LISTING_ACTIVE", "CLOSED", "TERMINATED")}
    ids = [listing["id"] for group in groups.values() for listing in group]
    assert len(ids) == len(set(ids)) == sandbox["rezen"].counts("keystone")["listings"]
    nonterminated = walk_spring(f"{base}/LISTING_NONTERMINATED", {"pageSize": 40})
    assert {x["id"] for x in nonterminated} == {x["id"] for g in ("LISTING_ACTIVE", "CLOSED") for x in groups[g]}
    assert all(x["listing"] is True for x in nonterminated)


def test_network_downline_tiers_frontline_and_agent_search_agree(sandbox: Sandbox) -> None:
    unthrottled(sandbox)
    agents = all_agents(sandbox)
    ids = [a["id"] for a in agents]
    assert len(ids) == len(set(ids)) == sandbox["rezen"].counts("keystone")["agents"]
    frontline = client().get(f"{yenta(sandbox)}/agents/{owner(sandbox)}/front-line-agents-info").json()
    assert {a["id"] for a in frontline["frontLineAgents"]} == {a["id"] for a in agents if a["tier"] == 1}
    by_id = {a["id"]: a for a in agents}
    for agent in agents:  # every sponsor sits one tier up (tier 1's sponsor is the key's owner)
        sponsor = agent["sponsorId"]
        assert sponsor == owner(sandbox) if agent["tier"] == 1 else by_id[sponsor]["tier"] == agent["tier"] - 1
    active = [a for a in agents if a["status"] == "ACTIVE"]
    default = client().get(f"{yenta(sandbox)}/agents/{owner(sandbox)}/down-line/3").json()
    assert default["totalCount"] == len([a for a in active if a["tier"] == 3])  # statusIn defaults to ACTIVE
    search, page = [], 0
    while True:
        body = (
            client().get(f"{yenta(sandbox)}/agents/search/active", params={"pageNumber": page, "pageSize": 64}).json()
        )
        search.extend(body["agents"])
        if (page + 1) * 64 >= body["totalCount"]:
            break
        page += 1
    assert body["totalCount"] == len(active) + 1 == len(search)
    assert {a["id"] for a in search} == {a["id"] for a in active} | {owner(sandbox)}
    sizes = client().get(f"{yenta(sandbox)}/agents/{owner(sandbox)}/network-size-by-tier").json()
    assert sizes["totalNetworkSize"] == len(active)


def test_downline_updated_window_is_exact_and_matches_the_period_counts(sandbox: Sandbox) -> None:
    unthrottled(sandbox)
    january = all_agents(sandbox, {"updatedAtFrom": "2024-01-01", "updatedAtTo": "2024-01-31"})
    assert len(january) == sandbox["rezen"].counts("keystone", "2024-01")["agents"] > 0
    assert all(datetime.fromtimestamp(a["updatedAt"] / 1000, UTC).strftime("%Y-%m") == "2024-01" for a in january)
    result = sandbox["rezen"].mutate("keystone", "agents", creates=2, updates=3)
    today = sandbox["rezen"].now().date().isoformat()
    changed = all_agents(sandbox, {"updatedAtFrom": today, "updatedAtTo": today})
    assert {a["id"] for a in changed} == set(result["created"]) | set(result["updated"])


def test_revshare_contributions_page_until_empty_and_the_date_window_is_exact(sandbox: Sandbox) -> None:
    unthrottled(sandbox)
    everything = all_contributions(sandbox)
    ids = [c["id"] for c in everything]
    assert len(ids) == len(set(ids)) == sandbox["rezen"].counts("keystone")["contributions"]
    january = all_contributions(sandbox, {"startDate": "2024-01-01", "endDate": "2024-01-31"})
    assert len(january) == sandbox["rezen"].counts("keystone", "2024-01")["contributions"] > 0
    assert all(c["closedAt"].startswith("2024-01") for c in january)
    missed = walk_until_empty(f"{arrakis(sandbox)}/revshares/{owner(sandbox)}/contributions/1", KEY, {"missed": "true"})
    assert all(c["missed"] for c in missed)
    agents = {a["id"]: a for a in all_agents(sandbox)}
    first_of_tier = {t: min(a["createdAt"] for a in agents.values() if a["tier"] == t) for t in range(1, 6)}
    for contribution in everything:  # a contribution comes from an agent of its tier, who joined before it
        agent = agents[contribution["agentYentaId"]]
        assert agent["tier"] == contribution["tier"]
        # ... unless no agent of that tier had joined yet (the very start of history): then the tier's first.
        joined_before = agent["createdAt"] <= contribution["createdAt"]
        assert joined_before or agent["createdAt"] == first_of_tier[agent["tier"]] > contribution["createdAt"]
        assert contribution["agent"]["firstName"] == agent["firstName"]


def test_transactions_point_at_real_agents_and_are_found_by_id_and_code(sandbox: Sandbox) -> None:
    unthrottled(sandbox)
    transactions = all_transactions(sandbox)
    agents = {a["id"]: a for a in all_agents(sandbox)} | {owner(sandbox): {"createdAt": 0}}
    for transaction in transactions:
        assert transaction["transactionOwner"]["id"] == owner(sandbox)
        for participant in transaction["agents"]:
            assert agents[participant["yentaId"]]["createdAt"] <= transaction["createdAt"]
        assert transaction["price"]["currency"] == "USD" and transaction["price"]["amount"] > 0
    sample = transactions[7]
    by_id = client().get(f"{arrakis(sandbox)}/transactions/{sample['id']}").json()
    by_code = client().get(f"{arrakis(sandbox)}/transactions/code/{sample['code']}").json()
    assert by_id == by_code == sample
    missing = client().get(f"{arrakis(sandbox)}/transactions/{sample['id'][:-4]}beef")
    assert missing.status_code == 404 and missing.json()["error"] == "Not Found"
    # Another account's key does not see this agent's transactions.
    assert client(OTHER_KEY).get(f"{arrakis(sandbox)}/transactions/{sample['id']}").status_code == 404


def test_teams_are_spring_pages_and_rosters_name_network_agents(sandbox: Sandbox) -> None:
    unthrottled(sandbox)
    teams = walk_spring(f"{yenta(sandbox)}/teams", {"pageSize": 5})
    assert len(teams) == sandbox["rezen"].counts("keystone")["teams"]
    for team in teams[:5]:
        full = client().get(f"{yenta(sandbox)}/teams/{team['id']}").json()
        members = client().get(f"{yenta(sandbox)}/teams/{team['id']}/members").json()["members"]
        assert [m["agentId"] for m in full["agents"]] == [m["agentId"] for m in members]
        assert members and members[0]["role"] == "LEADER" and members[0]["agentId"] == team["leaderId"]
        for member in members:
            assert client().get(f"{yenta(sandbox)}/agents/{member['agentId']}").status_code == 200
    created = walk_spring(f"{yenta(sandbox)}/teams", {"createdAtStart": "2023-01-01", "createdAtEnd": "2023-12-31"})
    assert all(datetime.fromtimestamp(t["createdAt"] / 1000, UTC).year == 2023 for t in created)


def test_equity_plans_and_cap_info_resolve_from_agent_records(sandbox: Sandbox) -> None:
    me = client().get(f"{yenta(sandbox)}/agents/me").json()
    plan = client().get(f"{yenta(sandbox)}/agents/plans/equity_purchase/{me['equityPurchasePlanId']}").json()
    assert plan["id"] == me["equityPurchasePlanId"] and plan["type"] == "EQUITY_PURCHASE"
    award = client().get(f"{yenta(sandbox)}/agents/plans/equity_award/{me['equityAwardPlanId']}")
    assert award.status_code == 200
    cap = client().get(f"{yenta(sandbox)}/agents/{owner(sandbox)}/cap-info").json()
    assert cap["agentId"] == owner(sandbox) and cap["cap"]["amount"] >= cap["capPaid"]["amount"]


# -- the clock -------------------------------------------------------------------------------------------


def test_updates_move_transactions_between_lifecycle_groups_and_deletes_disappear(sandbox: Sandbox) -> None:
    unthrottled(sandbox)
    rezen = sandbox["rezen"]
    base = f"{arrakis(sandbox)}/transactions/participant/{owner(sandbox)}/transactions"
    open_before = walk_spring(f"{base}/OPEN", {"pageSize": 100})
    result = rezen.mutate("keystone", "transactions", creates=2, updates=5, deletes=2,
                          update_ids=[t["id"] for t in open_before[:5]])  # fmt: skip
    assert result["updated"] == [t["id"] for t in open_before[:5]]
    after = all_transactions(sandbox)
    assert len(after) == len({t["id"] for t in after}) == 300 + 2 - 2
    for deleted in result["deleted"]:
        assert client().get(f"{arrakis(sandbox)}/transactions/{deleted}").status_code == 404
    states = {t["id"]: t["lifecycleState"]["state"] for t in after}
    assert all(states[i] == "NEW" for i in result["created"])
    moved = [i for i in result["updated"] if states.get(i) in ("CLOSED", "TERMINATED")]
    open_after = {t["id"] for t in walk_spring(f"{base}/OPEN", {"pageSize": 100})}
    assert not set(moved) & open_after


def test_admin_mutate_returns_public_ids_and_the_clock_makes_activity(sandbox: Sandbox) -> None:
    response = requests.post(
        f"{sandbox.base_url}/_sandbox/rezen/mutate", json={"account": "meridian", "entity": "listings", "creates": 1}
    )
    listing_id = response.json()["created"][0]
    assert client(OTHER_KEY).get(f"{arrakis(sandbox)}/transactions/{listing_id}").json()["listing"] is True
    before = sandbox["rezen"].counts("keystone")
    # This source's clock work only: the sandbox-wide advance would also run every other simulator.
    sandbox.clock.advance(7200)
    sandbox["rezen"].advance(7200)
    after = sandbox["rezen"].counts("keystone")
    assert after["transactions"] > before["transactions"] and after["contributions"] > before["contributions"]


# -- rate limits -----------------------------------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after_and_rate_headers(sandbox: Sandbox) -> None:
    rezen = sandbox["rezen"]
    assert rezen.rate_limits["global"] == (100, 10.0)  # the documented default
    rezen.rate_limits["global"] = (3, 10.0)
    session = client()
    responses = [session.get(f"{yenta(sandbox)}/agents/me") for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert responses[0].headers["X-RateLimit-Limit"] == "3"
    assert responses[0].headers["X-RateLimit-Remaining"] == "2"
    assert int(responses[3].headers["Retry-After"]) >= 1
    assert responses[3].json()[API_ERROR]["status"] == "TOO_MANY_REQUESTS"
    assert client(OTHER_KEY).get(f"{yenta(sandbox)}/agents/me").status_code == 200  # limits are per key


# -- determinism -----------------------------------------------------------------------------------------


def test_same_seed_gives_the_same_data_and_another_seed_differs() -> None:
    def snapshot(seed: int) -> list[dict]:
        with SandboxServer(Sandbox(seed=seed, scale=60, sources=["rezen"])) as server:
            sandbox = server.sandbox
            url = f"{arrakis(sandbox)}/transactions/participant/{owner(sandbox)}/transactions/CLOSED"
            agents_url = f"{yenta(sandbox)}/agents/{owner(sandbox)}/down-line/4"
            return walk_spring(url, {"pageSize": 100}) + client().get(agents_url).json()["agents"]

    assert snapshot(7) == snapshot(7)
    assert snapshot(7) != snapshot(8)


# -- faults ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "check"),
    [
        ({"rate_limit_storm": 2}, lambda r: r.status_code == 429 and "Retry-After" in r.headers),
        ({"server_errors": 1}, lambda r: r.status_code in (500, 502, 503) and API_ERROR in r.json()),
    ],
)
def test_counted_faults_fire_then_stop(
    sandbox: Sandbox, fault: dict, check: Callable[[requests.Response], bool]
) -> None:
    url = f"{arrakis(sandbox)}/transactions/participant/{owner(sandbox)}/transactions/OPEN"
    sandbox["rezen"].faults.update(fault)
    assert check(client().get(url))
    sandbox["rezen"].faults.reset()
    assert client().get(url).status_code == 200


def test_slow_response_exceeds_a_client_timeout(sandbox: Sandbox) -> None:
    sandbox["rezen"].faults.update({"slow_requests": 1, "slow_seconds": 1.0})
    with pytest.raises(requests.Timeout):
        client().get(f"{yenta(sandbox)}/agents/me", timeout=0.2)


def test_truncated_json_page(sandbox: Sandbox) -> None:
    sandbox["rezen"].faults.update({"truncated_pages": 1})
    url = f"{arrakis(sandbox)}/revshares/{owner(sandbox)}/contributions/2"
    response = client().get(url)
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)
    assert json.loads(client().get(url).content)["contributions"]


def test_malformed_records_are_the_same_records_every_time(sandbox: Sandbox) -> None:
    unthrottled(sandbox)
    sandbox["rezen"].faults.update({"malformed_rate": 0.1})
    first, second = all_transactions(sandbox), all_transactions(sandbox)
    broken = [t for t in first if "id" not in t or not isinstance(t["createdAt"], int) or t["updatedAt"] is None]
    assert 10 <= len(broken) <= 60
    assert first == second


def test_records_inserted_between_pages(sandbox: Sandbox) -> None:
    unthrottled(sandbox)
    rezen = sandbox["rezen"]
    rezen.faults.update({"insert_between_pages": 1})
    url = f"{arrakis(sandbox)}/transactions/participant/{owner(sandbox)}/transactions/OPEN"
    first = client().get(url, params={"pageSize": 10}).json()
    second = client().get(url, params={"pageSize": 10, "pageNumber": 1}).json()
    assert second["totalElements"] == first["totalElements"] + 1  # a new (open) transaction arrived meanwhile
    assert rezen.counts("keystone")["transactions"] == 302


def test_child_before_parent_then_parent_arrives_at_the_next_step(sandbox: Sandbox) -> None:
    unthrottled(sandbox)
    rezen = sandbox["rezen"]
    rezen.faults.update({"child_before_parent": True})
    contribution_id = rezen.mutate("keystone", "contributions", creates=1)["created"][0]
    contribution = next(c for c in all_contributions(sandbox) if c["id"] == contribution_id)
    agent_id = contribution["agentYentaId"]
    assert client().get(f"{yenta(sandbox)}/agents/{agent_id}").status_code == 404
    rezen.faults.reset()
    rezen.mutate("keystone", "transactions", updates=1)
    agent = client().get(f"{yenta(sandbox)}/agents/{agent_id}").json()
    assert agent["tier"] == contribution["tier"] and agent["status"] == "ACTIVE"


# -- webhooks --------------------------------------------------------------------------------------------


def _independent_signature(body: bytes, secret: str) -> str:
    # Written from docs/integrations/rezen.md, not from the simulator: sha256= hex HMAC of the raw body.
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def test_webhooks_are_signed_filtered_and_redelivered_until_acknowledged(sandbox: Sandbox) -> None:
    rezen = sandbox["rezen"]
    with WebhookSink(statuses=[500, 503]) as sink:
        subscribed = client().post(
            f"{arrakis(sandbox)}/webhooks", json={"url": sink.url, "eventTypes": ["TRANSACTION_UPDATED"]}
        )
        assert subscribed.status_code == 201
        subscription = subscribed.json()
        secret = subscription["secret"]
        assert "secret" not in client().get(f"{arrakis(sandbox)}/webhooks").json()[0]  # shown once
        rezen.mutate("keystone", "listings", creates=1)  # not subscribed: no delivery
        updated = rezen.mutate("keystone", "transactions", updates=1)["updated"]
        assert sink.wait_for(3)  # two failures, then the redelivery that succeeds
        bodies = {body for body, _ in sink.received}
        assert len(bodies) == 1  # one event, redelivered unchanged
        body, headers = sink.received[-1]
        assert headers["x-real-signature"] == _independent_signature(body, secret)
        assert headers["x-real-signature"] != _independent_signature(body, secret + "x")
        payload = json.loads(body)
        assert payload["eventType"] == headers["x-real-event-type"] == "TRANSACTION_UPDATED"
        assert payload["transactionId"] == updated[0] and payload["eventId"] == headers["x-real-event-id"]
        datetime.fromisoformat(payload["occurredAt"])
        assert client().delete(f"{arrakis(sandbox)}/webhooks/{subscription['id']}").status_code == 204
        rezen.mutate("keystone", "transactions", updates=1)
        sandbox.emitter.wait_idle()
        assert len(sink.received) == 3


def test_duplicate_webhooks_fault(sandbox: Sandbox) -> None:
    rezen = sandbox["rezen"]
    rezen.faults.update({"webhook_duplicates": 1})
    with WebhookSink() as sink:
        client().post(f"{arrakis(sandbox)}/webhooks", json={"url": sink.url, "eventTypes": ["AGENT_CREATED"]})
        rezen.mutate("keystone", "agents", creates=1)
        assert sink.wait_for(2)
        assert sink.received[0][0] == sink.received[1][0]


def test_invalid_subscription_is_a_400(sandbox: Sandbox) -> None:
    response = client().post(f"{arrakis(sandbox)}/webhooks", json={"url": "x", "eventTypes": ["NOPE"]})
    assert response.status_code == 400 and response.json()["status"] == 400
