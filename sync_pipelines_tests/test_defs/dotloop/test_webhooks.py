"""DotLoop webhooks as the sandbox sends them: the signature verifies and a tampered one does not; each event type
names the records to fetch again; and through the receiver and the kit's apply job a LOOP_MERGED soft-deletes the
old loop and points it at the survivor, whose participant list (the moved participants) is read again."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import dagster as dg
import requests
from sqlalchemy.engine import URL

from sync_pipelines.defs.dotloop import webhooks
from sync_pipelines.defs.dotloop.client import LOOP_PREFIX
from sync_pipelines.defs.dotloop.declaration import DOTLOOP
from sync_pipelines.lib import accounts
from sync_pipelines.lib.integration.declaration import Change
from sync_pipelines.lib.integration.webhook_jobs import webhook_definitions
from sync_pipelines.lib.resources import WarehouseResource
from sync_pipelines.sandbox.dotloop import EVENT_TYPES
from sync_pipelines.webhooks_app import ReceiverServer
from sync_pipelines_tests.test_defs.dotloop.conftest import DotLoopWorld
from sync_pipelines_tests.test_sandbox.webhook_sink import WebhookSink


def subscribe(world: DotLoopWorld, name: str, url: str, signing_key: str) -> dict[str, Any]:
    """A USER subscription to every event, as an operator makes one with the account's token."""
    token = world.secrets(name)["access_token"]
    response = requests.post(
        f"{world.resource().api_url}/subscription",
        json={"targetType": "USER", "targetId": world.sim.users[name].account_id, "url": url,
              "eventTypes": list(EVENT_TYPES), "signingKey": signing_key, "externalId": name},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )  # fmt: skip
    assert response.status_code == 201, response.text
    return response.json()["data"]


def on_loop(world: DotLoopWorld, loop_id: str) -> list[str]:
    query = "SELECT source_id FROM core.dotloop_participants WHERE loop_source_id = :l AND deleted_at IS NULL"
    return [p for (p,) in world.rows(query, l=loop_id)]


def test_the_sandboxs_signed_webhook_verifies_and_a_tampered_one_does_not(world: DotLoopWorld) -> None:
    with WebhookSink() as sink:
        subscribe(world, "acme", sink.url, "s3cret-key")
        updated = str(world.sim.mutate("acme", "loops", updates=1)["updated"][0])
        assert sink.wait_for(1)
        body, headers = sink.received[0]
    assert webhooks.verify(body, headers, "s3cret-key")
    assert webhooks.verify(body, {k.upper(): v.upper() for k, v in headers.items()}, "s3cret-key")  # any case
    assert headers["x-dotloop-signature"] == webhooks.signature(body, "s3cret-key")
    tampered = body.replace(updated.encode(), updated[:-1].encode() + b"9")
    assert tampered != body and not webhooks.verify(tampered, headers, "s3cret-key")
    assert not webhooks.verify(body + b" ", headers, "s3cret-key")  # the exact bytes, not the parsed JSON
    assert not webhooks.verify(body, headers, "another-key")
    assert not webhooks.verify(body, {k: v for k, v in headers.items() if k != "x-dotloop-signature"}, "s3cret-key")
    assert not webhooks.verify(body, headers, "")
    # The timestamp header is not signed: changing it changes nothing.
    assert webhooks.verify(body, {**headers, "x-dotloop-timestamp": "0"}, "s3cret-key")

    payload = json.loads(body)
    assert webhooks.identify(payload, body) == (payload["eventId"], "LOOP_UPDATED", f"LOOP_UPDATED:{updated}")
    assert webhooks.changes("LOOP_UPDATED", payload) == [
        Change("loops", (updated,)),
        Change("participants", (f"{LOOP_PREFIX}{updated}",)),
    ]


def test_every_event_type_names_its_records() -> None:
    merged = webhooks.changes("LOOP_MERGED", {"event": {"id": 7, "fromId": 5, "toId": 7, "profileId": 1}})
    assert merged == [
        Change("loops", ("5",), deleted=True),
        Change("loops", ("7",)),
        Change("participants", (f"{LOOP_PREFIX}7",)),
    ]
    removed = webhooks.changes("LOOP_PARTICIPANT_DELETED", {"event": {"id": 9, "loopId": 7}})
    assert removed == [
        Change("participants", (f"{LOOP_PREFIX}7",)),
        Change("loops", ("7",)),
        Change("participants", ("9",), deleted=True),
    ]
    assert webhooks.changes("LOOP_PARTICIPANT_CREATED", {"event": {"id": 9, "loopId": 7}})[0] == Change(
        "participants", (f"{LOOP_PREFIX}7",)
    )
    assert webhooks.changes("CONTACT_DELETED", {"event": {"id": 3}}) == [Change("contacts", ("3",), deleted=True)]
    assert webhooks.changes("CONTACT_CREATED", {"event": {"id": 3}}) == [Change("contacts", ("3",))]
    assert webhooks.changes("PROFILE_UPDATED", {"profileId": 4, "event": {}}) == [Change("profiles", ("4",))]
    assert webhooks.changes("LOOP_UPDATED", {"event": {}}) == []  # no id: nothing to fetch
    assert webhooks.changes("USER_ADDED_TO_PROFILE", {"event": {"id": 1}}) == []
    assert webhooks.changes(None, {"eventType": "CONTACT_UPDATED", "event": {"id": 2}}) == [Change("contacts", ("2",))]
    no_id = b'{"eventType": "LOOP_CREATED"}'
    assert webhooks.identify(json.loads(no_id), no_id)[0].startswith("sha256:")  # keyed by the body's hash


def test_a_merge_and_a_removed_participant_arrive_by_webhook_and_are_applied(
    world: DotLoopWorld, database_url: URL, dagster_instance: dg.DagsterInstance
) -> None:
    for entity in DOTLOOP.load_order:
        world.backfill("acme", entity)
    profile = world.sim.users["acme"].default_profile
    with ReceiverServer(database_url) as receiver:
        subscribe(world, "acme", f"{receiver.url}/webhooks/dotloop/acme", "merge-key")
        accounts.upsert_account(
            world.engine, "dotloop", "acme", {**world.secrets("acme"), "webhook_secret": "merge-key"}
        )
        old, survivor = (str(i) for i in world.sim.mutate("acme", "loops", deletes=1)["merged_into"][0])
        # The merged loop's participants moved to the survivor (the warehouse still has them on the old loop).
        moved = {str(p) for p in world.sim.participant_ids(profile, int(survivor))} & set(on_loop(world, old))
        assert moved
        removed = str(world.sim.mutate("acme", "participants", deletes=1)["deleted"][0])
        deadline = time.monotonic() + 20
        while world.scalar("SELECT count(*) FROM bridge.webhook_events") < 2:
            assert time.monotonic() < deadline, "the signed webhooks never reached the queue"
            time.sleep(0.05)
    definitions = webhook_definitions(DOTLOOP)
    result = definitions.sensor(
        dg.build_sensor_context(instance=dagster_instance, resources={"warehouse": WarehouseResource()})
    )
    (run,) = result.run_requests  # type: ignore[union-attr]
    outcome = definitions.job.execute_in_process(
        run_config=run.run_config,
        instance=dagster_instance,
        resources={"dotloop": world.resource(), "warehouse": WarehouseResource()},
        tags=run.tags,
    )
    assert outcome.success
    assert world.scalar("SELECT count(*) FROM bridge.webhook_events WHERE status <> 'completed'") == 0
    row = world.rows(
        "SELECT merged_into_source_id, deleted_at IS NOT NULL FROM core.dotloop_loops WHERE source_id = :s", s=old
    )
    assert row == [(survivor, True)]
    audit = "SELECT new_value ->> 'merged_into_source_id' FROM bridge.audit_log WHERE source_id = :s AND action = :a"
    assert world.scalar(audit, s=old, a="DELETE") == survivor
    assert moved <= set(on_loop(world, survivor)) and removed not in world.core_ids("acme", "participants")
    assert removed in world.core_ids("acme", "participants", live=False)
    assert world.core_ids("acme", "loops") == world.expected_ids("acme", "loops")
    assert world.core_ids("acme", "participants") == world.expected_ids("acme", "participants")


def test_the_signature_is_hex_hmac_sha1_of_the_raw_body_with_the_signing_key() -> None:
    body = b'{"eventId":"e1","eventType":"LOOP_UPDATED"}'
    sha1 = hmac.new(b"k", body, hashlib.sha1).hexdigest()
    sha256 = hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert webhooks.verify(body, {"X-DOTLOOP-SIGNATURE": sha1}, "k")
    assert webhooks.verify(body, {"X-DOTLOOP-SIGNATURE": sha1.upper()}, "k")
    assert not webhooks.verify(body, {"X-DOTLOOP-SIGNATURE": sha256}, "k")
    assert not webhooks.verify(body, {"X-DOTLOOP-SIGNATURE": sha1}, "")
