"""reZEN against its simulator over real HTTP, loaded into this test's own embedded-Postgres database."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from sync_pipelines.defs.rezen.client import RezenClient
from sync_pipelines.defs.rezen.entities import INTEGRATION, SPECS
from sync_pipelines.lib import accounts, db
from sync_pipelines.lib.accounts import Account
from sync_pipelines.lib.load import LoadContext
from sync_pipelines.lib.sync import Page, SyncResult, run_pages
from sync_pipelines.sandbox.app import Sandbox, SandboxServer
from sync_pipelines.sandbox.rezen import Rezen
from sync_pipelines.sandbox.store import Window

SCALE = 60  # keystone: 60 transactions, 20 listings, 60 agents, 60 contributions; meridian: 24, 8, 24, 24


@dataclass
class RezenWorld:
    sandbox: Sandbox
    url: str
    engine: sa.Engine  # unusable in `source`, which has no database
    accounts: dict[str, Account]

    @property
    def sim(self) -> Rezen:
        return self.sandbox["rezen"]  # type: ignore[return-value]

    def client(self, name: str = "keystone", page_size: int = 100) -> RezenClient:
        key = self.sim.credentials()["accounts"][name]["api_key"]
        return RezenClient(f"{self.url}/arrakis/api/v1", f"{self.url}/yenta/api/v1", key, page_size=page_size,
                           timeout=5.0, backoff_initial=0.01, backoff_max=0.05)  # fmt: skip

    def ctx(self, name: str) -> LoadContext:
        return LoadContext(INTEGRATION, self.accounts[name].id, registry=SPECS)

    def load(
        self, conn: psycopg.Connection, name: str, entity: str, pages: Iterator[Page], key: str = ""
    ) -> SyncResult:
        return run_pages(conn, SPECS[entity], self.ctx(name), pages, cursor_key=key or f"{entity}@test")

    # -- what the sandbox holds, read from the simulator itself (not through the client) -------------------

    def records(self, name: str, table: str) -> list[dict]:
        view = self.sim.accounts[name].tables[table].query(Window())
        return view.page(0, len(view))

    def expected_ids(self, name: str, entity: str) -> set[str]:
        acct = self.sim.accounts[name]
        agents = self.records(name, "agents")
        frontline = {a["id"] for a in agents if a["tier"] == 1}
        if entity == "equity":
            return {a[f] for a in [acct.owner, *agents] for f in ("equityPurchasePlanId", "equityAwardPlanId")}
        return {
            "transactions": lambda: {r["id"] for r in self.records(name, "transactions")},
            "listings": lambda: {r["id"] for r in self.records(name, "listings")},
            "agents": lambda: {a["id"] for a in agents} | {acct.owner_id},
            "network_downline": lambda: {a["id"] for a in agents},
            "network_frontline": lambda: frontline,
            "teams": lambda: {r["id"] for r in self.records(name, "teams")},
            "cap_info": lambda: frontline | {acct.owner_id},
            "revshare_contributions": lambda: {r["id"] for r in self.records(name, "contributions")},
        }[entity]()

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

    def now(self) -> datetime:
        with self.engine.connect() as conn:
            return conn.execute(sa.text("SELECT clock_timestamp()")).scalar_one().astimezone(UTC)


def _sandbox() -> Sandbox:
    sandbox = Sandbox(seed=11, scale=SCALE, sources=["rezen"], webhook_speed=10_000.0)
    # These tests read every list whole many times; the 100-per-10 s limit has its own simulator test.
    sandbox["rezen"].rate_limits["global"] = (100_000, 10.0)
    return sandbox


@pytest.fixture
def source() -> Iterator[RezenWorld]:
    """The simulator alone, for what needs no warehouse."""
    with SandboxServer(_sandbox()) as server:
        yield RezenWorld(server.sandbox, f"{server.url}/rezen", sa.create_engine("postgresql://"), {})


@pytest.fixture
def rezen(database_url: URL) -> Iterator[RezenWorld]:
    """The simulator and this test's own warehouse, with both sandbox accounts added (keys stored encrypted)."""
    with SandboxServer(_sandbox()) as server:
        engine = db.get_engine(database_url)
        credentials = server.sandbox["rezen"].credentials()["accounts"]
        known = {
            name: accounts.upsert_account(engine, INTEGRATION, name, {"api_key": credentials[name]["api_key"]})
            for name in ("keystone", "meridian")
        }
        assert all(accounts.secrets_for(engine, a.id)["api_key"] == credentials[n]["api_key"] for n, a in known.items())
        yield RezenWorld(server.sandbox, f"{server.url}/rezen", engine, known)


@pytest.fixture
def conn(rezen: RezenWorld) -> Iterator[psycopg.Connection]:
    with db.raw_connection(rezen.engine.url, autocommit=True) as connection:
        yield connection
