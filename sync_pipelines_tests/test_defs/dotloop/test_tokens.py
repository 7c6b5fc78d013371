"""DotLoop's OAuth against the simulator: `accounts add` exchanges a code (or a refresh token), a token that expires
mid-run is refreshed once and the rotated pair is stored before it is used, a process killed right after a refresh
leaves a usable pair, and a revoked refresh token marks its account in error while the other account syncs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
import requests
import sqlalchemy as sa

from sync_pipelines import operations
from sync_pipelines.defs.dotloop.declaration import DOTLOOP
from sync_pipelines.defs.dotloop.resources import BASE_URL_ENV
from sync_pipelines.defs.dotloop.tokens import StoredTokens, Tokens
from sync_pipelines.lib import accounts, db, schema
from sync_pipelines.lib.errors import OperatorError
from sync_pipelines.lib.integration import builders
from sync_pipelines.lib.resources import WarehouseResource
from sync_pipelines_tests.test_defs.dotloop.conftest import DotLoopWorld

TOKEN_CALLS = "SELECT count(*) FROM bridge.sync_logs WHERE method = 'POST' AND url LIKE '%/oauth/token'"
REFUSED_CALLS = "SELECT count(*) FROM bridge.sync_logs WHERE method = 'GET' AND status_code = 401"


def bearer_works(world: DotLoopWorld, access_token: str) -> bool:
    response = requests.get(
        f"{world.resource().api_url}/account", headers={"Authorization": f"Bearer {access_token}"}, timeout=10
    )
    return response.status_code == 200


def lapse_in(world: DotLoopWorld, name: str, seconds: int) -> dict[str, str]:
    """Connect `name` again with a token that has `seconds` of sandbox time left, though we believe it has an hour
    (the sandbox clock is moved, ours is not): it lapses in the middle of what comes next, refused with a 401."""
    world.sim.access_token_ttl = 3600
    world.accounts[name] = world.connect(name)
    world.sim.access_token_ttl = 12 * 3600
    world.sandbox.clock.advance(3600 - seconds)
    return world.secrets(name)


def test_connect_exchanges_a_code_for_an_encrypted_pair_that_works(
    world: DotLoopWorld, dagster_instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = {"code": world.sim.issue_code("acme"), "webhook_secret": "k1"}
    secrets = DOTLOOP.connect(world.resource(), given)  # type: ignore[misc]
    assert set(secrets) == {"access_token", "refresh_token", "expires_at", "webhook_secret"}
    expires = datetime.fromisoformat(secrets["expires_at"])
    assert timedelta(hours=11) < expires - datetime.now(UTC) <= timedelta(hours=12)
    assert bearer_works(world, secrets["access_token"])
    # A refresh token is exchanged too (and is spent by it: DotLoop rotates).
    again = DOTLOOP.connect(world.resource(), {"refresh_token": secrets["refresh_token"]})  # type: ignore[misc]
    assert again["refresh_token"] != secrets["refresh_token"] and bearer_works(world, again["access_token"])
    assert not bearer_works(world, secrets["access_token"])
    for given, named in [
        ({}, "code=<authorization code>"),
        ({"code": "not-a-code"}, "authorization code"),
        ({"refresh_token": secrets["refresh_token"]}, "already been used"),
    ]:
        with pytest.raises(OperatorError, match=named):
            DOTLOOP.connect(world.resource(), given)  # type: ignore[misc]

    # `accounts add dotloop --name acme2 --secret code=...`: the operations layer the CLI calls, with the resource
    # the environment configures.
    monkeypatch.setenv(BASE_URL_ENV, world.resource().base_url)
    added = operations.add_account(dagster_instance, DOTLOOP, "acme2", {"code": world.sim.issue_code("acme")})
    stored = accounts.secrets_for(world.engine, added.id)
    assert bearer_works(world, stored["access_token"]) and "code" not in stored
    with world.engine.connect() as conn:
        ciphertext = conn.execute(
            sa.select(schema.credentials.c.secret_ciphertext).where(schema.credentials.c.account_id == added.id)
        ).scalar_one()
    assert stored["access_token"].encode() not in bytes(ciphertext)
    assert "acme2" in dagster_instance.get_dynamic_partitions("dotloop_accounts")


def test_a_token_that_expires_mid_run_is_refreshed_once_and_the_rotated_pair_is_stored(world: DotLoopWorld) -> None:
    before = lapse_in(world, "acme", 3)
    world.options["batch_size"] = 10
    world.sim.faults.update({"change_between_pages": 1})  # each page served moves the sandbox clock a second
    report = world.backfill("acme", "loops")
    assert report.stats.pages >= 9
    assert world.core_ids("acme", "loops") == world.expected_ids("acme", "loops")
    assert world.scalar(TOKEN_CALLS) == 1 and world.scalar(REFUSED_CALLS) == 1
    after = world.secrets("acme")
    assert after["refresh_token"] != before["refresh_token"] and after["access_token"] != before["access_token"]
    assert before["refresh_token"] in world.sim._spent_refresh
    assert after["refresh_token"] in world.sim._refresh and bearer_works(world, after["access_token"])
    assert world.rows("SELECT status, error FROM bridge.accounts WHERE name = 'acme'") == [("active", None)]


def test_a_token_about_to_expire_is_refreshed_before_it_is_used(world: DotLoopWorld) -> None:
    store = StoredTokens(world.engine, world.accounts["acme"].id)
    current = store.current()
    soon = Tokens(current.access_token, current.refresh_token, datetime.now(UTC) + timedelta(minutes=1))
    store.rotate(current.access_token, lambda _: soon)  # the stored pair now says it expires in a minute
    world.backfill("acme", "profiles")
    assert world.scalar(TOKEN_CALLS) == 1 and world.scalar(REFUSED_CALLS) == 0
    assert Tokens.from_secrets(world.secrets("acme")).expires_at - datetime.now(UTC) > timedelta(hours=11)


def test_two_refreshes_of_one_pair_call_dotloop_once(world: DotLoopWorld) -> None:
    """The second finds the stored pair already replaced (as a process that waited on the row lock does)."""
    store = StoredTokens(world.engine, world.accounts["acme"].id)
    stale = store.current()
    endpoint = world.resource().token_endpoint()
    calls: list[str] = []

    def refresh(token: str) -> Tokens:
        calls.append(token)
        return endpoint.refresh(token)

    first = store.rotate(stale.access_token, refresh)
    second = store.rotate(stale.access_token, refresh)
    assert calls == [stale.refresh_token] and first == second == store.current()
    assert bearer_works(world, first.access_token)


CHILD = """
import sys
from sync_pipelines.defs.dotloop.declaration import DOTLOOP
from sync_pipelines.defs.dotloop.resources import DotLoopResource
from sync_pipelines.lib import accounts, db
from sync_pipelines.lib.integration import sync

root, name = sys.argv[1:3]
engine = db.get_engine()
resource = DotLoopResource(base_url=f"{root}/dotloop", batch_size=5)
account = accounts.get_account(engine, "dotloop", name)
sync.backfill(engine, DOTLOOP, lambda a: resource.client_for(engine, a), account, "loops", None)
"""


@pytest.mark.e2e
def test_a_process_killed_right_after_a_refresh_leaves_a_usable_pair(world: DotLoopWorld, tmp_path: Path) -> None:
    before = lapse_in(world, "acme", 2)
    fingerprint = "SELECT fingerprint FROM bridge.credentials WHERE account_id = :a"
    first = world.scalar(fingerprint, a=world.accounts["acme"].id)
    # Slow pages, each moving the sandbox clock: the child refreshes a few pages in, then goes on paging.
    world.sim.faults.update({"change_between_pages": 1, "slow_requests": 10**6, "slow_seconds": 0.05})
    log = (tmp_path / "child.log").open("wb")
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, world.root, "acme"],
        env=dict(os.environ, PYTHONUNBUFFERED="1"), cwd=db.PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while world.scalar(fingerprint, a=world.accounts["acme"].id) == first:
        assert child.poll() is None, (tmp_path / "child.log").read_text()
        assert time.monotonic() < deadline, "the child never refreshed"
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)  # the moment its refresh committed
    child.wait(30)
    log.close()
    world.sim.faults.reset()

    stored = world.secrets("acme")
    assert stored["refresh_token"] != before["refresh_token"]
    assert stored["refresh_token"] in world.sim._refresh  # the live one: not lost with the process
    assert bearer_works(world, stored["access_token"])
    report = world.backfill("acme", "loops")  # resumes, with the stored pair
    assert world.core_ids("acme", "loops") == world.expected_ids("acme", "loops") and report.counts.failed == 0
    assert len(world.sim._spent_refresh) == 1  # the child's refresh only: the pair it stored was good to use


def test_a_revoked_refresh_token_marks_that_account_in_error_while_the_other_syncs(
    world: DotLoopWorld, dagster_instance: dg.DagsterInstance
) -> None:
    revoked = world.secrets("acme")["refresh_token"]
    world.sim.faults.update({"revoked_keys": [revoked]})  # its access token is refused, and so is the refresh
    job = builders.delta_job(DOTLOOP)
    result = job.execute_in_process(
        instance=dagster_instance,
        resources={"dotloop": world.resource(), "warehouse": WarehouseResource()},
        raise_on_error=False,
    )
    assert not result.success
    statuses = dict(world.rows("SELECT name, status || ': ' || coalesce(error, '') FROM bridge.accounts"))
    assert statuses["summit"] == "active: "
    assert statuses["acme"].startswith("error: 401: DotLoop refused the refresh token (invalid_grant: Refresh token "
                                       "has been revoked)")  # fmt: skip
    for entity in DOTLOOP.load_order:
        assert world.core_ids("summit", entity) == world.expected_ids("summit", entity), entity
        assert world.core_ids("acme", entity) == set(), entity
    assert world.secrets("acme")["refresh_token"] == revoked  # nothing was written over the pair
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "acme" in str(failure.event_specific_data) and "summit" not in str(failure.event_specific_data)


def test_a_stored_pair_without_tokens_names_what_to_do(world: DotLoopWorld) -> None:
    account = accounts.upsert_account(world.engine, "dotloop", "raw", {"code": "given-but-never-exchanged"})
    with pytest.raises(OperatorError, match="accounts add dotloop"):
        world.resource().client_for(world.engine, account)


def test_the_oauth_client_comes_from_the_environment_outside_a_run_too(
    world: DotLoopWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`accounts add` uses the resource outside Dagster, where an EnvVar is not resolved for it: it is read here."""
    monkeypatch.setenv(BASE_URL_ENV, world.resource().base_url)
    monkeypatch.setenv("SYNC_DOTLOOP_CLIENT_SECRET", "not-the-secret")
    with pytest.raises(OperatorError, match="invalid_client"):
        DOTLOOP.connect(DOTLOOP.resource(), {"code": world.sim.issue_code("acme")})  # type: ignore[misc]
    monkeypatch.setenv("SYNC_DOTLOOP_CLIENT_SECRET", "dotloop_sandbox_secret")
    secrets = DOTLOOP.connect(DOTLOOP.resource(), {"code": world.sim.issue_code("acme")})  # type: ignore[misc]
    assert bearer_works(world, secrets["access_token"])
