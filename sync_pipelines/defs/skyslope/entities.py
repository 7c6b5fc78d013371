"""What SkySlope entities are, where they come from, and how their fields map to core columns.

Every record reaches the load path with the fields the client adds (feed.py, `stamp`): `_created` and `_updated`
(createdOn / modifiedOn as ISO 8601 UTC text, NULL for .NET's "no date") and `_dates` (the date-only fields as
`YYYY-MM-DD`). Mappings read those rather than SkySlope's own zone-less dates, which Postgres would read in the
session's time zone and would take `0001-01-01` for a real date. The record is otherwise stored as received.

Seed 001's SkySlope entities are transactions, listings and account users: here sales (SkySlope's name for a
transaction file), listings, users, and the offices files and users name.
"""

from __future__ import annotations

from sync_pipelines.defs.skyslope import tables
from sync_pipelines.lib.integration.declaration import Incremental, Partitioning
from sync_pipelines.lib.load import EntitySpec
from sync_pipelines.lib.mappings import FieldMapping as M

INTEGRATION = "skyslope"

# The order files name each other in (a file names its office and agent), though none waits for another.
LOAD_ORDER = ("offices", "users", "listings", "sales")
ID_FIELDS = {"offices": "officeGuid", "users": "userGuid", "listings": "listingGuid", "sales": "saleGuid"}
CREATED_FIELD = "_created"
# Sales and listings come from the bulk export, which filters by creation time: month x account. Users and
# offices are lists with no filter at all, read whole: account only.
PARTITIONING = {
    entity: Partitioning.PERIOD_ACCOUNT if entity in ("sales", "listings") else Partitioning.ACCOUNT
    for entity in LOAD_ORDER
}
# The bulk export filters by modifiedAfter; users and offices have no such filter, so their delta reads them again
# and the change guard skips what did not change.
INCREMENTAL = {
    entity: Incremental.UPDATED_AFTER if entity in ("sales", "listings") else Incremental.REWALK
    for entity in LOAD_ORDER
}
# No entity declares a parent (EntitySpec.parent): a sale names its listing, agent and office, but a sale is a
# transaction in its own right, and one whose listing this key cannot see (another office's, a narrower key's scope)
# would otherwise wait in pending_children forever, out of core and out of core.transaction. The GUIDs are kept as
# columns to join on.


def _system() -> tuple[M, ...]:
    # `_updated` falls back to the creation time when modifiedOn is missing or "no date" (feed.stamp), so it is not
    # required: a file never modified is still a file.
    return (
        M("_created", "created_at_source", "timestamptz", is_required=True),
        M("_updated", "_source_updated_at", "timestamptz"),
    )


def _file() -> tuple[M, ...]:
    return (
        M("agentGuid", "agent_guid"),
        M("createdByGuid", "created_by_guid"),
        M("status", "status", transformation="trim"),
        M("stage.name", "stage"),
        M("stage.id", "stage_id", "integer"),
        M("checklistType", "checklist_type"),
        M("mlsNumber", "mls_number", transformation="trim"),
        M("officeId", "office_id", "bigint"),
        M("officeGuid", "office_guid"),
        M("source", "lead_source"),
        M("email", "file_email", transformation="trim_lower"),
        M("agent.email", "agent_email", transformation="trim_lower"),
        M("agent.firstName", "agent_first_name", transformation="trim"),
        M("agent.lastName", "agent_last_name", transformation="trim"),
        M("property.streetNumber", "street_number", transformation="trim"),
        M("property.direction", "direction", transformation="trim"),
        M("property.streetAddress", "street_name", transformation="trim"),
        M("property.unit", "unit", transformation="trim"),
        M("property.city", "city", transformation="trim"),
        M("property.state", "state", transformation="upper"),
        M("property.zip", "zip", transformation="trim"),
        M("property.county", "county", transformation="trim"),
        M("property.yearBuilt", "year_built", "integer"),
        M("property.areasqft", "area_sqft", "integer"),
        M("sellers", "sellers", "jsonb", default_value="[]"),
        M("customFields", "custom_fields", "jsonb"),
    )


_MAPPINGS: dict[str, tuple[M, ...]] = {
    "offices": (
        M("officeId", "office_id", "bigint"),
        M("officeName", "name", transformation="trim"),
        M("streetAddress", "street_address", transformation="trim"),
        M("city", "city", transformation="trim"),
        M("state", "state", transformation="upper"),
        M("zip", "zip", transformation="trim"),
        M("phone", "phone", transformation="trim"),
    ),
    "users": (
        M("email", "email", transformation="trim_lower"),
        M("firstName", "first_name", transformation="trim"),
        M("lastName", "last_name", transformation="trim"),
        M("publicId", "public_id"),
        M("userType", "user_type"),
        M("officeGuid", "office_guid"),
        M("isActive", "is_active", "boolean"),
        M("phone", "phone", transformation="trim"),
        M("alternatePhone", "alternate_phone", transformation="trim"),
        M("streetNumber", "street_number", transformation="trim"),
        M("streetName", "street_name", transformation="trim"),
        M("city", "city", transformation="trim"),
        M("state", "state", transformation="upper"),
        M("zipCode", "zip", transformation="trim"),
    ),
    "listings": (
        *_file(),
        M("coListingAgentGuid", "co_listing_agent_guid"),
        M("referringAgentGuid", "referring_agent_guid"),
        M("type", "listing_type"),
        M("listingPrice", "listing_price", "numeric"),
        M("commission.listingCommissionPercent", "listing_commission_percent", "numeric"),
        M("commission.buyerCommissionPercent", "buyer_commission_percent", "numeric"),
        M("_dates.listingDate", "listing_date", "date"),
        M("_dates.expirationDate", "expiration_date", "date"),
    ),
    "sales": (
        *_file(),
        M("listingGuid", "listing_guid"),
        M("statusId", "status_id", "integer"),
        M("dealType", "deal_type"),
        M("escrowNumber", "escrow_number", transformation="trim"),
        M("salePrice", "sale_price", "numeric"),
        M("listingPrice", "listing_price", "numeric"),
        M("commission.commissionAmount", "commission_amount", "numeric"),
        M("commission.commissionPercent", "commission_percent", "numeric"),
        M("isOfficeLead", "is_office_lead", "boolean"),
        M("coBrokerCompany", "co_broker_company"),
        M("buyers", "buyers", "jsonb", default_value="[]"),
        M("commissionSplits", "commission_splits", "jsonb", default_value="[]"),
        M("_dates.contractAcceptanceDate", "contract_acceptance_date", "date"),
        M("_dates.escrowClosingDate", "escrow_closing_date", "date"),
        M("_dates.actualClosingDate", "actual_closing_date", "date"),
    ),
}
DEFAULT_MAPPINGS: dict[str, tuple[M, ...]] = {
    entity: (M(ID_FIELDS[entity], "source_id", "text", is_required=True), *_system(), *_MAPPINGS[entity])
    for entity in LOAD_ORDER
}


def _spec(entity: str) -> EntitySpec:
    return EntitySpec(
        integration=INTEGRATION,
        entity=entity,
        staging=tables.staging(entity),
        core=tables.core(entity),
        mappings=DEFAULT_MAPPINGS[entity],
        id_field=ID_FIELDS[entity],
        created_field=CREATED_FIELD,
    )


SPECS: dict[str, EntitySpec] = {entity: _spec(entity) for entity in LOAD_ORDER}
