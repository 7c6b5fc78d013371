"""The module boundaries of DESIGN.md section 2, as import-linter contracts ([tool.importlinter] in
pyproject.toml): lib/ and defs/ never import the sandbox, and lib/ never imports defs/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept() -> None:
    # The venv's own lint-imports, next to the interpreter running the tests. --no-cache: import-linter's
    # cache can miss imports of modules that were not yet part of a package when it was written, which once
    # reported a broken contract as kept; building the graph costs well under a second anyway.
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"lint-imports exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    assert "0 broken" in result.stdout
