"""The one list of integrations. The CLI, the webhook receiver, the operations layer, the demo and the
Definitions all read it: adding an integration is its folder under defs/ and one line here."""

from __future__ import annotations

from sync_pipelines.defs.dotloop.declaration import DOTLOOP
from sync_pipelines.defs.fub.declaration import FUB
from sync_pipelines.defs.lofty.declaration import LOFTY
from sync_pipelines.defs.rezen.declaration import REZEN
from sync_pipelines.defs.skyslope.declaration import SKYSLOPE
from sync_pipelines.defs.stripe.declaration import STRIPE
from sync_pipelines.lib.errors import OperatorError
from sync_pipelines.lib.integration.declaration import Integration

# One line per integration; Definitions, the CLI, the receiver and the demo follow this order.
INTEGRATIONS: dict[str, Integration] = {i.name: i for i in (FUB, REZEN, SKYSLOPE, DOTLOOP, LOFTY, STRIPE)}


def get(name: str) -> Integration:
    """The integration called `name`, or an OperatorError naming the ones there are."""
    try:
        return INTEGRATIONS[name]
    except KeyError:
        raise OperatorError(f"unknown integration {name!r}; known: {', '.join(INTEGRATIONS)}") from None
