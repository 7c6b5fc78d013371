"""FUB webhooks end to end in one process: sandbox -> signed HTTP -> receiver -> bridge.webhook_events -> sensor
(build_sensor_context on a real Postgres-backed instance) -> one in-process run -> core."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import dagster as dg
import orjson
import pytest
import requests
import sqlalchemy as sa
from sqlalchemy.engine import URL

from sync_pipelines.definitions import defs as DEFS
from sync_pipelines.defs.fub.declaration import FUB, entity_of, resource_ids
from sync_pipelines.defs.fub.declaration import verify as verify_fub
from sync_pipelines.defs.fub.entities import SPECS
from sync_pipelines.defs.fub.resources import FubResource
from sync_pipelines.lib import accounts, db, webhooks
from sync_pipelines.lib.accounts import Account
from sync_pipelines.lib.integration.webhook_jobs import coalesce
from sync_pipelines.lib.load import LoadContext, load_batch
from sync_pipelines.lib.resources import WarehouseResource
from sync_pipelines.sandbox.app import Sandbox, SandboxServer
from sync_pipelines.sandbox.fub import SYSTEM, SYSTEM_KEY
from sync_pipelines.webhooks_app import ReceiverServer

JOB = "fub_webhook_apply"


@dataclass
class World:
    sandbox: Sandbox
    fub_url: str
    receiver: ReceiverServer
    engine: sa.Engine
    instance: dg.DagsterInstance
    acme: Account
    summit: Account

    def resources(self) -> dict:
        return {"fub": FubResource(base_url=self.fub_url, max_attempts=2), "warehouse": WarehouseResource()}

    def subscribe(self, account: str, event: str) -> None:
        api_key = self.sandbox["fub"].credentials()["accounts"][account]
        response = requests.post(
            f"{self.fub_url}/v1/webhooks",
            json={"event": event, "url": f"{self.receiver.url}/webhooks/fub/{account}"},
            auth=(api_key, ""),
            headers={"X-System": SYSTEM, "X-System-Key": SYSTEM_KEY},
            timeout=10,
        )
        assert response.status_code == 201, response.text

    def preload(self, account: Account, ids: list[str], entity: str = "people") -> None:
        client = self.resources()["fub"].client_for(self.engine, account)
        records = client.fetch_ids(entity, ids)
        with db.raw_connection(self.engine.url, autocommit=True) as conn:
            load_batch(conn, SPECS[entity], LoadContext("fub", account.id, registry=SPECS), records)

    def tick(self) -> dg.SensorResult:
        context = dg.build_sensor_context(instance=self.instance, resources={"warehouse": WarehouseResource()})
        return DEFS.resolve_sensor_def("fub_webhook_events")(context)

    def run(self, request: dg.RunRequest, ok: bool = True) -> dg.ExecuteInProcessResult:
        result = DEFS.resolve_job_def(JOB).execute_in_process(
            run_config=request.run_config,
            instance=self.instance,
            resources=self.resources(),
            tags=request.tags,
            raise_on_error=False,
        )
        assert result.success is ok
        return result

    def events(self) -> list[dict]:
        with self.engine.connect() as conn:
            query = sa.text("SELECT event_id, event_type, status, attempts, last_error FROM bridge.webhook_events "
                            "ORDER BY received_at")  # fmt: skip
            return [dict(r) for r in conn.execute(query).mappings()]

    def wait_for_events(self, count: int, timeout: float = 20.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.events()
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"expected {count} webhook events, have {self.events()}")

    def person(self, account: Account, source_id: str) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.text("SELECT stage, price, _row_hash, _source_updated_at, deleted_at FROM core.fub_people "
                        "WHERE account_id = :a AND source_id = :s"),
                {"a": account.id, "s": source_id},
            ).mappings().first()  # fmt: skip
        return dict(row) if row else None


@pytest.fixture
def world(database_url: URL, dagster_instance: dg.DagsterInstance) -> Iterator[World]:
    sandbox = Sandbox(seed=11, scale=80, sources=["fub"], webhook_speed=10_000)
    sandbox["fub"].rate_limits.update({"global": (0, 10.0), "events": (0, 10.0)})
    engine = db.get_engine(database_url)
    acme = accounts.upsert_account(engine, "fub", "acme", {"api_key": "fub_sandbox_key_acme"})
    summit = accounts.upsert_account(engine, "fub", "summit", {"api_key": "fub_sandbox_key_summit"})
    with SandboxServer(sandbox) as server, ReceiverServer(database_url) as receiver:
        yield World(sandbox, f"{server.url}/fub", receiver, engine, dagster_instance, acme, summit)


def _enqueue(world: World, account: Account, event: str, ids: list[int], event_id: str | None = None) -> None:
    payload = {"eventId": event_id or str(uuid.uuid4()), "eventCreated": "2024-01-01T00:00:00+00:00",
               "event": event, "resourceIds": ids, "uri": f"https://api.followupboss.com/v1/x?id={ids}"}  # fmt: skip
    with db.raw_connection(world.engine.url, autocommit=True) as conn:
        webhooks.enqueue(conn, "fub", account.id, payload["eventId"], event, None, payload)


def _sign(body: bytes) -> str:
    # Independent of the product: FUB's documented hash_hmac('sha256', base64_encode(body), X-System-Key).
    return hmac.new(SYSTEM_KEY.encode(), base64.b64encode(body), hashlib.sha256).hexdigest()


def test_the_sandbox_signed_webhook_lands_in_the_queue_and_one_run_changes_the_core_row(world: World) -> None:
    world.preload(world.acme, ["5"])
    before = world.person(world.acme, "5")
    assert before is not None
    world.subscribe("acme", "peopleUpdated")
    world.subscribe("acme", "peopleCreated")
    world.sandbox.clock.advance(60)
    outcome = world.sandbox["fub"].mutate("acme", "people", creates=1, updates=1, update_ids=[5])
    events = world.wait_for_events(2)
    assert {e["event_type"] for e in events} == {"peopleUpdated", "peopleCreated"}
    assert all(e["status"] == "pending" for e in events)
    assert all(d.status == 202 for d in world.sandbox.emitter.log)

    result = world.tick()
    (request,) = result.run_requests
    assert request.run_key.startswith("fub:batch:")
    world.run(request)

    after = world.person(world.acme, "5")
    assert after is not None and after["_source_updated_at"] > before["_source_updated_at"]
    assert after["_row_hash"] != before["_row_hash"]
    new_id = str(outcome["created"][0])
    assert world.person(world.acme, new_id) is not None
    assert {e["status"] for e in world.events()} == {"completed"}
    assert world.tick().skip_reason is not None  # nothing left: no run


def test_the_sensor_coalesces_a_batch_into_one_run_and_never_repeats_a_run_key(world: World) -> None:
    _enqueue(world, world.acme, "peopleUpdated", [5])
    _enqueue(world, world.acme, "peopleUpdated", [5])
    _enqueue(world, world.acme, "peopleCreated", [5, 6])
    _enqueue(world, world.acme, "callsCreated", [3])
    _enqueue(world, world.summit, "peopleDeleted", [2])
    _enqueue(world, world.acme, "notesCreated", [9])  # not a loaded entity: acknowledged, nothing fetched
    first = world.tick()
    (request,) = first.run_requests
    config = request.run_config["ops"]["fub_apply_webhooks"]["config"]
    assert len(config["event_ids"]) == 6
    groups = {(g["account_id"], g["entity"]): (g["ids"], g["deleted_ids"]) for g in config["groups"]}
    assert groups == {
        (str(world.acme.id), "people"): (["5", "6"], []),
        (str(world.acme.id), "calls"): (["3"], []),
        (str(world.summit.id), "people"): (["2"], ["2"]),
    }
    assert request.tags["sync_pipelines/webhooks"] == "fub"
    assert world.tick().skip_reason is not None  # claimed: the next tick requests nothing
    keys = {request.run_key}
    for _ in range(3):
        _enqueue(world, world.acme, "peopleUpdated", [5])
        (again,) = world.tick().run_requests
        assert again.run_key not in keys
        keys.add(again.run_key)
    world.run(request)
    assert [e["status"] for e in world.events()][:6] == ["completed"] * 6


def test_a_crash_between_accept_and_apply_leaves_the_event_pending_and_a_later_run_applies_it(world: World) -> None:
    body = orjson.dumps({"eventId": "crash-1", "eventCreated": "2024-01-01T00:00:00+00:00", "event": "peopleUpdated",
                         "resourceIds": [7], "uri": f"{world.fub_url}/v1/people?id=7"})  # fmt: skip
    response = requests.post(
        f"{world.receiver.url}/webhooks/fub/acme",
        data=body,
        headers={"Content-Type": "application/json", "FUB-Signature": _sign(body)},
        timeout=10,
    )
    assert response.status_code == 202
    world.receiver.stop()  # the receiver dies; nothing has applied the event yet
    assert [(e["event_id"], e["status"]) for e in world.events()] == [("crash-1", "pending")]
    assert world.person(world.acme, "7") is None

    # A sensor tick claims it and then the daemon dies before the run starts: the claim goes stale.
    assert world.tick().run_requests
    with world.engine.begin() as conn:
        conn.execute(sa.text("UPDATE bridge.webhook_events SET claimed_at = now() - interval '11 minutes'"))
    (request,) = world.tick().run_requests  # the lease has run out: claimed again
    world.run(request)
    assert world.person(world.acme, "7") is not None
    assert world.events()[0]["status"] == "completed"


def test_a_failing_run_retries_the_batch_then_marks_it_dead_with_the_reason_and_replay_revives_it(
    world: World,
) -> None:
    _enqueue(world, world.acme, "peopleUpdated", [8], "doomed")
    _enqueue(world, world.summit, "peopleUpdated", [4], "fine")
    with world.engine.begin() as conn:
        conn.execute(sa.text("UPDATE bridge.webhook_events SET max_attempts = 3"))
    world.sandbox["fub"].faults.update({"revoked_keys": ["fub_sandbox_key_acme"]})
    for attempt in (1, 2, 3):
        with world.engine.begin() as conn:
            conn.execute(sa.text("UPDATE bridge.webhook_events SET next_attempt_at = now()"))
        (request,) = world.tick().run_requests
        world.run(request, ok=False)
        doomed = next(e for e in world.events() if e["event_id"] == "doomed")
        assert doomed["attempts"] == attempt
        assert doomed["status"] == ("dead" if attempt == 3 else "failed")
        assert "AuthError" in doomed["last_error"]
    # The other account's event in the same batch was applied the first time.
    assert next(e for e in world.events() if e["event_id"] == "fine")["status"] == "completed"
    assert world.person(world.summit, "4") is not None
    assert world.tick().skip_reason is not None  # dead events are never claimed

    world.sandbox["fub"].faults.reset()
    with world.engine.begin() as conn:
        conn.execute(sa.text("UPDATE bridge.accounts SET status = 'active', error = NULL"))
    with db.raw_connection(world.engine.url, autocommit=True) as conn:
        doomed_id = conn.execute("SELECT id FROM bridge.webhook_events WHERE event_id = 'doomed'").fetchone()[0]
        assert webhooks.replay(conn, ids=[doomed_id]) == 1
    (request,) = world.tick().run_requests
    world.run(request)
    assert world.person(world.acme, "8") is not None


def test_a_rerun_of_a_failed_run_takes_its_events_back(world: World) -> None:
    _enqueue(world, world.acme, "peopleUpdated", [9], "rerun")
    world.sandbox["fub"].faults.update({"revoked_keys": ["fub_sandbox_key_acme"]})
    (request,) = world.tick().run_requests
    world.run(request, ok=False)
    world.sandbox["fub"].faults.reset()
    world.run(request)  # what Dagster's run retry does: the same config again
    (event,) = world.events()
    assert event["status"] == "completed" and event["attempts"] == 2
    assert world.person(world.acme, "9") is not None


def test_an_old_or_repeated_event_never_moves_a_row_backwards(world: World) -> None:
    world.preload(world.acme, ["5"])
    with world.engine.begin() as conn:  # a newer version than the source serves is already in core
        conn.execute(
            sa.text(
                "UPDATE core.fub_people SET stage = 'From the future', "
                "_source_updated_at = _source_updated_at + interval '1 day' WHERE source_id = '5'"
            )
        )
    _enqueue(world, world.acme, "peopleUpdated", [5])
    _enqueue(world, world.acme, "peopleUpdated", [5])
    (request,) = world.tick().run_requests
    world.run(request)
    assert world.person(world.acme, "5")["stage"] == "From the future"


def test_a_deleted_event_soft_deletes_the_core_row(world: World) -> None:
    total = world.sandbox["fub"].counts("acme")["people"]
    world.preload(world.acme, [str(i) for i in range(1, total + 1)])
    world.subscribe("acme", "peopleDeleted")
    outcome = world.sandbox["fub"].mutate("acme", "people", deletes=1)
    (gone,) = outcome["deleted"]
    world.wait_for_events(1)
    (request,) = world.tick().run_requests
    world.run(request)
    assert world.person(world.acme, str(gone))["deleted_at"] is not None
    assert world.events()[0]["status"] == "completed"


def test_fub_signature_is_hmac_sha256_over_base64_of_the_body() -> None:
    body = b'{"event":"peopleCreated","resourceIds":[1]}'
    good = hmac.new(b"sys-key", base64.b64encode(body), hashlib.sha256).hexdigest()
    assert verify_fub(body, {"FUB-Signature": good}, "sys-key")
    assert verify_fub(body, {"fub-signature": good.upper()}, "sys-key")
    assert not verify_fub(body + b" ", {"FUB-Signature": good}, "sys-key")
    assert not verify_fub(body, {"FUB-Signature": good}, "other")
    assert not verify_fub(body, {}, "sys-key")
    assert not verify_fub(body, {"FUB-Signature": good}, "")


def test_event_parsing_helpers() -> None:
    assert entity_of("peopleStageUpdated") == "people" and entity_of("stageCreated") == "stages"
    assert entity_of("textMessagesUpdated") == "text_messages" and entity_of("peopleRelationshipCreated") is None
    assert entity_of("notesCreated") is None and entity_of(None) is None
    assert resource_ids({"resourceIds": [1, 2]}) == ["1", "2"]
    assert resource_ids({"uri": "https://api.followupboss.com/v1/people?id=3,4"}) == ["3", "4"]
    assert coalesce(FUB, []) == []


def test_definitions_wire_the_sensor_and_job_as_specified() -> None:
    sensor = DEFS.resolve_sensor_def("fub_webhook_events")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.minimum_interval_seconds == 1  # under the daemon's fixed 5 s loop: evaluated on every pass
    job = DEFS.resolve_job_def(JOB)
    assert job.executor_def is dg.in_process_executor
    # Its own concurrency limit: a long backfill holding the integration's limit never delays a webhook batch.
    assert job.tags == {"sync_pipelines/webhooks": "fub"}
    assert sensor.job_name == JOB


# -- with a running daemon ---------------------------------------------------------------------

DAEMON_DEFS = """
from sync_pipelines.definitions import defs
"""


@pytest.mark.e2e
def test_a_running_daemon_takes_a_sandbox_webhook_to_a_changed_core_row(world: World, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from sync_pipelines_tests.e2e.helpers import VENV_BIN, ChildProcess, child_processes, dagster_env, wait_for

    world.preload(world.acme, ["5"])
    before = world.person(world.acme, "5")
    assert before is not None
    world.subscribe("acme", "peopleUpdated")
    defs_file = tmp_path / "webhook_daemon_defs.py"
    defs_file.write_text(DAEMON_DEFS)
    env = dagster_env({"SYNC_FUB_BASE_URL": world.fub_url, "SYNC_FUB_DELTA_CRON": "0 0 1 1 *"})
    with child_processes() as started:
        daemon = ChildProcess("daemon", [str(VENV_BIN / "dagster-daemon"), "run", "-f", str(defs_file)], env, tmp_path)
        started.append(daemon)
        world.sandbox.clock.advance(60)
        world.sandbox["fub"].mutate("acme", "people", updates=1, update_ids=[5])
        assert world.wait_for_events(1)[0]["event_type"] == "peopleUpdated"

        def applied() -> bool:
            row = world.person(world.acme, "5")
            return row is not None and row["_source_updated_at"] > before["_source_updated_at"]

        wait_for(applied, timeout=120, what="the webhook's change in core.fub_people", diagnose=daemon.tail)
        wait_for(
            lambda: world.events()[0]["status"] == "completed",
            timeout=60,
            what="the event marked completed",
            diagnose=daemon.tail,
        )
    assert world.person(world.acme, "5")["_row_hash"] != before["_row_hash"]
