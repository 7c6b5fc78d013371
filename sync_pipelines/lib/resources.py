"""The warehouse as a Dagster resource."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import psycopg
from pydantic import Field
from sqlalchemy.engine import URL, Engine, make_url

from sync_pipelines.lib import db


class WarehouseResource(dg.ConfigurableResource):
    """The Postgres warehouse; an empty `database_url` follows SYNC_DATABASE_URL or the embedded server."""

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the warehouse; empty: SYNC_DATABASE_URL or the embedded Postgres.",
    )

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
