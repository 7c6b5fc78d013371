"""reZEN webhooks as the sandbox sends them: the signature verifies, a tampered one does not, and an event names
the records the apply job fetches again."""

from __future__ import annotations

import json

import requests

from sync_pipelines.defs.rezen import webhooks
from sync_pipelines.lib.integration.declaration import Change
from sync_pipelines_tests.test_defs.rezen.conftest import RezenWorld
from sync_pipelines_tests.test_sandbox.webhook_sink import WebhookSink


def subscribe(rezen: RezenWorld, url: str) -> str:
    key = rezen.sim.credentials()["accounts"]["keystone"]["api_key"]
    response = requests.post(f"{rezen.url}/arrakis/api/v1/webhooks", json={"url": url}, headers={"X-API-KEY": key})
    assert response.status_code == 201
    return response.json()["secret"]


def test_the_sandboxs_signed_webhook_verifies_and_a_tampered_one_does_not(source: RezenWorld) -> None:
    with WebhookSink() as sink:
        secret = subscribe(source, sink.url)
        updated = source.sim.mutate("keystone", "transactions", updates=1)["updated"][0]
        assert sink.wait_for(1)
        body, headers = sink.received[0]
    assert webhooks.verify(body, headers, secret)
    assert webhooks.verify(body, {k.upper(): v for k, v in headers.items()}, secret)  # header names: any case
    tampered = body.replace(updated.encode(), updated[:-1].encode() + b"0")
    assert tampered != body and not webhooks.verify(tampered, headers, secret)
    assert not webhooks.verify(body + b" ", headers, secret)  # the exact bytes, not the parsed JSON
    assert not webhooks.verify(body, headers, secret + "x")
    assert not webhooks.verify(body, {k: v for k, v in headers.items() if k != "x-real-signature"}, secret)
    assert not webhooks.verify(body, {**headers, "x-real-signature": headers["x-real-signature"][7:]}, secret)
    assert not webhooks.verify(body, headers, "")

    payload = json.loads(body)
    event_id, event_type, key = webhooks.parse(payload, body)
    assert (event_id, event_type) == (headers["x-real-event-id"], "TRANSACTION_UPDATED")
    assert key == f"TRANSACTION_UPDATED:{updated}"
    assert webhooks.changes(event_type, payload) == [Change("transactions", (updated,), deleted=False)]
    # The apply job fetches what the event names: the record as the source has it now.
    fetched = source.client().fetch_ids("transactions", [updated])
    assert [r["id"] for r in fetched] == [updated]


def test_every_event_type_names_its_entities_and_deletes_only_on_deleted() -> None:
    agent = webhooks.changes("AGENT_DELETED", {"eventType": "AGENT_DELETED", "agentId": "a1"})
    assert {c.entity for c in agent} == {"agents", "network_downline", "network_frontline"}
    assert all(c.deleted and c.ids == ("a1",) for c in agent)
    assert webhooks.changes("LISTING_CREATED", {"transactionId": "l1"}) == [Change("listings", ("l1",))]
    assert webhooks.changes("REVSHARE_CONTRIBUTION_UPDATED", {"contributionId": "c1"}) == [
        Change("revshare_contributions", ("c1",))
    ]
    assert webhooks.changes("TEAM_UPDATED", {"teamId": "t1"})[0].entity == "teams"
    assert webhooks.changes("TRANSACTION_UPDATED", {}) == []  # no id: nothing to fetch
    assert webhooks.changes("SOMETHING_ELSE", {"transactionId": "x"}) == []
    assert webhooks.changed_records("TRANSACTION_DELETED", {"transactionId": "t9"}) == [
        ("transactions", ["t9"], ["t9"])
    ]
    no_id = b'{"eventType": "TEAM_CREATED"}'
    assert webhooks.parse(json.loads(no_id), no_id)[0].startswith("sha256:")  # keyed by the body's hash
