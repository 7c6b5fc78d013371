"""Lofty webhooks through the real receiver and the kit's apply job: a batch is accepted as one request and each of
its events queued on its own row, a redelivered batch is stored once, the sensor applies them (a trashed lead is
soft-deleted, changed leads re-read); a batch without the callback URL's token, with a wrong one, or with another
list's, is refused with 401 and leaves no row."""

from __future__ import annotations

import time

import dagster as dg
import orjson
import requests
from sqlalchemy.engine import URL

from sync_pipelines.defs.lofty import webhooks
from sync_pipelines.defs.lofty.declaration import LOFTY
from sync_pipelines.lib.integration.webhook_jobs import webhook_definitions
from sync_pipelines.lib.resources import WarehouseResource
from sync_pipelines.webhooks_app import ReceiverServer
from sync_pipelines_tests.test_defs.lofty.conftest import LoftyWorld
from sync_pipelines_tests.test_sandbox.webhook_sink import WebhookSink


def subscribe(world: LoftyWorld, receiver: str, list_id: int, name: str = "acme") -> None:
    key = world.sim.credentials()["accounts"][name]
    response = requests.post(
        f"{world.sim.base_url}/v1.0/webhook",
        json={"listId": list_id, "callbackUrl": webhooks.callback_url(receiver, name, world.secret(name), list_id)},
        headers={"Authorization": f"token {key}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text


def queued(world: LoftyWorld) -> int:
    return int(world.scalar("SELECT count(*) FROM bridge.webhook_events WHERE integration = 'lofty'"))


def wait_for(world: LoftyWorld, rows: int) -> None:
    deadline = time.monotonic() + 20
    while queued(world) < rows:
        assert time.monotonic() < deadline, f"{queued(world)} of {rows} events queued"
        time.sleep(0.05)


def apply(world: LoftyWorld, instance: dg.DagsterInstance) -> None:
    hooks = webhook_definitions(LOFTY)
    result = hooks.sensor(dg.build_sensor_context(instance=instance, resources={"warehouse": WarehouseResource()}))
    (run,) = result.run_requests
    outcome = hooks.job.execute_in_process(
        run_config=run.run_config, instance=instance, tags=run.tags,
        resources={"lofty": world.resource(), "warehouse": WarehouseResource()},
    )  # fmt: skip
    assert outcome.success


def test_a_batch_is_one_request_each_event_is_queued_and_the_sensor_applies_them(
    world: LoftyWorld, database_url: URL, dagster_instance: dg.DagsterInstance
) -> None:
    world.backfill("leads")
    with ReceiverServer(database_url) as receiver:
        subscribe(world, receiver.url, webhooks.LEAD_INFO)
        world.sandbox.clock.advance(60)
        changed = world.sim.mutate("acme", "leads", creates=2, updates=3, deletes=1)
        wait_for(world, 6)
        world.sandbox.emitter.wait_idle()
        deliveries = [d for d in world.sandbox.emitter.log if d.source == "lofty"]
        assert len(deliveries) == 1 and deliveries[0].status == 202  # six events, one POST
        assert queued(world) == 6
        types = world.scalar("SELECT array_agg(event_type ORDER BY event_type) FROM bridge.webhook_events")
        assert types == sorted(["lead_info:CREATE"] * 2 + ["lead_info:UPDATE"] * 3 + ["lead_info:DELETE"])
    apply(world, dagster_instance)
    assert world.scalar("SELECT count(*) FROM bridge.webhook_events WHERE status <> 'completed'") == 0
    live = world.core_ids("leads")
    assert {str(i) for i in changed["created"]} <= live
    assert str(changed["deleted"][0]) not in live
    assert live == world.live_leads()
    for lead in changed["updated"]:
        now = world.sim.teams["acme"].leads.get(lead)
        assert now is not None
        stage = world.scalar("SELECT stage FROM core.lofty_leads WHERE source_id = :s", s=str(lead))
        assert stage == now["stage"]


def test_a_redelivered_batch_is_stored_once(world: LoftyWorld, database_url: URL) -> None:
    with WebhookSink() as sink:
        key = world.sim.credentials()["accounts"]["acme"]
        requests.post(
            f"{world.sim.base_url}/v1.0/webhook", json={"listId": 2, "callbackUrl": sink.url},
            headers={"Authorization": f"token {key}"}, timeout=10,
        )  # fmt: skip
        world.sim.mutate("acme", "leads", updates=4)
        assert sink.wait_for(1)
        body = sink.received[0][0]
    url = webhooks.callback_url("", "acme", world.secret(), 2)
    with ReceiverServer(database_url) as receiver:
        first = requests.post(receiver.url + url, data=body, headers={"Content-Type": "application/json"}, timeout=10)
        again = requests.post(receiver.url + url, data=body, headers={"Content-Type": "application/json"}, timeout=10)
    assert (first.status_code, first.json()["new"]) == (202, 4)
    assert (again.status_code, again.json()["new"]) == (200, 0)
    assert queued(world) == 4


def test_a_batch_without_the_right_token_is_refused_and_kept_nowhere(world: LoftyWorld, database_url: URL) -> None:
    event = {"leadId": 651_000_000_000_001, "eventType": "DELETE", "eventTime": "2026-11-01T00:00:00Z"}
    batch = {"teamId": 13_233_324, "listId": 2, "subscribeId": 1, "vendorId": 10_234, "batchId": "forged",
             "events": [event]}  # fmt: skip
    body = orjson.dumps(batch)
    secret = world.secret()
    forged = {
        "no token": "/webhooks/lofty/acme",
        "wrong token": "/webhooks/lofty/acme?token=" + "0" * 64,
        "another list's token": webhooks.callback_url("", "acme", secret, webhooks.PIPELINE_CHANGE),
        "another secret's token": webhooks.callback_url("", "acme", "not-the-secret", webhooks.LEAD_INFO),
        "a signature header instead": "/webhooks/lofty/acme",
    }
    with ReceiverServer(database_url) as receiver:
        for reason, path in forged.items():
            headers = {"Content-Type": "application/json", "X-Lofty-Signature": "0" * 64}
            response = requests.post(receiver.url + path, data=body, headers=headers, timeout=10)
            assert response.status_code == 401, reason
        assert queued(world) == 0
        # The same batch with its list's token is taken: the refusals were the token's doing.
        good = requests.post(receiver.url + webhooks.callback_url("", "acme", secret, webhooks.LEAD_INFO), data=body,
                             headers={"Content-Type": "application/json"}, timeout=10)  # fmt: skip
        assert good.status_code == 202 and queued(world) == 1


def test_each_list_names_what_to_fetch_again() -> None:
    lead = {"teamId": 1, "batchId": "b", "index": 0}
    assert webhooks.changes(None, {**lead, "listId": 2, "event": {"leadId": 7, "eventType": "DELETE"}}) == [
        webhooks.Change("leads", ("7",), deleted=True),
        webhooks.Change("tags", ("7",)),
    ]
    assert webhooks.changes(None, {**lead, "listId": 12, "event": {"leadId": 7}}) == [webhooks.Change("leads", ("7",))]
    assert webhooks.changes(None, {**lead, "listId": 6, "event": {"leadId": 7, "activityId": 700}}) == [
        webhooks.Change("leads", ("7",)),
        webhooks.Change("activities", ("7",)),
    ]
    assert webhooks.changes(None, {**lead, "listId": 1, "event": {"memberUserId": 9}}) == [
        webhooks.Change("users", ("9",))
    ]
    split = webhooks.split({"teamId": 1, "listId": 2, "subscribeId": 3, "batchId": "b", "events": [{"leadId": 1}] * 2})
    assert [webhooks.identify(e, b"")[0] for e in split] == ["b:0", "b:1"]


def test_the_sandbox_recipe_subscribes_every_list_with_its_token_and_again_adds_nothing(
    world: LoftyWorld, database_url: URL
) -> None:
    from sync_pipelines.lib import accounts
    from sync_pipelines.sandbox import subscriptions

    with ReceiverServer(database_url) as receiver:
        secrets = subscriptions.subscribe(world.sim, receiver.url, "acme")
        assert secrets is not None and subscriptions.subscribe(world.sim, receiver.url, "acme") == secrets
        assert len(world.sim.subscriptions) == len(webhooks.LISTS)
        accounts.upsert_account(world.engine, "lofty", "acme", {**accounts.secrets_for(world.engine,
                                world.accounts["acme"].id), **secrets})  # fmt: skip
        world.sim.mutate("acme", "leads", updates=2)
        wait_for(world, 2)
