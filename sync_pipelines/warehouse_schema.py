"""The whole warehouse schema: lib's shared tables plus every integration's own, registered on one metadata as
their modules are imported. Migrations are checked against it (sync_pipelines_tests/test_lib/test_migrations.py)."""

from __future__ import annotations

from sync_pipelines import registry  # noqa: F401  (each declared integration registers its tables)
from sync_pipelines.defs.erp import tables as _erp_tables  # noqa: F401  (the ERP is a database source, off the kit)
from sync_pipelines.defs.lofty import tables as _lofty_tables  # noqa: F401  (registered here too: migration 0012)
from sync_pipelines.lib.schema import SCHEMAS, metadata

__all__ = ["SCHEMAS", "metadata"]
