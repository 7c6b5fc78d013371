"""What an integration is, declared once: its entities, how they are read, partitioned and kept current, its
client resource, its webhooks. Every builder in this package (assets, partitions, checks, sensors, schedules,
webhook jobs, CLI commands, the demo) reads a declaration and names no source of its own.

The vocabulary follows dlt's `rest_api` where it fits: a *resource* per entity, a *paginator* per listing
(lib/integration/paging.py), an *incremental* strategy per entity.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Protocol

import sqlalchemy as sa

from sync_pipelines.lib.accounts import Account
from sync_pipelines.lib.http import ApiClient
from sync_pipelines.lib.load import EntitySpec
from sync_pipelines.lib.modes import EnvSetting
from sync_pipelines.lib.sync import Page


class Incremental(Enum):
    """How the delta sync finds what changed."""

    UPDATED_AFTER = "updated_after"  # an updated-after filter, keyset on `updated`, tie-safe restart
    REWALK = "rewalk"  # no filter: read again, the change guard skips what did not change
    EVENTS = "events"  # an events feed names what changed


class Partitioning(Enum):
    PERIOD_ACCOUNT = "period_account"  # month of creation x account: the source filters by creation time
    ACCOUNT = "account"  # account only: a list read whole


class SourceClient(Protocol):
    """What the kit asks of a source's client. `entity` is the entity's `source_name`."""

    def window_pages(
        self, entity: str, created_after: datetime | None, created_before: datetime | None, resume: str | None
    ) -> Iterator[Page]: ...

    def updated_pages(self, entity: str, since: datetime, overlap: timedelta) -> Iterator[Page]: ...

    def total(self, entity: str, created_after: datetime | None, created_before: datetime | None) -> int | None: ...

    def fetch_ids(self, entity: str, ids: list[str]) -> list[dict]: ...


class ClientResource(Protocol):
    """The Dagster resource of a source: builds an account's client (credentials from bridge.credentials)."""

    def client_for(self, engine: sa.Engine, account: Account) -> ApiClient: ...


@dataclass(frozen=True)
class Entity:
    spec: EntitySpec  # tables, field mappings, id and created fields, parent reference
    partitioning: Partitioning = Partitioning.PERIOD_ACCOUNT
    incremental: Incremental = Incremental.UPDATED_AFTER
    source_name: str | None = None  # the source's name for it (a collection, a path key); default: `name`
    description: str = ""

    @property
    def name(self) -> str:
        return self.spec.entity

    @property
    def source(self) -> str:
        return self.source_name or self.spec.entity

    @property
    def by_period(self) -> bool:
        return self.partitioning is Partitioning.PERIOD_ACCOUNT


@dataclass(frozen=True)
class Change:
    """What one webhook event says changed: records of `entity` to fetch again, and which of them it deleted."""

    entity: str
    ids: tuple[str, ...]
    deleted: bool = False


@dataclass(frozen=True)
class Webhooks:
    """How a source's webhooks are verified, identified and turned into changes."""

    # (raw body, headers, secret) -> signature valid. The receiver answers 401 and stores nothing otherwise.
    verify: Callable[[bytes, Mapping[str, str], str], bool]
    # (payload, raw body) -> (event id, event type, resource key): the receiver's dedupe key.
    identify: Callable[[dict[str, Any], bytes], tuple[str, str | None, str | None]]
    # A stored event's (type, payload) -> the records it names.
    changes: Callable[[str | None, dict[str, Any]], list[Change]]
    # Which stored secrets sign the webhooks, in order of preference.
    secret_keys: tuple[str, ...] = ("webhook_secret",)
    # An env var holding a signing secret shared by every account (a system-wide key), tried after the stored ones.
    secret_env: str | None = None
    # The sandbox's demo secret: the receiver tries it last, and only in local mode (lib/modes.py).
    default_secret: Callable[[], str | None] | None = None
    # For a source that signs nothing and is known by a secret in the callback URL it was given: (raw body, headers,
    # the URL's query parameters, secret) -> valid. Checked instead of `verify` when set.
    verify_request: Callable[[bytes, Mapping[str, str], Mapping[str, str], str], bool] | None = None
    # For a source that posts several events in one delivery: the delivery's payload -> each event as it is stored
    # (one queue row each, deduped by its own id). None: a delivery is one event. A batch is verified whole first.
    split: Callable[[dict[str, Any]], list[dict[str, Any]]] | None = None


@dataclass(frozen=True)
class Departures:
    """For entities whose delta re-walks only the part of the list that can still change (open transactions):
    what core held there before the re-walk, and what to do with the rows the re-walk no longer returned (fetch
    them by id, load their new state, soft-delete those the source has deleted)."""

    entities: tuple[str, ...]
    # (connection, entity, account id) -> source ids in the changeable part, read before the re-walk
    before: Callable[[Any, str, Any], list[str]]
    # (connection, client, load context, entity, ids before, the re-walk's batch ids) -> BatchCounts
    close: Callable[[Any, Any, Any, str, list[str], list[Any]], Any]


@dataclass(frozen=True)
class Integration:
    name: str
    title: str
    entities: tuple[Entity, ...]  # in load order: parents first
    resource: Callable[[], Any]  # the client resource, configured from the environment (a ClientResource)
    # The same resource pointed at the built-in sandbox served at a root URL (the demo, tests, `make dev`).
    sandbox_resource: Callable[[str], Any] | None = None
    credential_fields: tuple[str, ...] = ("api_key",)  # what `accounts add` must be given (stored encrypted)
    # (resource, the secrets `accounts add` was given) -> the secrets to store: e.g. an OAuth authorization code
    # exchanged for tokens. It raises lib.errors.OperatorError naming what is missing or refused.
    connect: Callable[[Any, dict[str, str]], dict[str, str]] | None = None
    period_start: str = "2021-11"
    delta_cron_env: str = ""  # the env var that overrides the delta schedule's cron
    # Every 5 minutes; each source's declaration staggers its default within the five minutes (at most two sources
    # on one minute): six delta runs started together saturated a 2-core machine for ~40 s and held webhook
    # batches 12-14 s in the queue (BENCHMARKS.md, webhook end to end, 2026-12-07 15:30).
    delta_cron: str = "*/5 * * * *"
    # A periodic full re-walk of every account (both asset jobs, whole history), for sources whose delta can miss a
    # change (no updated-after filter, deletions seen only by absence). Empty: none. The change guard makes an
    # unchanged re-walk write nothing.
    rewalk_cron: str = ""
    rewalk_cron_env: str = ""  # the env var that overrides it
    rewalk_entities: tuple[str, ...] = ()  # the entities re-walked; empty: every entity
    # How old the newest sync of a core asset may get before the UI shows it stale: three missed deltas.
    freshness: timedelta = timedelta(minutes=15)
    pool: str = ""  # the Dagster pool guarding the source's rate limit; default: <name>_api
    webhooks: Webhooks | None = None
    departures: Departures | None = None
    # Checks of the source's own (the seeds' per-group reconciliations): (integration) -> asset checks.
    extra_checks: Callable[[Integration], list[Any]] | None = None
    description: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
    # What production mode needs from the environment (real base URLs, application secrets): every process refuses
    # to start in production until all of them are set. The resource reads each through lib.modes.configured, which
    # falls back on the setting's local default (the sandbox's) in local mode only.
    env_settings: tuple[EnvSetting, ...] = ()

    @property
    def pool_name(self) -> str:
        return self.pool or f"{self.name}_api"

    @property
    def resource_key(self) -> str:
        return self.name

    @property
    def specs(self) -> dict[str, EntitySpec]:
        return {e.name: e.spec for e in self.entities}

    @property
    def load_order(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.entities)

    def entity(self, name: str) -> Entity:
        for entity in self.entities:
            if entity.name == name:
                return entity
        raise KeyError(f"{self.name} has no entity {name!r}; known: {', '.join(self.load_order)}")

    @property
    def has_children(self) -> bool:
        return any(e.spec.parent is not None for e in self.entities)
