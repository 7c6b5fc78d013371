"""Contract tests of the Stripe simulator over real HTTP, partly through the official `stripe` library."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests
import stripe

from sync_pipelines.sandbox.app import Sandbox, SandboxServer
from sync_pipelines.sandbox.stripe import Stripe
from sync_pipelines_tests.test_sandbox.webhook_sink import WebhookSink

ACME = "sk_test_sandboxAcme4eC39HqLyjWDarjtT1zdp7dc"
SUMMIT = "sk_test_sandboxSummit9Fq2MvX8pLwR4nTa7KcZ3h"
HARBOR = "sk_live_sandboxHarbor2Xc7QmN5vTy8pLk3WdRa6j"
ENTITIES = ("customers", "subscriptions", "invoices", "charges")
PREFIX = {"customers": "cus_", "subscriptions": "sub_", "invoices": "in_", "charges": "ch_"}


@pytest.fixture
def sim(sandbox: Sandbox) -> Iterator[Stripe]:
    """The Stripe simulator with its per-second limits lifted: the limiter has tests of its own."""
    simulator = sandbox["stripe"]
    assert isinstance(simulator, Stripe)
    for context in simulator.rate_limits:
        simulator.rate_limits[context] = (0, 1.0)
    yield simulator


def api(sim: Stripe) -> str:
    return f"{sim.base_url}/v1"


def headers(key: str = ACME, version: str | None = None) -> dict[str, str]:
    out = {"Authorization": f"Bearer {key}"}
    if version:
        out["Stripe-Version"] = version
    return out


def get(
    sim: Stripe, path: str, params: dict | None = None, key: str = ACME, version: str | None = None
) -> requests.Response:
    return requests.get(f"{api(sim)}/{path}", params=params, headers=headers(key, version), timeout=10)


def walk(
    sim: Stripe, entity: str, params: dict | None = None, key: str = ACME, version: str | None = None
) -> list[dict]:
    """Every record of a list, newest first, paging with starting_after as Stripe documents."""
    query = {"limit": 100, **(params or {})}
    out: list[dict] = []
    while True:
        response = get(sim, entity, query, key, version)
        response.raise_for_status()
        body = response.json()
        out.extend(body["data"])
        if not body["has_more"]:
            return out
        query["starting_after"] = body["data"][-1]["id"]


def client(
    sim: Stripe, key: str = ACME, stripe_version: str | None = None, max_network_retries: int = 0
) -> stripe.StripeClient:
    """The official client, unchanged but for its base address; no retries unless a test wants them."""
    return stripe.StripeClient(
        key,
        base_addresses={"api": sim.base_url},
        stripe_version=stripe_version,
        max_network_retries=max_network_retries,
    )


# -- auth and errors ----------------------------------------------------------------------------------


def test_missing_or_wrong_key_gets_401_with_stripes_error_object(sim: Stripe) -> None:
    missing = requests.get(f"{api(sim)}/customers", timeout=10)
    assert missing.status_code == 401
    error = missing.json()["error"]
    assert error["type"] == "invalid_request_error" and "did not provide an API key" in error["message"]
    assert missing.headers["Request-Id"].startswith("req_")
    wrong = get(sim, "customers", key="sk_test_nope1234")
    assert wrong.status_code == 401
    assert wrong.json()["error"]["message"] == "Invalid API Key provided: sk_test_****1234"
    assert wrong.headers["WWW-Authenticate"].startswith("Basic")
    with pytest.raises(stripe.AuthenticationError) as raised:
        client(sim, "sk_test_nope1234").v1.customers.list()
    assert raised.value.http_status == 401 and raised.value.request_id


def test_basic_auth_with_the_key_as_username_works_like_bearer(sim: Stripe) -> None:
    response = requests.get(f"{api(sim)}/customers", auth=(ACME, ""), timeout=10)
    assert response.status_code == 200 and response.json()["object"] == "list"


def test_revoked_key_gets_401_while_the_other_account_works(sim: Stripe) -> None:
    sim.faults.update({"revoked_keys": [ACME]})
    revoked = get(sim, "customers")
    assert revoked.status_code == 401
    assert revoked.json()["error"]["code"] == "api_key_expired"
    assert get(sim, "customers", key=SUMMIT).status_code == 200
    with pytest.raises(stripe.AuthenticationError):
        client(sim).v1.customers.list()


def test_missing_objects_bad_parameters_and_unknown_urls_get_stripes_errors(sim: Stripe) -> None:
    missing = get(sim, "customers/cus_q7KdF2mXvB9hT4")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "resource_missing"
    assert missing.json()["error"]["type"] == "invalid_request_error"
    for limit in (0, 101, "ten"):
        bad = get(sim, "customers", {"limit": limit})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "limit"
    some = walk(sim, "customers")[:2]
    both = get(sim, "customers", {"starting_after": some[0]["id"], "ending_before": some[1]["id"]})
    assert both.status_code == 400 and both.json()["error"]["code"] == "parameters_exclusive"
    unknown = get(sim, "customers", {"updated_after": 1})
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "parameter_unknown"
    cursor = get(sim, "invoices", {"starting_after": "in_nonsense"})
    assert cursor.status_code == 400 and cursor.json()["error"]["param"] == "starting_after"
    assert get(sim, "transfers").status_code == 404
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client(sim).v1.customers.retrieve("cus_q7KdF2mXvB9hT4")
    assert raised.value.code == "resource_missing" and raised.value.http_status == 404


# -- the official library -------------------------------------------------------------------------------


def test_official_client_lists_auto_pages_every_customer_once_and_retrieves_one(sim: Stripe) -> None:
    stripe_client = client(sim)
    first = stripe_client.v1.customers.list(params={"limit": 7})
    assert len(first.data) == 7 and first.has_more and first.url == "/v1/customers"
    ids = [customer.id for customer in first.auto_paging_iter()]
    assert len(ids) == len(set(ids)) == sim.counts("acme")["customers"] == 300
    created = [c.created for c in stripe_client.v1.customers.list(params={"limit": 100}).auto_paging_iter()]
    assert created == sorted(created, reverse=True)  # reverse chronological
    one = stripe_client.v1.customers.retrieve(ids[42])
    assert one.id == ids[42] and one.object == "customer" and one.livemode is False
    assert "@" in one.email and one.name and isinstance(one.metadata.to_dict(), dict)


def test_module_level_api_base_works_too(sim: Stripe, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stripe, "api_base", sim.base_url)
    monkeypatch.setattr(stripe, "api_key", SUMMIT)
    monkeypatch.setattr(stripe, "max_network_retries", 0)
    ids = [c.id for c in stripe.Customer.list(limit=100).auto_paging_iter()]
    assert len(ids) == len(set(ids)) == sim.counts("summit")["customers"] == 150
    assert stripe.Customer.retrieve(ids[0]).id == ids[0]


def test_official_client_pages_backwards_with_ending_before(sim: Stripe) -> None:
    oldest = walk(sim, "customers")[-1]
    newer = client(sim).v1.customers.list(params={"limit": 40, "ending_before": oldest["id"]})
    ids = [c.id for c in newer.auto_paging_iter()]
    assert len(ids) == len(set(ids)) == 299
    assert oldest["id"] not in ids


def test_official_client_creates_customers_idempotently_and_deletes_them(sim: Stripe) -> None:
    stripe_client = client(sim)
    params = {"email": "new.person@example.com", "name": "New Person", "metadata": {"source": "test"}}
    created = stripe_client.v1.customers.create(params=params, options={"idempotency_key": "k-1"})
    again = stripe_client.v1.customers.create(params=params, options={"idempotency_key": "k-1"})
    assert created.id == again.id and created.email == "new.person@example.com"
    assert created.metadata["source"] == "test"
    assert sim.counts("acme")["customers"] == 301
    assert walk(sim, "customers", {"email": "new.person@example.com"})[0]["id"] == created.id
    with pytest.raises(stripe.IdempotencyError):
        stripe_client.v1.customers.create(params={"email": "other@example.com"}, options={"idempotency_key": "k-1"})
    deleted = stripe_client.v1.customers.delete(created.id)
    assert deleted.deleted is True
    assert stripe_client.v1.customers.retrieve(created.id).deleted is True
    assert sim.counts("acme")["customers"] == 300


# -- paging and filters ---------------------------------------------------------------------------------


@pytest.mark.parametrize("entity", ENTITIES)
def test_cursor_paging_both_ways_returns_every_record_exactly_once(sim: Stripe, entity: str) -> None:
    status = {"status": "all"} if entity == "subscriptions" else {}
    forward = walk(sim, entity, {"limit": 37, **status})
    ids = [r["id"] for r in forward]
    assert len(ids) == len(set(ids)) == sim.counts("acme")[entity]
    assert all(i.startswith(PREFIX[entity]) for i in ids)
    assert [r["created"] for r in forward] == sorted((r["created"] for r in forward), reverse=True)
    # Backwards from the oldest with ending_before: each page is newest first, pages move towards now.
    backward: list[str] = []
    cursor = ids[-1]
    while True:
        body = get(sim, entity, {"limit": 23, "ending_before": cursor, **status}).json()
        backward.extend(r["id"] for r in reversed(body["data"]))
        if not body["has_more"]:
            break
        cursor = body["data"][0]["id"]
    assert backward == list(reversed(ids[:-1]))


@pytest.mark.parametrize("entity", ENTITIES)
def test_created_window_is_exact_and_matches_the_period_counts(sim: Stripe, entity: str) -> None:
    start = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())
    end = int(datetime(2024, 2, 1, tzinfo=UTC).timestamp())
    status = {"status": "all"} if entity == "subscriptions" else {}
    window = walk(sim, entity, {"created[gte]": start, "created[lt]": end, **status})
    assert len(window) == sim.counts("acme", "2024-01")[entity] > 0
    everything = walk(sim, entity, status)
    in_january = {r["id"] for r in everything if start <= r["created"] < end}
    assert {r["id"] for r in window} == in_january
    edge = window[-1]["created"]
    assert {r["id"] for r in walk(sim, entity, {"created[gt]": edge, "created[lt]": end, **status})} == {
        r["id"] for r in window if r["created"] > edge
    }
    exact = walk(sim, entity, {"created": edge, **status})
    assert exact and all(r["created"] == edge for r in exact)


def test_official_client_sends_created_filters_as_stripe_encodes_them(sim: Stripe) -> None:
    start = int(datetime(2023, 6, 1, tzinfo=UTC).timestamp())
    end = int(datetime(2023, 7, 1, tzinfo=UTC).timestamp())
    listed = client(sim).v1.invoices.list(params={"created": {"gte": start, "lt": end}, "limit": 100})
    assert len(list(listed.auto_paging_iter())) == sim.counts("acme", "2023-06")["invoices"]


def test_relations_point_at_existing_parents_created_no_later(sim: Stripe) -> None:
    customers = {c["id"]: c for c in walk(sim, "customers")}
    subscriptions = {s["id"]: s for s in walk(sim, "subscriptions", {"status": "all"})}
    invoices = {i["id"]: i for i in walk(sim, "invoices")}
    charges = walk(sim, "charges")
    for sub in subscriptions.values():
        assert customers[sub["customer"]]["created"] <= sub["created"]
        assert sub["items"]["data"][0]["subscription"] == sub["id"]
        assert sub["latest_invoice"] is None or invoices[sub["latest_invoice"]]["subscription"] == sub["id"]
    with_subscription = [i for i in invoices.values() if i["subscription"]]
    assert 0 < len(with_subscription) < len(invoices)  # renewals and one-off invoices
    for invoice in invoices.values():
        assert invoice["customer"] in customers
        if invoice["subscription"]:
            sub = subscriptions[invoice["subscription"]]
            assert sub["customer"] == invoice["customer"] and sub["created"] <= invoice["created"]
        if invoice["status"] == "paid":
            assert invoice["amount_paid"] == invoice["amount_due"] > 0
    linked = [c for c in charges if c["invoice"]]
    assert linked
    for charge in charges:
        assert charge["customer"] in customers
        if charge["invoice"]:
            invoice = invoices[charge["invoice"]]
            assert invoice["customer"] == charge["customer"] and invoice["amount_due"] == charge["amount"]
            assert invoice["charge"] == charge["id"]
            assert charge["status"] == ("succeeded" if invoice["status"] == "paid" else "failed")


def test_customer_and_subscription_filters_match_the_full_lists(sim: Stripe) -> None:
    invoices = walk(sim, "invoices")
    charges = walk(sim, "charges")
    subscriptions = walk(sim, "subscriptions", {"status": "all"})
    customers = [c["id"] for c in walk(sim, "customers")]
    for customer in customers[::17] + [invoices[0]["customer"]]:
        for entity, full in (("invoices", invoices), ("charges", charges), ("subscriptions", subscriptions)):
            extra = {"status": "all"} if entity == "subscriptions" else {}
            filtered = [r["id"] for r in walk(sim, entity, {"customer": customer, **extra})]
            assert filtered == [r["id"] for r in full if r["customer"] == customer]
    sub = next(i["subscription"] for i in invoices if i["subscription"])
    of_sub = [r["id"] for r in walk(sim, "invoices", {"subscription": sub})]
    assert of_sub and of_sub == [i["id"] for i in invoices if i["subscription"] == sub]
    bad = get(sim, "invoices", {"customer": "cus_q7KdF2mXvB9hTq"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "customer"


def test_subscriptions_hide_canceled_ones_unless_asked(sim: Stripe) -> None:
    everything = walk(sim, "subscriptions", {"status": "all"})
    default = walk(sim, "subscriptions")
    canceled = walk(sim, "subscriptions", {"status": "canceled"})
    assert canceled and all(s["status"] == "canceled" and s["canceled_at"] for s in canceled)
    assert {s["id"] for s in default} == {s["id"] for s in everything if s["status"] != "canceled"}
    ended = walk(sim, "subscriptions", {"status": "ended"})
    assert {s["status"] for s in ended} <= {"canceled", "incomplete_expired"}
    paid = walk(sim, "invoices", {"status": "paid"})
    assert paid and all(i["status"] == "paid" for i in paid)


def test_email_filter_finds_the_customer(sim: Stripe) -> None:
    customer = walk(sim, "customers")[123]
    found = walk(sim, "customers", {"email": customer["email"]})
    assert [c["id"] for c in found] == [customer["id"]]
    assert walk(sim, "customers", {"email": "nobody@example.com"}) == []


# -- API versions -------------------------------------------------------------------------------------


def test_default_version_has_the_classic_shapes_and_basil_moves_them(sim: Stripe) -> None:
    legacy = get(sim, "invoices", {"limit": 100}).json()
    assert legacy["data"][0]["object"] == "invoice"
    assert get(sim, "invoices").headers["Stripe-Version"] == "2024-06-20"
    renewal = next(i for i in legacy["data"] if i["subscription"])
    assert "parent" not in renewal and "paid" in renewal
    charge = get(sim, "charges", {"limit": 1}).json()["data"][0]
    sub = get(sim, "subscriptions", {"limit": 1}).json()["data"][0]
    assert "invoice" in charge and "current_period_end" in sub
    basil = {"Stripe-Version": "2025-03-31.basil"}
    new_invoice = get(sim, f"invoices/{renewal['id']}", version=basil["Stripe-Version"]).json()
    assert new_invoice["parent"]["subscription_details"]["subscription"] == renewal["subscription"]
    assert "subscription" not in new_invoice and "paid" not in new_invoice and "charge" not in new_invoice
    new_charge = get(sim, f"charges/{charge['id']}", version=basil["Stripe-Version"]).json()
    assert "invoice" not in new_charge
    new_sub = get(sim, f"subscriptions/{sub['id']}", version=basil["Stripe-Version"]).json()
    item = new_sub["items"]["data"][0]
    assert "current_period_end" not in new_sub and item["current_period_end"] == sub["current_period_end"]
    # The official library pins a Basil-era version, so it sees the new shapes unless told otherwise.
    pinned = client(sim).v1.charges.retrieve(charge["id"])
    assert "invoice" not in pinned
    classic = client(sim, stripe_version="2024-06-20").v1.charges.retrieve(charge["id"])
    assert classic.invoice == charge["invoice"]
    assert get(sim, "charges", version="yesterday").status_code == 400


@pytest.mark.parametrize("version", [None, "2025-03-31.basil"])
def test_list_pages_and_single_fetches_serve_identical_records(sim: Stripe, version: str | None) -> None:
    # List pages are spliced from cached JSON; single fetches are built as dicts: both must agree.
    sim.mutate("acme", "subscriptions", creates=1, updates=2)
    sim.mutate("acme", "invoices", creates=1, updates=2)
    for entity in ENTITIES:
        status = {"status": "all"} if entity == "subscriptions" else {}
        for record in get(sim, entity, {"limit": 6, **status}, version=version).json()["data"]:
            assert get(sim, f"{entity}/{record['id']}", version=version).json() == record


# -- rate limits --------------------------------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after_and_stripes_error(sim: Stripe) -> None:
    sim.rate_limits["test_read"] = (3, 1.0)
    sim.limiter.reset()
    responses = [get(sim, "customers", {"limit": 1}) for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    limited = responses[3]
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.json()["error"]["code"] == "rate_limit"
    assert limited.headers["Request-Id"].startswith("req_")
    assert get(sim, "customers", {"limit": 1}, key=SUMMIT).status_code == 200  # per account
    with pytest.raises(stripe.RateLimitError):
        client(sim).v1.customers.list()


def test_default_limits_are_stripes_test_and_live_mode_ones(sandbox: Sandbox) -> None:
    assert sandbox["stripe"].rate_limits["test_read"] == (25, 1.0)
    assert sandbox["stripe"].rate_limits["live_read"] == (100, 1.0)
    live = sandbox["stripe"].counts("harbor")["customers"]
    assert 0 < live < sandbox["stripe"].counts("summit")["customers"] < sandbox["stripe"].counts("acme")["customers"]


def test_live_mode_key_sees_live_objects(sim: Stripe) -> None:
    customer = get(sim, "customers", {"limit": 1}, key=HARBOR).json()["data"][0]
    assert customer["livemode"] is True
    # An id of one account is unknown to another.
    assert get(sim, f"customers/{customer['id']}").status_code == 404


# -- faults -------------------------------------------------------------------------------------------


def test_rate_limit_storm_then_recovery(sim: Stripe) -> None:
    sim.faults.update({"rate_limit_storm": 2, "retry_after_seconds": 3})
    first, second, third = (get(sim, "customers") for _ in range(3))
    assert first.status_code == second.status_code == 429 and first.headers["Retry-After"] == "3"
    assert third.status_code == 200


def test_server_errors_are_api_errors_the_official_client_retries(sim: Stripe) -> None:
    sim.faults.update({"server_errors": 1})
    failed = get(sim, "customers")
    assert failed.status_code in (500, 502, 503) and failed.json()["error"]["type"] == "api_error"
    sim.faults.update({"server_errors": 1})
    listed = client(sim, max_network_retries=2).v1.customers.list(params={"limit": 3})
    assert len(listed.data) == 3


def test_slow_response_exceeds_a_client_timeout(sim: Stripe) -> None:
    sim.faults.update({"slow_requests": 1, "slow_seconds": 1.0})
    with pytest.raises(requests.Timeout):
        requests.get(f"{api(sim)}/customers", headers=headers(), timeout=0.2)


def test_truncated_json_page(sim: Stripe) -> None:
    sim.faults.update({"truncated_pages": 2})
    response = get(sim, "invoices")
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)
    with pytest.raises(stripe.APIError):
        client(sim).v1.invoices.list()


def test_malformed_records_are_the_same_records_every_time(sim: Stripe) -> None:
    sim.faults.update({"malformed_rate": 0.1})
    pages = [get(sim, "customers", {"limit": 100}).json()["data"] for _ in range(2)]
    assert pages[0] == pages[1]
    broken = [c for c in pages[0] if "id" not in c or not isinstance(c["created"], int) or c["livemode"] is not False]
    assert 2 <= len(broken) <= 30


def test_records_inserted_between_pages_are_newer_than_the_walk(sim: Stripe) -> None:
    sim.faults.update({"insert_between_pages": 1})
    ids = [c.id for c in client(sim).v1.customers.list(params={"limit": 50}).auto_paging_iter()]
    assert len(ids) == len(set(ids)) == 300  # a newest-first walk never sees what arrives behind it
    assert sim.counts("acme")["customers"] == 300 + 6
    sim.faults.reset()
    newest = get(sim, "customers", {"limit": 6}).json()["data"]
    assert not {c["id"] for c in newest} & set(ids)


def test_a_record_deleted_mid_walk_still_works_as_a_cursor(sim: Stripe) -> None:
    page = get(sim, "customers", {"limit": 50}).json()
    cursor = page["data"][-1]["id"]
    deleted = requests.delete(f"{api(sim)}/customers/{cursor}", headers=headers(), timeout=10)
    assert deleted.json() == {"id": cursor, "object": "customer", "deleted": True}
    rest = walk(sim, "customers", {"starting_after": cursor})
    ids = [c["id"] for c in page["data"]] + [c["id"] for c in rest]
    assert len(ids) == len(set(ids)) == 300
    assert cursor not in {c["id"] for c in walk(sim, "customers")}
    assert get(sim, f"customers/{cursor}").json()["deleted"] is True
    # Deleting a customer cancels its subscriptions, as Stripe does.
    for sub in walk(sim, "subscriptions", {"customer": cursor, "status": "all"}):
        assert sub["status"] in ("canceled", "incomplete_expired")


def test_clock_mutations_create_update_and_delete(sim: Stripe) -> None:
    before = sim.counts("acme")
    result = sim.mutate("acme", "customers", creates=2, updates=3, deletes=1)
    assert sim.counts("acme")["customers"] == before["customers"] + 2 - 1
    newest = [c["id"] for c in get(sim, "customers", {"limit": 2}).json()["data"]]
    assert set(newest) == set(result["created"])
    for customer_id in result["deleted"]:
        assert get(sim, f"customers/{customer_id}").json()["deleted"] is True
    canceled = sim.mutate("acme", "subscriptions", deletes=1)["canceled"]
    assert get(sim, f"subscriptions/{canceled[0]}").json()["status"] == "canceled"
    sandbox_advance = requests.post(f"{sim.sandbox.base_url}/_sandbox/clock/advance", json={"seconds": 7200})
    assert sandbox_advance.status_code == 200
    assert sim.counts("acme")["invoices"] > before["invoices"]


def test_child_before_parent_then_parent_arrives_at_the_next_step(sim: Stripe) -> None:
    sim.faults.update({"child_before_parent": True})
    created = sim.mutate("acme", "subscriptions", creates=1)["created"][0]
    subscription = get(sim, f"subscriptions/{created}").json()
    assert get(sim, f"customers/{subscription['customer']}").status_code == 404
    sim.faults.reset()
    sim.mutate("acme", "charges", creates=1)
    assert get(sim, f"customers/{subscription['customer']}").status_code == 200


def test_timestamp_ties_give_runs_of_equal_created_times(sim: Stripe) -> None:
    sim.faults.update({"timestamp_ties": 150})
    page = get(sim, "customers", {"limit": 100}).json()["data"]
    assert len({c["created"] for c in page}) <= 2


# -- webhooks -----------------------------------------------------------------------------------------


def _independent_verify(body: bytes, header: str, secret: str, now: float, tolerance: int = 300) -> bool:
    # Written from Stripe's webhook docs, not from our code: t and every v1 from the header, HMAC-SHA256 of
    # "<t>.<raw body>" keyed with the endpoint secret, compared in constant time, t within the tolerance.
    items = [item.split("=", 1) for item in header.split(",")]
    timestamps = [int(v) for k, v in items if k == "t"]
    signatures = [v for k, v in items if k == "v1"]
    if len(timestamps) != 1 or not signatures or abs(now - timestamps[0]) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamps[0]}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, s) for s in signatures)


def _endpoint(sim: Stripe, url: str, events: list[str], key: str = ACME) -> tuple[str, str]:
    created = client(sim, key).v1.webhook_endpoints.create(params={"url": url, "enabled_events": events})
    assert created.secret.startswith("whsec_") and created.status == "enabled"
    return created.id, created.secret


def test_webhooks_are_signed_with_real_time_and_verify_both_ways(sim: Stripe) -> None:
    with WebhookSink() as sink:
        _, secret = _endpoint(sim, sink.url, ["customer.updated"])
        updated = sim.mutate("acme", "customers", updates=1)["updated"]
        assert sink.wait_for(1)
        body, received = sink.received[0]
        header = received["stripe-signature"]
        assert _independent_verify(body, header, secret, time.time())
        event = stripe.Webhook.construct_event(body, header, secret)
        assert event.type == "customer.updated" and event.object == "event" and event.id.startswith("evt_")
        assert event.data.object.id == updated[0] and event.data.previous_attributes
        assert event.api_version == "2024-06-20" and event.livemode is False and event.pending_webhooks == 1
        assert "request" in event
        # The same body signed five minutes ago, or a tampered body, fails both verifiers.
        stale_t = int(time.time()) - 301
        stale_mac = hmac.new(secret.encode(), f"{stale_t}.".encode() + body, hashlib.sha256).hexdigest()
        stale = f"t={stale_t},v1={stale_mac}"
        assert not _independent_verify(body, stale, secret, time.time())
        with pytest.raises(stripe.SignatureVerificationError):
            stripe.Webhook.construct_event(body, stale, secret)
        with pytest.raises(stripe.SignatureVerificationError):
            stripe.Webhook.construct_event(body.replace(b"customer", b"kustomer"), header, secret)


def test_webhooks_are_redelivered_until_acknowledged(sim: Stripe) -> None:
    with WebhookSink(statuses=[500, 503]) as sink:
        _, secret = _endpoint(sim, sink.url, ["invoice.created"])
        sim.mutate("acme", "invoices", creates=1)
        assert sink.wait_for(3)  # two failures, then the redelivery that succeeds
        bodies = {body for body, _ in sink.received}
        assert len(bodies) == 1  # the same event each time, freshly signed
        for body, received in sink.received:
            assert _independent_verify(body, received["stripe-signature"], secret, time.time())
        event = json.loads(sink.received[0][0])
        assert event["type"] == "invoice.created" and event["data"]["object"]["object"] == "invoice"


def test_test_mode_gives_up_after_three_retries_and_live_mode_keeps_retrying(sim: Stripe) -> None:
    with WebhookSink(statuses=[500] * 10) as sink:
        _endpoint(sim, sink.url, ["customer.updated"])
        sim.mutate("acme", "customers", updates=1)
        assert sink.wait_for(4)
        assert sim.sandbox.emitter.wait_idle()
        assert len(sink.received) == 4  # the first attempt and Stripe's three test-mode retries
    with WebhookSink(statuses=[500, 500, 500, 500]) as sink:
        _, secret = _endpoint(sim, sink.url, ["customer.updated"], key=HARBOR)
        sim.mutate("harbor", "customers", updates=1)
        assert sink.wait_for(5)  # a fourth retry: live mode backs off for up to three days
        event = stripe.Webhook.construct_event(sink.received[-1][0], sink.received[-1][1]["stripe-signature"], secret)
        assert event.livemode is True


def test_webhook_endpoints_filter_events_and_can_be_listed_and_deleted(sim: Stripe) -> None:
    with WebhookSink() as sink:
        endpoint_id, _ = _endpoint(sim, sink.url, ["customer.subscription.deleted"])
        listed = client(sim).v1.webhook_endpoints.list()
        assert [e.id for e in listed.data] == [endpoint_id] and "secret" not in listed.data[0]
        sim.mutate("acme", "customers", updates=2)
        sim.mutate("acme", "subscriptions", deletes=1)
        assert sink.wait_for(1)
        sim.sandbox.emitter.wait_idle()
        assert {json.loads(body)["type"] for body, _ in sink.received} == {"customer.subscription.deleted"}
        assert client(sim).v1.webhook_endpoints.delete(endpoint_id).deleted is True
    bad = requests.post(
        f"{api(sim)}/webhook_endpoints",
        headers=headers(),
        data={"url": "http://127.0.0.1:9/x", "enabled_events[]": "nonsense.event"},
        timeout=10,
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "enabled_events[0]"


def test_duplicate_and_out_of_order_webhooks(sim: Stripe) -> None:
    sim.faults.update({"webhook_duplicates": 1})
    with WebhookSink() as sink:
        endpoint_id, _ = _endpoint(sim, sink.url, ["customer.updated"])
        sim.mutate("acme", "customers", updates=1)
        assert sink.wait_for(2)
        assert sink.received[0][0] == sink.received[1][0]
    client(sim).v1.webhook_endpoints.delete(endpoint_id)
    sim.faults.reset()
    sim.faults.update({"webhook_out_of_order": True})
    with WebhookSink() as sink:
        _endpoint(sim, sink.url, ["customer.updated"])
        first = sim.mutate("acme", "customers", updates=1)["updated"]
        second = sim.mutate("acme", "customers", updates=1)["updated"]
        assert sink.wait_for(2)
        assert [json.loads(body)["data"]["object"]["id"] for body, _ in sink.received] == second + first


def test_events_api_lists_what_happened(sim: Stripe) -> None:
    updated = sim.mutate("acme", "customers", updates=2)["updated"]
    events = get(sim, "events", {"type": "customer.updated"}).json()
    assert [e["data"]["object"]["id"] for e in events["data"]] == list(reversed(updated))
    assert all(e["data"]["previous_attributes"] for e in events["data"])
    one = get(sim, f"events/{events['data'][0]['id']}").json()
    assert one == events["data"][0]
    every = client(sim).v1.events.list(params={"types": ["customer.updated", "customer.created"]})
    assert len(every.data) == 2


# -- determinism and the admin API ---------------------------------------------------------------------


def test_same_seed_gives_the_same_data_and_another_seed_differs() -> None:
    def snapshot(seed: int) -> list[dict]:
        with SandboxServer(Sandbox(seed=seed, scale=50, sources=["stripe"])) as server:
            simulator = server.sandbox["stripe"]
            assert isinstance(simulator, Stripe)
            return [r for entity in ENTITIES for r in walk(simulator, entity, {"limit": 100})]

    assert snapshot(7) == snapshot(7)
    assert snapshot(7) != snapshot(8)


def test_admin_api_counts_mutates_and_lists_credentials(sim: Stripe) -> None:
    base = sim.sandbox.base_url
    counts = requests.get(f"{base}/_sandbox/stripe/counts", params={"account": "acme"}, timeout=10).json()
    assert counts == {"customers": 300, "subscriptions": 180, "invoices": 540, "charges": 486}
    mutated = requests.post(
        f"{base}/_sandbox/stripe/mutate",
        json={"account": "summit", "entity": "charges", "creates": 2},
        timeout=10,
    ).json()
    assert len(mutated["created"]) == 2 and all(i.startswith("ch_") for i in mutated["created"])
    info = requests.get(f"{base}/_sandbox/info", timeout=10).json()["sources"]["stripe"]
    assert info["credentials"]["accounts"]["acme"] == ACME
    assert info["credentials"]["api_base"] == sim.base_url
