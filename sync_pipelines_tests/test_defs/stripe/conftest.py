"""Stripe against its simulator over real HTTP, loaded into this test's own embedded-Postgres database."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from sync_pipelines.defs.stripe.client import StripeClient
from sync_pipelines.defs.stripe.declaration import STRIPE
from sync_pipelines.defs.stripe.entities import SPECS
from sync_pipelines.defs.stripe.resources import sandbox_resource
from sync_pipelines.lib import accounts, db
from sync_pipelines.lib.accounts import Account
from sync_pipelines.lib.integration import sync
from sync_pipelines.sandbox.app import Sandbox, SandboxServer
from sync_pipelines.sandbox.stripe import Stripe

SCALE = 60  # acme: 60 customers, 36 subscriptions, 108 invoices, 97 charges; summit half, harbor a quarter


@dataclass
class StripeWorld:
    sandbox: Sandbox
    root: str
    engine: sa.Engine
    accounts: dict[str, Account]

    @property
    def sim(self) -> Stripe:
        return self.sandbox["stripe"]  # type: ignore[return-value]

    def key(self, name: str = "acme") -> str:
        return str(self.sim.credentials()["accounts"][name])

    def client_for(self, account: Account) -> StripeClient:
        """What the kit's syncs call: the resource builds the client from the key stored encrypted."""
        client = sandbox_resource(self.root).client_for(self.engine, account)
        client.backoff_initial, client.backoff_max = 0.01, 0.05
        return client

    def backfill(self, entity: str, name: str = "acme") -> sync.SyncReport:
        return sync.backfill(self.engine, STRIPE, self.client_for, self.accounts[name], entity, None)

    def delta(self, entity: str, name: str = "acme") -> sync.SyncReport:
        return sync.delta(self.engine, STRIPE, self.client_for, self.accounts[name], entity)

    def row(self, entity: str, source_id: str, name: str = "acme") -> sa.Row | None:
        table = SPECS[entity].core
        query = sa.select(table).where(table.c.account_id == self.accounts[name].id, table.c.source_id == source_id)
        with self.engine.connect() as conn:
            return conn.execute(query).first()

    def scalar(self, query: str, **params: object) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.text(query), params).scalar_one())


@pytest.fixture
def world(database_url: URL) -> Iterator[StripeWorld]:
    sandbox = Sandbox(seed=11, scale=SCALE, sources=["stripe"], webhook_speed=10_000.0)
    simulator = sandbox["stripe"]
    simulator.rate_limits.update({context: (0, 10.0) for context in simulator.rate_limits})
    engine = db.get_engine(database_url)
    with SandboxServer(sandbox) as server:
        added = {
            name: accounts.upsert_account(engine, "stripe", name, {"api_key": key})
            for name, key in simulator.credentials()["accounts"].items()
        }
        yield StripeWorld(sandbox, server.url, engine, added)
