"""The webhook receiver over real HTTP against real Postgres: what it accepts, what it refuses, what it stores."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
from collections.abc import Iterator

import orjson
import pytest
import requests
import sqlalchemy as sa
from sqlalchemy.engine import URL

from sync_pipelines.lib import accounts, db
from sync_pipelines.webhooks_app import ReceiverServer

FUB_KEY = "fub_sandbox_system_key"  # the sandbox system key: what the receiver uses without SYNC_FUB_SYSTEM_KEY
STRIPE_SECRET = "whsec_test_receiver"


def fub_sign(body: bytes, key: str = FUB_KEY) -> str:
    # Written from FUB's docs, independently of the product code: hash_hmac('sha256', base64(body), key).
    return hmac.new(key.encode(), base64.b64encode(body), hashlib.sha256).hexdigest()


def stripe_sign(body: bytes, secret: str = STRIPE_SECRET, t: int | None = None) -> str:
    t = int(time.time()) if t is None else t
    return f"t={t},v1={hmac.new(secret.encode(), f'{t}.'.encode() + body, hashlib.sha256).hexdigest()}"


def fub_body(event_id: str = "152d60c0-79da-4018-a9af-28aec8a71c94", ids: tuple[int, ...] = (12, 13)) -> bytes:
    uri = "https://api.followupboss.com/v1/people?id=" + ",".join(map(str, ids))
    payload = {"eventId": event_id, "eventCreated": "2024-05-01T10:00:00+00:00", "event": "peopleUpdated",
               "resourceIds": list(ids), "uri": uri}  # fmt: skip
    return orjson.dumps(payload)


@pytest.fixture
def receiver(database_url: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[ReceiverServer]:
    monkeypatch.delenv("SYNC_FUB_SYSTEM_KEY", raising=False)
    engine = db.get_engine(database_url)
    accounts.upsert_account(engine, "fub", "acme", {"api_key": "fub_sandbox_key_acme"})
    accounts.upsert_account(engine, "stripe", "main", {"api_key": "sk_test_x", "webhook_secret": STRIPE_SECRET})
    with ReceiverServer(database_url) as server:
        yield server


def rows(database_url: URL) -> list[dict]:
    with db.get_engine(database_url).connect() as conn:
        result = conn.execute(sa.text("SELECT integration, event_id, event_type, resource_key, payload, headers, "
                                      "status FROM bridge.webhook_events ORDER BY received_at"))  # fmt: skip
        return [dict(r) for r in result.mappings()]


def post(server: ReceiverServer, path: str, body: bytes | object, headers: dict[str, str]) -> requests.Response:
    return requests.post(f"{server.url}{path}", data=body, headers=headers, timeout=10)


def fub_headers(body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", "FUB-Signature": fub_sign(body), "User-Agent": "FUB-Webhooks"}


def test_a_signed_fub_webhook_is_committed_before_the_202_and_a_duplicate_is_stored_once(
    receiver: ReceiverServer, database_url: URL
) -> None:
    body = fub_body()
    first = post(receiver, "/webhooks/fub/acme", body, fub_headers(body))
    assert first.status_code == 202, first.text
    (row,) = rows(database_url)  # visible from another connection as soon as we hold the 202
    assert row["integration"] == "fub" and row["event_id"] == "152d60c0-79da-4018-a9af-28aec8a71c94"
    assert row["event_type"] == "peopleUpdated" and row["resource_key"] == "peopleUpdated:12,13"
    assert row["payload"] == orjson.loads(body) and row["status"] == "pending"
    assert "fub-signature" not in row["headers"] and row["headers"]["user-agent"] == "FUB-Webhooks"
    again = post(receiver, "/webhooks/fub/acme", body, fub_headers(body))
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert len(rows(database_url)) == 1


def test_the_account_may_be_named_by_its_id(receiver: ReceiverServer, database_url: URL) -> None:
    account = accounts.get_account(db.get_engine(database_url), "fub", "acme")
    body = fub_body("by-id")
    assert post(receiver, f"/webhooks/fub/{account.id}", body, fub_headers(body)).status_code == 202


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("bad signature", 401),
        ("missing signature", 401),
        ("signed with another key", 401),
        ("malformed json", 400),
        ("json array", 400),
        ("wrong content type", 415),
        ("no content type", 415),
        ("unknown integration", 404),
        ("unknown account", 404),
        ("too large by content-length", 413),
        ("too large when streamed", 413),
    ],
)
def test_every_bad_request_gets_its_status_and_stores_nothing(
    receiver: ReceiverServer, database_url: URL, case: str, status: int
) -> None:
    body = fub_body()
    path = "/webhooks/fub/acme"
    headers = fub_headers(body)
    payload: object = body
    if case == "bad signature":
        headers["FUB-Signature"] = "0" * 64
    elif case == "missing signature":
        del headers["FUB-Signature"]
    elif case == "signed with another key":
        headers["FUB-Signature"] = fub_sign(body, "not-the-key")
    elif case == "malformed json":
        payload = b'{"eventId": "x", "event": '
        headers["FUB-Signature"] = fub_sign(payload)
    elif case == "json array":
        payload = b"[1, 2]"
        headers["FUB-Signature"] = fub_sign(payload)
    elif case == "wrong content type":
        headers["Content-Type"] = "text/plain"
    elif case == "no content type":
        del headers["Content-Type"]
    elif case == "unknown integration":
        path = "/webhooks/hubspot/acme"
    elif case == "unknown account":
        path = "/webhooks/fub/nobody"
    elif case == "too large by content-length":
        payload = b'{"pad": "' + b"x" * (1024 * 1024 + 10) + b'"}'
        headers["FUB-Signature"] = fub_sign(payload)
    elif case == "too large when streamed":
        big = b'{"pad": "' + b"x" * (3 * 1024 * 1024) + b'"}'
        headers["FUB-Signature"] = fub_sign(big)
        # A generator body goes out chunked: no Content-Length, so only the streaming cap can stop it.
        payload = (big[i : i + 65536] for i in range(0, len(big), 65536))
    try:
        response = post(receiver, path, payload, headers)
        assert response.status_code == status, (case, response.status_code, response.text)
    except requests.ConnectionError:
        # Refusing an oversized upload may close the connection while the client is still sending.
        assert status == 413
    assert rows(database_url) == []
    assert requests.get(f"{receiver.url}/healthz", timeout=5).status_code == 200  # still serving


def test_stripe_webhooks_use_the_account_secret_and_a_five_minute_tolerance(
    receiver: ReceiverServer, database_url: URL
) -> None:
    event = {"id": "evt_1", "object": "event", "type": "customer.updated",
             "data": {"object": {"id": "cus_9", "object": "customer"}}}  # fmt: skip
    body = orjson.dumps(event)
    headers = {"Content-Type": "application/json; charset=utf-8"}
    stale = post(
        receiver,
        "/webhooks/stripe/main",
        body,
        {**headers, "Stripe-Signature": stripe_sign(body, t=int(time.time()) - 400)},
    )
    assert stale.status_code == 401
    assert (
        post(receiver, "/webhooks/stripe/main", body, {**headers, "Stripe-Signature": stripe_sign(body)}).status_code
        == 202
    )
    # Stripe redelivers with a fresh timestamp: the same event is acknowledged and stored once.
    again = post(receiver, "/webhooks/stripe/main", body, {**headers, "Stripe-Signature": stripe_sign(body)})
    assert again.status_code == 200
    (row,) = rows(database_url)
    assert (row["event_id"], row["event_type"], row["resource_key"]) == ("evt_1", "customer.updated", "customer:cus_9")
    assert "stripe-signature" not in row["headers"]


def test_secrets_never_reach_the_logs(
    receiver: ReceiverServer, database_url: URL, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = fub_body("log-check")
    post(receiver, "/webhooks/fub/acme", body, {**fub_headers(body), "FUB-Signature": "f" * 64})
    post(receiver, "/webhooks/fub/acme", body, fub_headers(body))
    text = caplog.text
    assert "signature rejected" in text
    for secret in (FUB_KEY, fub_sign(body), "fub_sandbox_key_acme", STRIPE_SECRET):
        assert secret not in text


def test_a_concurrent_burst_with_redeliveries_stores_every_event_exactly_once(
    receiver: ReceiverServer, database_url: URL
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    bodies = [fub_body(f"burst-{n % 150}", (n % 150,)) for n in range(300)]  # each event delivered twice

    def send(body: bytes) -> int:
        with requests.Session() as session:
            return session.post(
                f"{receiver.url}/webhooks/fub/acme", data=body, headers=fub_headers(body), timeout=30
            ).status_code

    with ThreadPoolExecutor(24) as pool:
        statuses = list(pool.map(send, bodies))
    assert sorted(set(statuses)) == [200, 202]
    assert statuses.count(202) == 150 and statuses.count(200) == 150
    stored = rows(database_url)
    assert len(stored) == 150 and len({r["event_id"] for r in stored}) == 150


def test_a_database_outage_answers_503_so_the_source_redelivers(database_url: URL) -> None:
    gone = database_url.set(database="no_such_database")
    with ReceiverServer(gone) as server:
        body = fub_body()
        response = post(server, "/webhooks/fub/acme", body, fub_headers(body))
        assert response.status_code == 503 and response.headers["Retry-After"] == "5"
        assert requests.get(f"{server.url}/healthz", timeout=5).status_code == 503


def test_healthz(receiver: ReceiverServer) -> None:
    response = requests.get(f"{receiver.url}/healthz", timeout=5)
    assert response.status_code == 200 and response.json() == {"status": "ok"}


# -- the CLI -----------------------------------------------------------------------------------


def test_cli_serve_answers_over_http(database_url: URL) -> None:
    import os
    import socket
    import subprocess
    import sys

    accounts.upsert_account(db.get_engine(database_url), "fub", "acme", {"api_key": "fub_sandbox_key_acme"})
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "SYNC_FUB_SYSTEM_KEY"}
    code = "from sync_pipelines.cli_webhooks import webhooks_group; webhooks_group()"
    proc = subprocess.Popen([sys.executable, "-c", code, "serve", "--port", str(port)], env=env,
                            cwd=db.PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.2)
        body = fub_body("cli-1")
        response = requests.post(f"{base}/webhooks/fub/acme", data=body, headers=fub_headers(body), timeout=10)
        assert response.status_code == 202
    finally:
        proc.terminate()
        output = proc.communicate(timeout=20)[0].decode()
    assert FUB_KEY not in output and "fub_sandbox_key_acme" not in output
    assert [r["event_id"] for r in rows(database_url)] == ["cli-1"]


def test_cli_replay_by_id_and_since_and_status(database_url: URL) -> None:
    from click.testing import CliRunner

    from sync_pipelines.cli_webhooks import webhooks_group
    from sync_pipelines.lib import webhooks

    account = accounts.upsert_account(db.get_engine(database_url), "fub", "acme", {"api_key": "k"})
    with db.raw_connection(database_url, autocommit=True) as conn:
        for n in range(3):
            webhooks.enqueue(conn, "fub", account.id, f"e{n}", "peopleUpdated", None, {"n": n})
        claimed = webhooks.claim_batch(conn, "fub", 10, "c")
        conn.execute("UPDATE bridge.webhook_events SET max_attempts = 1")
        webhooks.fail(conn, [e.id for e in claimed], "boom", "c")
    runner = CliRunner()
    shown = runner.invoke(webhooks_group, ["status"])
    assert shown.exit_code == 0 and "dead" in shown.output and " 3" in shown.output
    one = runner.invoke(webhooks_group, ["replay", "--id", str(claimed[0].id)])
    assert one.exit_code == 0, one.output
    assert "re-queued 1 event(s)" in one.output
    rest = runner.invoke(webhooks_group, ["replay", "--since", "2000-01-01T00:00:00Z", "--dead-only"])
    assert "re-queued 2 event(s)" in rest.output
    assert {r["status"] for r in rows(database_url)} == {"pending"}
    assert runner.invoke(webhooks_group, ["replay"]).exit_code != 0
    assert runner.invoke(webhooks_group, ["replay", "--since", "yesterday"]).exit_code != 0


def test_the_stripe_simulators_signed_webhooks_are_accepted_and_stored_once(database_url: URL) -> None:
    from sync_pipelines.sandbox.app import Sandbox, SandboxServer
    from sync_pipelines.sandbox.stripe import ACCOUNTS as STRIPE_ACCOUNTS

    sandbox = Sandbox(seed=5, scale=40, sources=["stripe"], webhook_speed=10_000)
    api_key = STRIPE_ACCOUNTS["acme"][0]
    with SandboxServer(sandbox) as server, ReceiverServer(database_url) as receiver:
        created = requests.post(
            f"{server.url}/stripe/v1/webhook_endpoints",
            data={"url": f"{receiver.url}/webhooks/stripe/acme", "enabled_events[]": "*"},
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=10,
        )
        assert created.status_code == 200, created.text
        secret = created.json()["secret"]
        accounts.upsert_account(db.get_engine(database_url), "stripe", "acme", {"api_key": api_key,
                                                                               "webhook_secret": secret})  # fmt: skip
        sandbox["stripe"].mutate("acme", "customers", updates=2)
        deadline = time.monotonic() + 20
        while len(rows(database_url)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        sandbox.emitter.wait_idle(10)
    stored = rows(database_url)
    assert len(stored) >= 2 and all(r["integration"] == "stripe" for r in stored)
    assert all(r["event_id"].startswith("evt_") for r in stored)
    assert len({r["event_id"] for r in stored}) == len(stored)
    assert {d.status for d in sandbox.emitter.log} <= {200, 202}
