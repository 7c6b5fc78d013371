"""Dagster's storage on the warehouse's server, for every process that reads dagster.yaml.

`sync-pipelines` exports SYNC_DAGSTER_PG_URL before it starts a Dagster process, and a deployment sets it. A Dagster
command run on its own from the checkout (`dg check defs`, `dg list defs`, `dg dev`) has nobody to export it, and a
plain `postgres_url: {env: ...}` would refuse to load. This storage takes the variable when it is set and otherwise
finds the database the same way the CLI does (lib/db.py: SYNC_DATABASE_URL's server, else the embedded Postgres,
started if need be), so both paths reach the same Dagster database. The URL is resolved in each process and never
written into the instance's serialized config (it may hold a password).
"""

from __future__ import annotations

import os
from typing import Any

from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage

URL_ENV = "SYNC_DAGSTER_PG_URL"


def storage_url() -> str:
    configured = os.environ.get(URL_ENV, "").strip()
    if configured:
        return configured
    from sync_pipelines.lib import db

    db.ensure_databases()
    return db.dagster_storage_url()


class WarehouseServerStorage(DagsterPostgresStorage):
    """dagster-postgres's storage, its URL from SYNC_DAGSTER_PG_URL or, unset, from the project's own settings."""

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: dict[str, Any]
    ) -> WarehouseServerStorage:
        return cls(postgres_url=storage_url(), inst_data=inst_data)
