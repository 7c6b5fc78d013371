"""What DotLoop entities are, where they come from, and how their fields map to core columns.

The client (client.py) adds a few fields to what DotLoop sends, each named with a leading underscore, and changes
nothing else:
- loops: `_profileId` (the profile the loop was read from: DotLoop's loop body does not name it), `details` (the
  loop's detail sections, as `include_details=true` or `/detail` returns them) and `_detail`, those sections
  flattened: street, city, price, dates. DotLoop's section values are all strings typed by people (`06/15/2024`,
  `$350,000.00`); `_detail` holds them as ISO dates and plain numbers, or null where one cannot be read, so an
  odd value in a detail field never sends the whole loop to the DLQ (the value as typed stays in staging).
- participants: `_loopId` and `_profileId` (a participant body names neither), and `_created` / `_updated`, its
  loop's `created` / `updated`: a participant has no times of its own, it is created with its loop's month as its
  period, and any change to it moves its loop's `updated`.
"""

from __future__ import annotations

from sync_pipelines.defs.dotloop import tables
from sync_pipelines.lib.integration.declaration import Incremental, Partitioning
from sync_pipelines.lib.load import EntitySpec, ParentRef
from sync_pipelines.lib.mappings import FieldMapping as M

INTEGRATION = "dotloop"

# Parents first: a participant names its loop.
LOAD_ORDER = ("profiles", "loops", "participants", "contacts")
PATHS = {
    "profiles": "GET /profile (the user's profiles, not batched)",
    "loops": "GET /profile/{id}/loop?include_details=true per profile, sort created or updated, filter *_min",
    "participants": "GET /profile/{id}/loop/{id}/participant for each loop the loop walk returns",
    "contacts": "GET /contact (the user's contacts, in id order)",
}
# Loops (and their participants, by their loop's month) are listed by creation time (`created_min`); profiles and
# contacts have no creation time and no creation filter, so they are read whole per account.
PARTITIONING = {
    "profiles": Partitioning.ACCOUNT,
    "loops": Partitioning.PERIOD_ACCOUNT,
    "participants": Partitioning.PERIOD_ACCOUNT,
    "contacts": Partitioning.ACCOUNT,
}
# Loops have `updated_min`; participants follow their loops (a participant change moves its loop's `updated`);
# profiles and contacts have no updated filter and are read again whole, the change guard skipping what did not
# change (contacts are also kept current by their webhooks).
INCREMENTAL = {
    "profiles": Incremental.REWALK,
    "loops": Incremental.UPDATED_AFTER,
    "participants": Incremental.UPDATED_AFTER,
    "contacts": Incremental.REWALK,
}
CREATED_FIELDS = {"participants": "_created"}
UPDATED_FIELDS = {"participants": "_updated"}
DESCRIPTIONS = {
    "loops": "Loops with their detail sections flattened (address, price, contract and closing dates, MLS number); "
    "a merged loop is soft-deleted and names the loop it went into (merged_into_source_id).",
    "participants": "The people on each loop and their role; period = the month their loop was created.",
}


def _system(entity: str) -> tuple[M, ...]:
    # Profiles and contacts carry no creation time, profiles no update time either: those columns stay NULL.
    timed = entity in ("loops", "participants")
    return (
        M("id", "source_id", "text", is_required=True),
        M(CREATED_FIELDS.get(entity, "created"), "created_at_source", "timestamptz", is_required=timed),
        M(UPDATED_FIELDS.get(entity, "updated"), "_source_updated_at", "timestamptz", is_required=entity != "profiles"),
    )


_MAPPINGS: dict[str, tuple[M, ...]] = {
    "profiles": (
        M("name", "name", transformation="trim"),
        M("type", "profile_type"),
        M("company", "company", transformation="trim"),
        M("phone", "phone", transformation="trim"),
        M("fax", "fax", transformation="trim"),
        M("address", "address", transformation="trim"),
        M("city", "city", transformation="trim"),
        M("state", "state", transformation="upper"),
        M("zipCode", "zip", transformation="trim"),
        M("default", "is_default", "boolean"),
        M("requiresTemplate", "requires_template", "boolean"),
    ),
    "loops": (
        M("_profileId", "profile_source_id"),
        M("name", "name", transformation="trim"),
        M("status", "status"),
        M("transactionType", "transaction_type"),
        M("totalTaskCount", "total_task_count", "integer"),
        M("completedTaskCount", "completed_task_count", "integer"),
        M("loopUrl", "loop_url"),
        M("_detail.street_number", "street_number", transformation="trim"),
        M("_detail.street_name", "street_name", transformation="trim"),
        M("_detail.unit_number", "unit_number", transformation="trim"),
        M("_detail.city", "city", transformation="trim"),
        M("_detail.state", "state", transformation="upper"),
        M("_detail.zip", "zip", transformation="trim"),
        M("_detail.county", "county", transformation="trim"),
        M("_detail.country", "country", transformation="upper"),
        M("_detail.mls_number", "mls_number", transformation="trim"),
        M("_detail.price", "price", "numeric"),
        M("_detail.contract_agreement_date", "contract_agreement_date", "date"),
        M("_detail.closing_date", "closing_date", "date"),
        M("_detail.listing_date", "listing_date", "date"),
        M("_detail.expiration_date", "expiration_date", "date"),
        M("_detail.transaction_number", "transaction_number", transformation="trim"),
    ),
    "participants": (
        M("_loopId", "loop_source_id", is_required=True),
        M("_profileId", "profile_source_id"),
        M("fullName", "full_name", transformation="trim"),
        M("email", "email", transformation="trim_lower"),
        M("role", "role"),
        M("phone", "phone", transformation="trim"),
    ),
    "contacts": (
        M("firstName", "first_name", transformation="trim"),
        M("lastName", "last_name", transformation="trim"),
        M("email", "email", transformation="trim_lower"),
        M("home", "home_phone", transformation="trim"),
        M("office", "office_phone", transformation="trim"),
        M("fax", "fax", transformation="trim"),
        M("address", "address", transformation="trim"),
        M("city", "city", transformation="trim"),
        M("state", "state", transformation="upper"),
        M("zipCode", "zip", transformation="trim"),
        M("country", "country", transformation="upper"),
    ),
}
DEFAULT_MAPPINGS: dict[str, tuple[M, ...]] = {entity: _system(entity) + _MAPPINGS[entity] for entity in LOAD_ORDER}

# A participant read before its loop is in core (DotLoop can announce a participant of a loop that does not exist
# yet: the sandbox's child_before_parent fault) waits for it in bridge.pending_children.
PARENTS = {"participants": ParentRef("loops", "loop_source_id")}


def _spec(entity: str) -> EntitySpec:
    return EntitySpec(
        integration=INTEGRATION,
        entity=entity,
        staging=tables.staging(entity),
        core=tables.core(entity),
        mappings=DEFAULT_MAPPINGS[entity],
        parent=PARENTS.get(entity),
        id_field="id",
        created_field=CREATED_FIELDS.get(entity, "created"),
    )


SPECS: dict[str, EntitySpec] = {entity: _spec(entity) for entity in LOAD_ORDER}
