"""Stripe webhooks through the real receiver, sensor and apply job: signed as the official library signs them,
refused with 401 and stored nowhere when stale or tampered, stored once per event id, and applied so that each object
ends at its newest version whatever order its events arrive in."""

from __future__ import annotations

import time

import dagster as dg
import orjson
import pytest
import requests
import stripe
from sqlalchemy.engine import URL

from sync_pipelines.defs.stripe import webhooks
from sync_pipelines.defs.stripe.resources import sandbox_resource
from sync_pipelines.lib import accounts
from sync_pipelines.lib.resources import WarehouseResource
from sync_pipelines.webhooks_app import ReceiverServer
from sync_pipelines_tests.test_defs.stripe.conftest import StripeWorld

SECRET = "whsec_testOnlyNotASandboxDefault0123456789"
BODY = b'{"id":"evt_1","object":"event","type":"customer.updated","data":{"object":{"id":"cus_1","object":"customer"}}}'


def _sign(body: bytes, secret: str = SECRET, timestamp: int | None = None) -> str:
    # The official library's own test helper (stripe-python 16: WebhookSignature.generate_signature_header).
    return stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp)


def test_verify_takes_any_v1_within_five_minutes_and_nothing_else() -> None:
    now = int(time.time())
    good = _sign(BODY)
    assert webhooks.verify(BODY, {"Stripe-Signature": good}, SECRET)
    mac = good.split("v1=")[1]
    rolled = f"t={now},v1={'0' * 64},v1={mac},v0=ignored"  # two v1 while a secret is rolled: either may match
    assert webhooks.verify(BODY, {"stripe-signature": rolled}, SECRET)
    assert not webhooks.verify(BODY, {"Stripe-Signature": good}, "whsec_other")
    assert not webhooks.verify(BODY + b" ", {"Stripe-Signature": good}, SECRET)
    assert not webhooks.verify(BODY, {"Stripe-Signature": f"v1={mac}"}, SECRET)
    assert not webhooks.verify(BODY, {"Stripe-Signature": f"t=abc,v1={mac}"}, SECRET)
    assert not webhooks.verify(BODY, {"Stripe-Signature": f"t={now},v0={mac}"}, SECRET)
    assert not webhooks.verify(BODY, {}, SECRET) and not webhooks.verify(BODY, {"Stripe-Signature": good}, "")
    stale = _sign(BODY, timestamp=now - 301)
    assert not webhooks.verify(BODY, {"Stripe-Signature": stale}, SECRET)
    assert webhooks.verify(BODY, {"Stripe-Signature": stale}, SECRET, now=now - 290)
    # What we accept, the official library accepts too.
    event = stripe.Webhook.construct_event(BODY.decode(), good, SECRET)
    assert event.id == "evt_1"


def test_a_webhook_signed_by_the_official_library_is_accepted_and_a_stale_or_tampered_one_is_401_and_kept_nowhere(
    world: StripeWorld, database_url: URL
) -> None:
    accounts.upsert_account(world.engine, "stripe", "acme", {"api_key": world.key(), "webhook_secret": SECRET})
    with ReceiverServer(database_url) as receiver:
        url = f"{receiver.url}/webhooks/stripe/acme"

        def post(body: bytes, signature: str) -> int:
            headers = {"Content-Type": "application/json", "Stripe-Signature": signature}
            return requests.post(url, data=body, headers=headers, timeout=10).status_code

        assert post(BODY, _sign(BODY, timestamp=int(time.time()) - 301)) == 401
        tampered = BODY.replace(b"cus_1", b"cus_2")
        assert post(tampered, _sign(BODY)) == 401
        assert world.scalar("SELECT count(*) FROM bridge.webhook_events") == 0
        assert post(BODY, _sign(BODY)) == 202
        assert post(BODY, _sign(BODY)) == 200  # a redelivery: the same event id, stored once
    assert world.scalar("SELECT count(*) FROM bridge.webhook_events WHERE integration = 'stripe'") == 1


def _apply_pending(world: StripeWorld, instance: dg.DagsterInstance) -> None:
    from sync_pipelines.definitions import defs

    sensor = defs.resolve_sensor_def("stripe_webhook_events")
    result = sensor(dg.build_sensor_context(instance=instance, resources={"warehouse": WarehouseResource()}))
    (run,) = result.run_requests
    outcome = defs.resolve_job_def("stripe_webhook_apply").execute_in_process(
        run_config=run.run_config,
        instance=instance,
        resources={"stripe": sandbox_resource(world.root), "warehouse": WarehouseResource()},
        tags=run.tags,
    )
    assert outcome.success


@pytest.mark.parametrize("entity", ["customers", "invoices"])
def test_duplicate_and_out_of_order_events_leave_each_object_at_its_newest_version(
    world: StripeWorld, database_url: URL, dagster_instance: dg.DagsterInstance, entity: str
) -> None:
    world.backfill(entity)
    accounts.upsert_account(world.engine, "stripe", "acme", {"api_key": world.key(), "webhook_secret": SECRET})
    record = str(world.sim.mutate("acme", entity, updates=1)["updated"][0])
    for _ in range(2):
        world.sandbox.clock.advance(60)
        world.sim.mutate("acme", entity, updates=1, update_ids=[record])
    official = stripe.StripeClient(world.key(), base_addresses={"api": f"{world.root}/stripe"})
    listed = requests.get(f"{world.root}/stripe/v1/events", params={"limit": 100},
                          headers={"Authorization": f"Bearer {world.key()}"}, timeout=10).json()["data"]  # fmt: skip
    # The bodies as Stripe sends them (the library's objects turn decimal strings into Decimals).
    events = [orjson.dumps(e) for e in listed if e["data"]["object"]["id"] == record]
    assert len(events) >= 3  # newest first
    newest, older = events[0], events[1:]
    with ReceiverServer(database_url) as receiver:
        url = f"{receiver.url}/webhooks/stripe/acme"

        def deliver(body: bytes, expected: int) -> None:
            headers = {"Content-Type": "application/json", "Stripe-Signature": _sign(body)}
            assert requests.post(url, data=body, headers=headers, timeout=10).status_code == expected

        deliver(newest, 202)
        deliver(newest, 200)  # a duplicate
        _apply_pending(world, dagster_instance)
        applied = world.row(entity, record)
        for event in older:  # the older events arrive last, twice each
            deliver(event, 202)
            deliver(event, 200)
        _apply_pending(world, dagster_instance)
    current = official.v1.invoices.retrieve(record) if entity == "invoices" else official.v1.customers.retrieve(record)
    row = world.row(entity, record)
    assert row is not None and applied is not None and row._row_hash == applied._row_hash
    if entity == "customers":
        assert (row.name, row.email) == (current["name"], (current["email"] or "").strip().lower() or None)
    else:
        assert (row.status, row.amount_due, row.amount_paid) == (
            current["status"],
            current["amount_due"],
            current["amount_paid"],
        )
    assert world.scalar("SELECT count(*) FROM bridge.webhook_events") == len(events)
    assert world.scalar("SELECT count(*) FROM bridge.webhook_events WHERE status <> 'completed'") == 0


def test_the_sandbox_recipe_keeps_one_endpoint_per_target_and_its_events_reach_the_receiver_verified(
    world: StripeWorld, database_url: URL
) -> None:
    from sync_pipelines.sandbox import subscriptions

    with ReceiverServer(database_url) as receiver:
        first = subscriptions.subscribe(world.sim, receiver.url, "acme")
        again = subscriptions.subscribe(world.sim, receiver.url, "acme")
        assert first and again and first != again  # a secret is shown once: subscribing again makes a new endpoint
        auth = {"Authorization": f"Bearer {world.key()}"}
        listed = requests.get(f"{world.sim.base_url}/v1/webhook_endpoints", headers=auth, timeout=10).json()["data"]
        assert [e["url"] for e in listed] == [f"{receiver.url}/webhooks/stripe/acme"]
        accounts.upsert_account(world.engine, "stripe", "acme", {"api_key": world.key(), **again})
        world.sim.mutate("acme", "customers", updates=2)
        deadline = time.monotonic() + 30
        while world.scalar("SELECT count(*) FROM bridge.webhook_events WHERE integration = 'stripe'") < 2:
            assert time.monotonic() < deadline, "the sandbox's events never reached the receiver"
            time.sleep(0.2)
