"""The files the package runs from besides its modules: Alembic's migrations (`sql/`) and `alembic.ini`, Dagster's
instance (`dagster.yaml`) and workspace (`workspace.yaml`).

There is one copy of each, in the source checkout. A built wheel carries the same files under
`sync_pipelines/_project/` (setup.py copies them at build time), so an installed package migrates and starts in an
empty directory, while a checkout (an editable install included) reads them where they are edited.
"""

from __future__ import annotations

from pathlib import Path

CHECKOUT_ROOT = Path(__file__).resolve().parents[2]
PACKAGED_ROOT = Path(__file__).resolve().parents[1] / "_project"
# What a root must hold to be used; setup.py ships exactly these.
FILES = ("alembic.ini", "dagster.yaml", "workspace.yaml")
TREES = ("sql",)


def _complete(root: Path) -> bool:
    return all((root / name).is_file() for name in FILES) and all((root / tree).is_dir() for tree in TREES)


def in_checkout() -> bool:
    """Whether this package runs from a source checkout (beside its pyproject.toml), not from a wheel."""
    return (CHECKOUT_ROOT / "pyproject.toml").is_file() and _complete(CHECKOUT_ROOT)


def root() -> Path:
    if in_checkout():
        return CHECKOUT_ROOT
    if _complete(PACKAGED_ROOT):
        return PACKAGED_ROOT
    raise FileNotFoundError(
        f"sync_pipelines' project files ({', '.join(FILES + TREES)}) are neither in a source checkout at "
        f"{CHECKOUT_ROOT} nor in the installed package at {PACKAGED_ROOT}: reinstall the package from its wheel"
    )


def path(name: str) -> Path:
    """`name` (one of FILES or TREES) of the checkout, or of the installed package."""
    if name not in FILES + TREES:
        raise ValueError(f"{name!r} is not a project file the package ships ({', '.join(FILES + TREES)})")
    return root() / name
