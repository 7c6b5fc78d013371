"""Fixtures shared by the tests of lib/."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from sync_pipelines.lib import db


@pytest.fixture
def project_instance(
    dagster_instance: dg.DagsterInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dg.DagsterInstance]:
    """The project's dagster.yaml (our run launcher and coordinator, run monitoring) on this test's Dagster
    database."""
    monkeypatch.setenv("SYNC_DAGSTER_PG_URL", db.dagster_storage_url())
    shutil.copyfile(db.PROJECT_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as configured:
        yield configured
