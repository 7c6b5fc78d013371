"""SkySlope's share of the unified core.transaction and core.listing (defs/core/transactions.py): sales feed
core.transaction, listings feed core.listing.

Each entry has UnifiedSource's fields in its order, so defs/core/transactions.py takes it as
`UnifiedSource(*skyslope_unified.SALES)`. This module imports nothing from defs/core: transactions.py imports it,
and an import back would be a cycle.

**Status** (the source's own kept in `source_status`; a state not listed is 'unknown'):
- sales: Incomplete (an open file still missing paperwork) and Active are active, Pending is pending, Closed is
  closed, Canceled is cancelled. Archived is unknown: SkySlope archives closed and cancelled files alike, and the
  status alone cannot tell which.
- listings: Incomplete and Active are active, Pending is pending, Closed is closed, Expired is expired, Withdrawn
  and Canceled are cancelled.

**Columns.** Price is the sale price of a sale and the list price of a listing (0, SkySlope's "none yet", is NULL).
The street is number, direction and street name as one line (the unit apart, in `unit`), which is what the
address key reads. SkySlope carries no currency: NULL, not a guess (US and Canadian brokerages use it). The
agent's email is the SkySlope user's (core.skyslope_users, the account's current record of that agent), else the
copy the file embeds; core.participant is matched on it as for every source. Dates are the calendar dates the
client read by the date rule (feed.py: `0001-01-01` is NULL).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple


class UnifiedEntry(NamedTuple):
    """defs/core/transactions.py's UnifiedSource, field for field."""

    integration: str
    source_entity: str
    table: str
    state: str
    statuses: Mapping[str, str]
    columns: Mapping[str, str]


SALE_STATUSES = {
    "Incomplete": "active",
    "Active": "active",
    "Pending": "pending",
    "Closed": "closed",
    "Canceled": "cancelled",
    "Cancelled": "cancelled",
}
LISTING_STATUSES = {
    "Incomplete": "active",
    "Active": "active",
    "Pending": "pending",
    "Closed": "closed",
    "Expired": "expired",
    "Withdrawn": "cancelled",
    "Canceled": "cancelled",
    "Cancelled": "cancelled",
}

_AGENT_EMAIL = (
    "coalesce((SELECT u.email FROM core.skyslope_users u"
    " WHERE u.account_id = s.account_id AND u.source_id = s.agent_guid), s.agent_email)"
)
_COMMON = {
    "mls_number": "nullif(s.mls_number, '')",
    "street": "nullif(concat_ws(' ', s.street_number, s.direction, s.street_name), '')",
    "unit": "s.unit",
    "city": "s.city",
    "state": "s.state",
    "zip": "s.zip",
    "agent_source_id": "s.agent_guid",
    "agent_email": _AGENT_EMAIL,
    "created_at_source": "s.created_at_source",
    "source_updated_at": "s._source_updated_at",
}

SALES = UnifiedEntry(
    "skyslope",
    "sales",
    "core.skyslope_sales",
    state="s.status",
    statuses=SALE_STATUSES,
    columns={
        **_COMMON,
        "price": "nullif(s.sale_price, 0)",
        "transaction_type": "s.deal_type",
        "contract_date": "s.contract_acceptance_date",
        "expected_close_date": "s.escrow_closing_date",
        "closed_date": "s.actual_closing_date",
    },
)
LISTINGS = UnifiedEntry(
    "skyslope",
    "listings",
    "core.skyslope_listings",
    state="s.status",
    statuses=LISTING_STATUSES,
    columns={
        **_COMMON,
        "price": "nullif(s.listing_price, 0)",
        "listed_date": "s.listing_date",
        "expiration_date": "s.expiration_date",
    },
)
