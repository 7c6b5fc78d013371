"""The files the package runs from besides its modules are found in a checkout, and only the ones it ships."""

from __future__ import annotations

import pytest

from sync_pipelines.lib import project_files


def test_a_checkout_reads_its_own_migrations_and_config() -> None:
    assert project_files.in_checkout()
    assert project_files.root() == project_files.CHECKOUT_ROOT
    assert (project_files.path("sql") / "env.py").is_file()
    assert any((project_files.path("sql") / "versions").glob("0001_*.py"))
    for name in project_files.FILES:
        assert project_files.path(name).is_file()


def test_a_name_the_package_does_not_ship_is_refused() -> None:
    with pytest.raises(ValueError, match="not a project file"):
        project_files.path("pyproject.toml")
