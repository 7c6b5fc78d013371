"""What reZEN entities are, where they come from, and how their fields map to core columns.

Every record reaches the load path with two fields the client adds (client.py, `stamp`): `_created` and
`_updated`, reZEN's epoch-millisecond `createdAt` / `updatedAt` as ISO 8601 UTC text. The load path takes a
record's period from the first seven characters of its created field and casts mappings with Postgres, which
reads ISO text but not epoch milliseconds; the record is otherwise stored exactly as received.
"""

from __future__ import annotations

from sync_pipelines.defs.rezen import tables
from sync_pipelines.lib.integration.declaration import Incremental, Partitioning
from sync_pipelines.lib.load import EntitySpec, ParentRef
from sync_pipelines.lib.mappings import FieldMapping as M

INTEGRATION = "rezen"

# Parents first: contributions name the agent who contributed.
LOAD_ORDER = (
    "agents",
    "network_downline",
    "network_frontline",
    "teams",
    "equity",
    "cap_info",
    "transactions",
    "listings",
    "revshare_contributions",
)
# The client is keyed by our entity names (each entity's source name is its own name).
COLLECTIONS = {entity: entity for entity in LOAD_ORDER}
# Where each entity is read (client.py builds the URLs; {yentaId} is the key owner's).
PATHS = {
    "agents": "yenta agents/me + agents/{yentaId}/down-line/{1..7} (every status)",
    "network_downline": "yenta agents/{yentaId}/down-line/{1..7} (every status)",
    "network_frontline": "yenta agents/{yentaId}/front-line-agents-info",
    "teams": "yenta teams, then teams/{id} (with its members)",
    "equity": "yenta agents/plans/equity_purchase|equity_award/{planId}, the plans the agents name",
    "cap_info": "yenta agents/{id}/cap-info of the key owner and the front line",
    "transactions": "arrakis transactions/participant/{yentaId}/transactions/{OPEN,CLOSED,TERMINATED}",
    "listings": "arrakis transactions/participant/{yentaId}/listing-transactions/{LISTING_ACTIVE,CLOSED,TERMINATED}",
    "revshare_contributions": "arrakis revshares/{yentaId}/contributions/{1..7}",
}
# Partitioned by account only: reZEN cannot list transactions, listings, agents, the network, plans or cap
# info by creation time, so each is read whole. Contributions (startDate/endDate) and teams
# (createdAtStart/createdAtEnd) can be filtered by creation day, and the client honours a creation window for
# them, so either could be period x account; contributions, as many as transactions, are the one worth it.
REFERENCE_ENTITIES = tuple(e for e in LOAD_ORDER if e != "revshare_contributions")
PARTITIONING = {
    entity: Partitioning.ACCOUNT if entity in REFERENCE_ENTITIES else Partitioning.PERIOD_ACCOUNT
    for entity in LOAD_ORDER
}
# How each delta finds what changed (client.py, `updated_pages`): the network has an updated-day filter
# (`updatedAtFrom`); transactions, listings, teams, contributions, the front line and cap info have none, so
# their delta reads again what can still change and the load path's change guard skips what did not.
INCREMENTAL = {
    entity: Incremental.UPDATED_AFTER if entity in ("agents", "network_downline", "equity") else Incremental.REWALK
    for entity in LOAD_ORDER
}

# Each entity's id field (cap info has none of its own: it is one per agent).
ID_FIELDS = {"cap_info": "agentId"}
CREATED_FIELD = "_created"


def _system(entity: str) -> tuple[M, ...]:
    # Equity plans and cap info carry no updatedAt: their `_source_updated_at` stays NULL, so the change guard
    # lets any change of their content through.
    return (
        M(ID_FIELDS.get(entity, "id"), "source_id", "text", is_required=True),
        M(CREATED_FIELD, "created_at_source", "timestamptz", is_required=True),
        M("_updated", "_source_updated_at", "timestamptz", is_required=entity not in ("equity", "cap_info")),
    )


def _address() -> tuple[M, ...]:
    return (
        M("address.street", "street", transformation="trim"),
        M("address.street2", "street2", transformation="trim"),
        M("address.city", "city", transformation="trim"),
        M("address.state", "state", transformation="upper"),
        M("address.zip", "zip", transformation="trim"),
        M("address.country", "country", transformation="upper"),
    )


_MAPPINGS: dict[str, tuple[M, ...]] = {
    "agents": (
        M("firstName", "first_name", transformation="trim"),
        M("lastName", "last_name", transformation="trim"),
        M("displayName", "display_name", transformation="trim"),
        M("emailAddress", "email", transformation="trim_lower"),
        M("phoneNumber", "phone", transformation="trim"),
        M("status", "status"),
        M("type", "agent_type"),
        M("tier", "tier", "integer"),
        M("sponsorId", "sponsor_source_id"),
        M("accountCountry", "country"),
        M("licenses[0].number", "license_number"),
        M("licenses[0].stateOrProvince", "license_state"),
        M("addresses[0].city", "city"),
        M("addresses[0].stateOrProvince", "state_or_province"),
        M("equityPurchasePlanId", "equity_purchase_plan_id"),
        M("equityAwardPlanId", "equity_award_plan_id"),
        M("joinDate", "join_date", "date"),
    ),
    "network_downline": (
        M("displayName", "display_name", transformation="trim"),
        M("emailAddress", "email", transformation="trim_lower"),
        M("status", "status"),
        M("tier", "tier", "integer"),
        M("sponsorId", "sponsor_source_id"),
        M("joinDate", "join_date", "date"),
    ),
    "network_frontline": (
        M("displayName", "display_name", transformation="trim"),
        M("emailAddress", "email", transformation="trim_lower"),
        M("status", "status"),
        M("sponsorId", "sponsor_source_id"),
        M("joinDate", "join_date", "date"),
    ),
    "teams": (
        M("name", "name", transformation="trim"),
        M("status", "status"),
        M("teamType", "team_type"),
        M("leaderId", "leader_agent_source_id"),
        M("agents", "members", "jsonb", default_value="[]"),
    ),
    "equity": (
        M("type", "plan_type"),
        M("name", "name", transformation="trim"),
        M("minPercent", "min_percent", "numeric"),
        M("maxPercent", "max_percent", "numeric"),
        M("capAmount", "cap_amount", "numeric"),
        M("awardShares", "award_shares", "integer"),
        M("trigger", "award_trigger"),
    ),
    "cap_info": (
        M("capStatus", "cap_status"),
        M("cap.amount", "cap", "numeric"),
        M("capPaid.amount", "cap_paid", "numeric"),
        M("capRemaining.amount", "cap_remaining", "numeric"),
        M("cap.currency", "currency"),
        M("anniversaryDate", "anniversary_date", "date"),
        M("nextAnniversaryDate", "next_anniversary_date", "date"),
    ),
    "transactions": (
        M("code", "code"),
        M("transactionType", "transaction_type"),
        M("lifecycleState.state", "lifecycle_state"),
        M("listing", "is_listing", "boolean"),
        M("transactionOwner.id", "owner_agent_source_id"),
        M("agents", "agents", "jsonb", default_value="[]"),
        M("price.amount", "price", "numeric"),
        M("price.currency", "currency"),
        M("grossCommission.amount", "gross_commission", "numeric"),
        M("grossCommissionPercentage", "gross_commission_pct", "numeric"),
        M("representationType", "representation_type"),
        M("mlsNumber", "mls_number", transformation="trim"),
        *_address(),
        M("contractAcceptanceDate", "contract_acceptance_date", "date"),
        M("closingDateEstimated", "closing_date_estimated", "date"),
        M("closedAt", "closed_at", "date"),
    ),
    "listings": (
        M("code", "code"),
        M("transactionType", "transaction_type"),
        M("lifecycleState.state", "lifecycle_state"),
        M("transactionOwner.id", "owner_agent_source_id"),
        M("agents", "agents", "jsonb", default_value="[]"),
        M("price.amount", "price", "numeric"),
        M("price.currency", "currency"),
        M("mlsNumber", "mls_number", transformation="trim"),
        *_address(),
        M("listingDate", "listing_date", "date"),
        M("listingExpirationDate", "listing_expiration_date", "date"),
    ),
    "revshare_contributions": (
        M("tier", "tier", "integer"),
        M("agentYentaId", "agent_source_id"),
        M("agent.firstName", "agent_first_name", transformation="trim"),
        M("agent.lastName", "agent_last_name", transformation="trim"),
        M("transactionId", "transaction_source_id"),
        M("transactionCode", "transaction_code"),
        M("payout.amount", "payout", "numeric"),
        M("payout.currency", "currency"),
        M("grossCommission.amount", "gross_commission", "numeric"),
        M("closedAt", "closed_at", "date"),
        M("missed", "missed", "boolean"),
        M("status", "status"),
    ),
}
DEFAULT_MAPPINGS: dict[str, tuple[M, ...]] = {entity: _system(entity) + _MAPPINGS[entity] for entity in LOAD_ORDER}

# A contribution names the agent who made it; one that arrives before its agent waits for it (the sandbox's
# child_before_parent fault does exactly that). Teams do not wait for their leader: a leader who left the
# network leaves the team in place.
PARENTS = {"revshare_contributions": ParentRef("agents", "agent_source_id")}


def _spec(entity: str) -> EntitySpec:
    return EntitySpec(
        integration=INTEGRATION,
        entity=entity,
        staging=tables.staging(entity),
        core=tables.core(entity),
        mappings=DEFAULT_MAPPINGS[entity],
        parent=PARENTS.get(entity),
        id_field=ID_FIELDS.get(entity, "id"),
        created_field=CREATED_FIELD,
    )


SPECS: dict[str, EntitySpec] = {entity: _spec(entity) for entity in LOAD_ORDER}
