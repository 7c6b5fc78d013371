"""What Follow Up Boss entities are, where they come from, and how their fields map to core columns."""

from __future__ import annotations

from sync_pipelines.defs.fub import tables as _tables  # noqa: F401  (registers FUB's tables on the metadata)
from sync_pipelines.lib import schema
from sync_pipelines.lib.load import EntitySpec, ParentRef
from sync_pipelines.lib.mappings import FieldMapping as M

INTEGRATION = "fub"

# Our entity name -> FUB's collection name.
COLLECTIONS = {
    "people": "people",
    "users": "users",
    "groups": "groups",
    "stages": "stages",
    "deals": "deals",
    "events": "events",
    "calls": "calls",
    "text_messages": "textMessages",
    "appointments": "appointments",
}
# Partitioned by account only: small lists that are always read whole.
REFERENCE_ENTITIES = ("users", "groups", "stages")
# Parents first, so a backfill run rarely has to hold a child back.
LOAD_ORDER = ("users", "groups", "stages", "people", "deals", "events", "calls", "text_messages", "appointments")

_SYSTEM = (
    M("id", "source_id", "text", is_required=True),
    M("created", "created_at_source", "timestamptz", is_required=True),
    M("updated", "_source_updated_at", "timestamptz", is_required=True),
)

DEFAULT_MAPPINGS: dict[str, tuple[M, ...]] = {
    "people": _SYSTEM
    + (
        M("name", "name", transformation="trim"),
        M("firstName", "first_name", transformation="trim"),
        M("lastName", "last_name", transformation="trim"),
        M("emails[0].value", "email", transformation="trim_lower"),
        M("phones[0].value", "phone", transformation="trim"),
        M("stage", "stage"),
        M("source", "lead_source"),
        M("price", "price", "numeric"),
        M("assignedUserId", "assigned_user_source_id"),
        M("tags", "tags", "jsonb", default_value="[]"),
    ),
    "users": _SYSTEM
    + (
        M("name", "name", transformation="trim"),
        M("email", "email", transformation="trim_lower"),
        M("role", "role"),
        M("status", "status"),
    ),
    "groups": _SYSTEM + (M("name", "name"), M("type", "type")),
    "stages": _SYSTEM + (M("name", "name"), M("orderWeight", "order_weight", "integer")),
    "deals": _SYSTEM
    + (
        M("name", "name"),
        M("stageId", "stage_source_id"),
        M("price", "price", "numeric"),
        M("people[0].id", "person_source_id"),
        M("users[0].id", "user_source_id"),
        M("projectedCloseDate", "projected_close_date", "timestamptz"),
    ),
    "events": _SYSTEM
    + (M("personId", "person_source_id"), M("type", "type"), M("source", "lead_source"), M("message", "message")),
    "calls": _SYSTEM
    + (
        M("personId", "person_source_id"),
        M("userId", "user_source_id"),
        M("phone", "phone"),
        M("isIncoming", "is_incoming", "boolean"),
        M("duration", "duration_seconds", "integer"),
        M("outcome", "outcome"),
    ),
    "text_messages": _SYSTEM
    + (
        M("personId", "person_source_id"),
        M("userId", "user_source_id"),
        M("message", "message"),
        M("isIncoming", "is_incoming", "boolean"),
    ),
    "appointments": _SYSTEM
    + (
        M("invitees[0].personId", "person_source_id"),
        M("invitees[1].userId", "user_source_id"),
        M("title", "title"),
        M("start", "starts_at", "timestamptz"),
        M("end", "ends_at", "timestamptz"),
        M("location", "location"),
    ),
}

_CHILDREN = ("deals", "events", "calls", "text_messages", "appointments")


def _spec(entity: str) -> EntitySpec:
    table = f"fub_{entity}"
    return EntitySpec(
        integration=INTEGRATION,
        entity=entity,
        staging=schema.metadata.tables[f"{schema.STAGING}.{table}"],
        core=schema.metadata.tables[f"{schema.CORE}.{table}"],
        mappings=DEFAULT_MAPPINGS[entity],
        parent=ParentRef("people", "person_source_id") if entity in _CHILDREN else None,
    )


SPECS: dict[str, EntitySpec] = {entity: _spec(entity) for entity in LOAD_ORDER}
