"""The one list of integrations. The CLI, the webhook receiver, the operations layer, the demo and the
Definitions all read it: adding an integration is its folder under defs/ and one line here."""

from __future__ import annotations

import os

from sync_pipelines.defs.dotloop.declaration import DOTLOOP
from sync_pipelines.defs.fub.declaration import FUB
from sync_pipelines.defs.lofty.declaration import LOFTY
from sync_pipelines.defs.rezen.declaration import REZEN
from sync_pipelines.defs.skyslope.declaration import SKYSLOPE
from sync_pipelines.defs.stripe.declaration import STRIPE
from sync_pipelines.lib.errors import OperatorError
from sync_pipelines.lib.integration.declaration import Integration

# One line per integration; Definitions, the CLI, the receiver and the demo follow this order.
ALL: dict[str, Integration] = {i.name: i for i in (FUB, REZEN, SKYSLOPE, DOTLOOP, LOFTY, STRIPE)}

# A deployment that runs only some sources names them (and `erp` for the ERP database) in SYNC_INTEGRATIONS, comma
# separated: the others get no assets, schedules, webhook routes or production settings. Unset: every one.
ENABLED_ENV = "SYNC_INTEGRATIONS"
ERP = "erp"


def enabled_names() -> list[str] | None:
    """The names SYNC_INTEGRATIONS gives, or None when it is unset (everything is enabled)."""
    given = os.environ.get(ENABLED_ENV, "").strip()
    return [n.strip() for n in given.split(",") if n.strip()] if given else None


def unknown_enabled() -> list[str]:
    """Names in SYNC_INTEGRATIONS that are neither an integration nor `erp` (settings.check refuses them)."""
    return [n for n in enabled_names() or [] if n not in ALL and n != ERP]


def erp_enabled() -> bool:
    names = enabled_names()
    return names is None or ERP in names


INTEGRATIONS: dict[str, Integration] = {
    name: i for name, i in ALL.items() if enabled_names() is None or name in (enabled_names() or [])
}


def get(name: str) -> Integration:
    """The integration called `name`, or an OperatorError naming the ones there are."""
    try:
        return INTEGRATIONS[name]
    except KeyError:
        if name in ALL:
            raise OperatorError(
                f"integration {name!r} is not enabled: {ENABLED_ENV}={os.environ.get(ENABLED_ENV, '')!r}"
            ) from None
        raise OperatorError(f"unknown integration {name!r}; known: {', '.join(INTEGRATIONS)}") from None
