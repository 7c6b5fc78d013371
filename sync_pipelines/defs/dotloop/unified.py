"""DotLoop's share of the unified core.transaction and core.listing (defs/core/transactions.py).

A loop is a listing or a transaction by its `transactionType`: LISTING_FOR_SALE and LISTING_FOR_LEASE loops feed
core.listing, every other loop (PURCHASE_OFFER, LEASE_OFFER, REAL_ESTATE_OTHER, or none) core.transaction. Both
entries read core.dotloop_loops through a subquery that keeps their own kind, so the unified update's filter on
`_synced_at` still uses the loops' index. A loop's type is set when it is created; should one ever change kind,
its old unified row would stay as it was (DotLoop sends no event for it, and the sandbox never does it).

Each entry has UnifiedSource's fields in its order, so defs/core/transactions.py takes it as
`UnifiedSource(*dotloop_unified.TRANSACTIONS)`. This module imports nothing from defs/core: transactions.py imports
it, and an import back would be a cycle.

**Status** (DotLoop's own kept in `source_status`; a status not listed is 'unknown'):
- transactions: PRE_OFFER is active (the buyer's agent is working, nothing signed), UNDER_CONTRACT pending, SOLD
  and LEASED closed;
- listings: PRE_LISTING, PRIVATE_LISTING and ACTIVE_LISTING are active, UNDER_CONTRACT pending, SOLD and LEASED
  closed;
- ARCHIVED is unknown in both: agents archive loops that fell through and, to tidy their list, loops that closed
  long ago, and the status alone cannot tell which.

**Columns.** Address, price, MLS number and dates are the loop's detail sections (client.py flattens them): the
street is number and name as one line (the unit apart), price the purchase/sale price (else the listing's current
or original price). DotLoop carries no currency: NULL, not a guess. The contract date is the Contract Agreement
Date, the expected close the Closing Date, and a transaction's closed date is that Closing Date once the loop is
SOLD or LEASED. The agent is the loop's participant in the agent role of the loop's side (BUYING_AGENT for a
transaction, LISTING_AGENT for a listing; else the other agent role), the smallest participant id first;
core.participant is matched on their email as for every source.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

LISTING_TYPES = ("LISTING_FOR_SALE", "LISTING_FOR_LEASE")
_LISTING_TYPES_SQL = ", ".join(f"'{t}'" for t in LISTING_TYPES)


class UnifiedEntry(NamedTuple):
    """defs/core/transactions.py's UnifiedSource, field for field."""

    integration: str
    source_entity: str
    table: str
    state: str
    statuses: Mapping[str, str]
    columns: Mapping[str, str]


TRANSACTION_STATUSES = {"PRE_OFFER": "active", "UNDER_CONTRACT": "pending", "SOLD": "closed", "LEASED": "closed"}
LISTING_STATUSES = {
    "PRE_LISTING": "active",
    "PRIVATE_LISTING": "active",
    "ACTIVE_LISTING": "active",
    "UNDER_CONTRACT": "pending",
    "SOLD": "closed",
    "LEASED": "closed",
}


def _agent(column: str, preferred: str) -> str:
    """A column of the loop's agent participant (see the module docstring); probes the (account, loop) index."""
    return (
        f"(SELECT p.{column} FROM core.dotloop_participants p"
        " WHERE p.account_id = s.account_id AND p.loop_source_id = s.source_id AND p.deleted_at IS NULL"
        " AND p.role IN ('BUYING_AGENT', 'LISTING_AGENT')"
        f" ORDER BY (p.role = '{preferred}') DESC, length(p.source_id), p.source_id LIMIT 1)"
    )


def _common(preferred_agent: str) -> dict[str, str]:
    return {
        "price": "s.price",
        "mls_number": "nullif(s.mls_number, '')",
        "street": "nullif(concat_ws(' ', s.street_number, s.street_name), '')",
        "unit": "nullif(s.unit_number, '')",
        "city": "s.city",
        "state": "s.state",
        "zip": "s.zip",
        "agent_source_id": _agent("source_id", preferred_agent),
        "agent_email": _agent("email", preferred_agent),
        "created_at_source": "s.created_at_source",
        "source_updated_at": "s._source_updated_at",
    }


TRANSACTIONS = UnifiedEntry(
    "dotloop",
    "loops",
    f"(SELECT * FROM core.dotloop_loops WHERE coalesce(transaction_type, '') NOT IN ({_LISTING_TYPES_SQL}))",
    state="s.status",
    statuses=TRANSACTION_STATUSES,
    columns={
        **_common("BUYING_AGENT"),
        "transaction_type": "s.transaction_type",
        "contract_date": "s.contract_agreement_date",
        "expected_close_date": "s.closing_date",
        "closed_date": "CASE WHEN s.status IN ('SOLD', 'LEASED') THEN s.closing_date END",
    },
)
LISTINGS = UnifiedEntry(
    "dotloop",
    "loops",
    f"(SELECT * FROM core.dotloop_loops WHERE transaction_type IN ({_LISTING_TYPES_SQL}))",
    state="s.status",
    statuses=LISTING_STATUSES,
    columns={**_common("LISTING_AGENT"), "listed_date": "s.listing_date", "expiration_date": "s.expiration_date"},
)
