"""Everything else about the build is in pyproject.toml. This hook copies the files the package runs from besides its
modules (sync_pipelines/lib/project_files.py: migrations, alembic.ini, Dagster's instance and workspace) into the
wheel under sync_pipelines/_project/, so they have one source of truth here and an installed wheel needs no
checkout. An editable install builds nothing: it reads them from the checkout."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
TARGET = Path("sync_pipelines") / "_project"


def _manifest() -> tuple[tuple[str, ...], tuple[str, ...]]:
    # The runtime's own list, read by path: importing the package here would import its dependencies.
    spec = importlib.util.spec_from_file_location(
        "_project_files", ROOT / "sync_pipelines" / "lib" / "project_files.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FILES, module.TREES


FILES, TREES = _manifest()


def _project_files() -> list[Path]:
    found = [Path(name) for name in FILES]
    for tree in TREES:
        for source in sorted((ROOT / tree).rglob("*")):
            relative = source.relative_to(ROOT)
            if source.is_file() and "__pycache__" not in relative.parts and source.suffix not in {".pyc", ".pyo"}:
                found.append(relative)
    return found


class BuildPyWithProjectFiles(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for relative in _project_files():
            destination = Path(self.build_lib) / TARGET / relative
            self.mkpath(str(destination.parent))
            self.copy_file(str(ROOT / relative), str(destination))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = list(super().get_outputs(include_bytecode))
        if not getattr(self, "editable_mode", False):
            outputs += [str(Path(self.build_lib) / TARGET / relative) for relative in _project_files()]
        return outputs


setup(cmdclass={"build_py": BuildPyWithProjectFiles})
