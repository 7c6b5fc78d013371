"""The warehouse as a Dagster resource."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import psycopg
from pydantic import Field
from sqlalchemy.engine import URL, Engine, make_url

from sync_pipelines.lib import db, runs

log = logging.getLogger(__name__)


class WarehouseResource(dg.ConfigurableResource):
    """The Postgres warehouse; an empty `database_url` follows SYNC_DATABASE_URL or the embedded server."""

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the warehouse; empty: SYNC_DATABASE_URL or the embedded Postgres.",
    )

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Every run of ours uses the warehouse, so this is where a run records the process executing it (the
        # run worker, with the in-process executor): run monitoring and the CLI fail a run once that process
        # is gone, which frees the pool slots it held (lib/runs.py).
        if context.instance is None or context.dagster_run is None:
            return  # a sensor's or schedule's evaluation, or a resource built outside a run
        try:
            runs.record_run_process(context.instance, context.dagster_run)
        except Exception as exc:  # the sync matters more than the tags; without them the run counts as alive
            log.warning("could not record the process of run %s: %s", context.dagster_run.run_id, exc)

    def url(self) -> URL:
        return make_url(self.database_url) if self.database_url else db.warehouse_url()

    def engine(self) -> Engine:
        return db.get_engine(self.url())

    @contextmanager
    def raw_connection(self, autocommit: bool = False) -> Iterator[psycopg.Connection]:
        with db.raw_connection(self.url(), autocommit=autocommit) as conn:
            yield conn


# One instance shared by every integration's Definitions: Definitions.merge refuses two different objects
# under the same resource key.
WAREHOUSE = WarehouseResource()
