"""DotLoop against its simulator over real HTTP, loaded into this test's own embedded-Postgres database; accounts
connected the way `accounts add dotloop` connects them (an authorization code exchanged at /oauth/token)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from sync_pipelines.defs.dotloop.client import DotLoopClient
from sync_pipelines.defs.dotloop.declaration import DOTLOOP
from sync_pipelines.defs.dotloop.entities import SPECS
from sync_pipelines.defs.dotloop.resources import DotLoopResource, sandbox_resource
from sync_pipelines.lib import accounts, db
from sync_pipelines.lib.accounts import Account
from sync_pipelines.lib.integration import sync
from sync_pipelines.sandbox.app import Sandbox, SandboxServer
from sync_pipelines.sandbox.dotloop import DotLoop
from sync_pipelines.sandbox.store import Window

SCALE = 60  # acme: 60 + 24 loops in two profiles, 60 contacts; summit: 30 loops, 30 contacts; 3 participants a loop
USERS = ("acme", "summit")


@dataclass
class DotLoopWorld:
    sandbox: Sandbox
    root: str
    engine: sa.Engine
    accounts: dict[str, Account]
    options: dict[str, Any] = field(default_factory=dict)  # resource settings for the kit's syncs (batch_size)

    @property
    def sim(self) -> DotLoop:
        return self.sandbox["dotloop"]  # type: ignore[return-value]

    def resource(self, **overrides: Any) -> DotLoopResource:
        return DotLoopResource(base_url=sandbox_resource(self.root).base_url, **overrides)

    def connect(self, name: str) -> Account:
        """`accounts add dotloop --name NAME --secret code=...`, minus the CLI: exchange, store encrypted."""
        secrets = DOTLOOP.connect(self.resource(), {"code": self.sim.issue_code(name)})  # type: ignore[misc]
        return accounts.upsert_account(self.engine, "dotloop", name, secrets)

    def client(self, name: str = "acme", **overrides: Any) -> DotLoopClient:
        client = self.resource(**overrides).client_for(self.engine, self.accounts[name])
        client.backoff_initial, client.backoff_max = 0.01, 0.05
        return client

    def client_for(self, account: Account) -> DotLoopClient:
        return self.client(account.name, **self.options)

    def backfill(self, name: str, entity: str, periods: list[str] | None = None) -> sync.SyncReport:
        return sync.backfill(self.engine, DOTLOOP, self.client_for, self.accounts[name], entity, periods)

    def delta(self, name: str, entity: str) -> sync.SyncReport:
        return sync.delta(self.engine, DOTLOOP, self.client_for, self.accounts[name], entity)

    def secrets(self, name: str) -> dict[str, str]:
        return accounts.secrets_for(self.engine, self.accounts[name].id)

    # -- what the sandbox holds, read from the simulator itself (not through the client) -------------------

    def expected_ids(self, name: str, entity: str, period: str | None = None) -> set[str]:
        user = self.sim.users[name]
        if entity == "profiles":
            return {str(p) for p in user.profiles}
        if entity == "contacts":
            view = user.contacts.query(Window())
            return {str(r["id"]) for r in view.page(0, len(view))}
        ids: set[str] = set()
        for profile in user.profiles.values():
            view = profile.loops.query(Window())
            for loop_id in view.ids(0, len(view)):
                created = profile.loops.times(loop_id)[0]  # type: ignore[index]
                if period is not None and created.strftime("%Y-%m") != period:
                    continue
                if entity == "loops":
                    ids.add(str(loop_id))
                else:
                    ids.update(str(p) for p in self.sim.participant_ids(profile, loop_id))
        return ids

    # -- what the warehouse holds --------------------------------------------------------------------------

    def core_ids(self, name: str, entity: str, live: bool = True) -> set[str]:
        table = SPECS[entity].core
        query = sa.select(table.c.source_id).where(table.c.account_id == self.accounts[name].id)
        if live:
            query = query.where(table.c.deleted_at.is_(None))
        with self.engine.connect() as conn:
            return set(conn.execute(query).scalars())

    def scalar(self, query: str, **params: object) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(query), params).scalar()

    def rows(self, query: str, **params: object) -> list[tuple]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(query), params).all()]

    def now(self) -> datetime:
        return datetime.now(UTC)


def make_sandbox(scale: int = SCALE) -> Sandbox:
    sandbox = Sandbox(seed=5, scale=scale, sources=["dotloop"], webhook_speed=10_000.0)
    # These tests read every list many times; the 100-a-minute limit has its own benchmark and simulator test.
    sandbox["dotloop"].rate_limits["global"] = (0, 60.0)
    return sandbox


@pytest.fixture
def world(database_url: URL) -> Iterator[DotLoopWorld]:
    """The simulator and this test's own warehouse, with both sandbox users connected (tokens stored encrypted)."""
    with SandboxServer(make_sandbox()) as server:
        engine = db.get_engine(database_url)
        made = DotLoopWorld(server.sandbox, server.url, engine, {})
        made.accounts.update({name: made.connect(name) for name in USERS})
        yield made
