"""SkySlope against its simulator over real HTTP, loaded into this test's own embedded-Postgres database."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from sync_pipelines.defs.skyslope.client import SkySlopeClient, forget_sessions
from sync_pipelines.defs.skyslope.declaration import SKYSLOPE
from sync_pipelines.defs.skyslope.entities import ID_FIELDS, INTEGRATION, SPECS
from sync_pipelines.defs.skyslope.resources import sandbox_resource
from sync_pipelines.lib import accounts, db
from sync_pipelines.lib.accounts import Account
from sync_pipelines.lib.integration import sync
from sync_pipelines.sandbox.app import Sandbox, SandboxServer
from sync_pipelines.sandbox.skyslope import SkySlope
from sync_pipelines.sandbox.store import Window

SCALE = 300  # harbor: 300 sales, 150 listings, 15 users, 2 offices; canyon: 120, 60, 6, 2
NAMES = ("harbor", "canyon")


@dataclass
class SkySlopeWorld:
    sandbox: Sandbox
    root: str
    engine: sa.Engine  # unusable in `source`, which has no database
    accounts: dict[str, Account]

    @property
    def sim(self) -> SkySlope:
        return self.sandbox["skyslope"]  # type: ignore[return-value]

    def client(self, name: str = "harbor") -> SkySlopeClient:
        given = self.sim.credentials()["accounts"][name]
        return SkySlopeClient(f"{self.root}/skyslope", given["access_key"], given["access_secret"],
                              given["client_id"], given["client_secret"], timeout=5.0, backoff_initial=0.01,
                              backoff_max=0.05)  # fmt: skip

    def client_for(self, account: Account) -> SkySlopeClient:
        """What the kit's syncs call: the resource builds the client from the credentials stored encrypted."""
        client = sandbox_resource(self.root).client_for(self.engine, account)
        client.backoff_initial, client.backoff_max = 0.01, 0.05
        return client

    def backfill(self, name: str, entity: str, periods: list[str] | None = None) -> sync.SyncReport:
        return sync.backfill(self.engine, SKYSLOPE, self.client_for, self.accounts[name], entity, periods)

    def reconcile(self, name: str, entity: str, periods: list[str] | None = None) -> list[dict[str, object]]:
        return sync.reconcile(self.engine, SKYSLOPE, self.client_for, self.accounts[name], entity, periods)

    # -- what the sandbox holds, read from the simulator itself (not through the client) -------------------

    def records(self, name: str, entity: str) -> list[dict]:
        view = self.sim.accounts[name].tables[entity].query(Window())
        return view.page(0, len(view))

    def expected_ids(self, name: str, entity: str) -> set[str]:
        return {r[ID_FIELDS[entity]] for r in self.records(name, entity)}

    # -- what the warehouse holds --------------------------------------------------------------------------

    def core_ids(self, name: str, entity: str, live: bool = True) -> set[str]:
        table = SPECS[entity].core
        query = sa.select(table.c.source_id).where(table.c.account_id == self.accounts[name].id)
        if live:
            query = query.where(table.c.deleted_at.is_(None))
        with self.engine.connect() as conn:
            return set(conn.execute(query).scalars())

    def scalar(self, query: str, **params: object) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.text(query), params).scalar_one())

    def rows(self, query: str, **params: object) -> list[tuple]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(query), params).all()]

    def now(self) -> datetime:
        with self.engine.connect() as conn:
            return conn.execute(sa.text("SELECT clock_timestamp()")).scalar_one().astimezone(UTC)


def _sandbox() -> Sandbox:
    # Sessions are shared per process and base URL; a new sandbox may reuse an earlier one's port.
    forget_sessions()
    sandbox = Sandbox(seed=5, scale=SCALE, sources=["skyslope"], webhook_speed=10_000.0)
    # These tests read every list whole many times; the 120-per-minute limit has its own simulator test.
    sandbox["skyslope"].rate_limits.update({"global": (100_000, 60.0), "login": (100_000, 60.0)})
    return sandbox


@pytest.fixture
def source() -> Iterator[SkySlopeWorld]:
    """The simulator alone, for what needs no warehouse."""
    with SandboxServer(_sandbox()) as server:
        yield SkySlopeWorld(server.sandbox, server.url, sa.create_engine("postgresql://"), {})


@pytest.fixture
def skyslope(database_url: URL) -> Iterator[SkySlopeWorld]:
    """The simulator and this test's own warehouse, with both brokerages added (four secrets each, encrypted)."""
    with SandboxServer(_sandbox()) as server:
        engine = db.get_engine(database_url)
        given = server.sandbox["skyslope"].credentials()["accounts"]
        known = {name: accounts.upsert_account(engine, INTEGRATION, name, dict(given[name])) for name in NAMES}
        yield SkySlopeWorld(server.sandbox, server.url, engine, known)
