"""Primary keys: UUIDv7, generated in Python so inserts and COPY need no round trip for ids."""

from __future__ import annotations

import uuid

from uuid6 import uuid7


def new_id() -> uuid.UUID:
    # uuid6 returns a subclass; drivers adapt the plain stdlib type most reliably.
    return uuid.UUID(int=uuid7().int)
