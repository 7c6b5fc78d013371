"""lib/ is the machinery every integration shares: it names none of them. A source's name, its API's quirks and
its tables live in its own folder under defs/ (DESIGN.md section 2)."""

from __future__ import annotations

import re
from pathlib import Path

import sync_pipelines.lib
from sync_pipelines import registry

# The registered integrations, those still to join, and the ERP (a database source, off the kit).
NAMES = {*registry.INTEGRATIONS, "fub", "follow up boss", "followupboss", "rezen", "skyslope", "dotloop", "lofty",
         "stripe", "erp"}  # fmt: skip


def test_no_module_under_lib_names_an_integration() -> None:
    pattern = re.compile(r"(?<![a-z0-9])(" + "|".join(sorted(map(re.escape, NAMES))) + r")(?![a-z0-9])", re.I)
    found = []
    for path in sorted(Path(sync_pipelines.lib.__file__).parent.rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for match in pattern.finditer(line):
                found.append(f"{path.name}:{number}: {match.group(0)!r} in {line.strip()[:100]}")
    assert not found, "lib/ names an integration:\n" + "\n".join(found)
