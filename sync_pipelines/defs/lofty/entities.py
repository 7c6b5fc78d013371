"""What Lofty entities are, where they come from, and how their fields map to core columns.

Lofty's ids are int64 JSON numbers; the load path keeps them as exact text. Times are ISO 8601 UTC. A lead's
`updateTime` is not in Lofty's published lead schema (its nested objects carry one): where it is missing a lead is
still loaded, and only the delta's stopping point depends on it (docs/integrations/lofty.md).
"""

from __future__ import annotations

from sync_pipelines.defs.lofty import tables
from sync_pipelines.defs.lofty.client import TAG_KEY
from sync_pipelines.lib.integration.declaration import Incremental, Partitioning
from sync_pipelines.lib.load import EntitySpec, ParentRef
from sync_pipelines.lib.mappings import FieldMapping as M

INTEGRATION = "lofty"

# Members (our users) first: leads name their agent. Tags and activities are children of a lead.
LOAD_ORDER = ("users", "leads", "tags", "activities")
SOURCE_NAMES = {"users": "members"}
ID_FIELDS = {"users": "memberUserId", "leads": "leadId", "tags": TAG_KEY, "activities": "id"}
CREATED_FIELDS = {"users": "createTime", "leads": "createTime", "tags": "createTime", "activities": "activityTime"}
# Leads are read by month of creation: a month is a walk down the creation order to it. Members are a short list
# read whole. Tags and activities are read whole too, from every lead: a tag added today to a lead of 2022 has
# today's month, so a month of leads would not hold the tags of that month, and a complete read of it would
# soft-delete tags it never asked for. Activities cost one call per lead; a delta asks only for the leads whose
# last activity moved.
PARTITIONING = {
    "users": Partitioning.ACCOUNT,
    "leads": Partitioning.PERIOD_ACCOUNT,
    "tags": Partitioning.ACCOUNT,
    "activities": Partitioning.ACCOUNT,
}
# No updated-after filter anywhere: deltas walk the LastActivity order down to the cursor (members: read again).
INCREMENTAL = {
    "users": Incremental.REWALK,
    "leads": Incremental.UPDATED_AFTER,
    "tags": Incremental.UPDATED_AFTER,
    "activities": Incremental.UPDATED_AFTER,
}
DESCRIPTIONS = {
    "users": "The team's members (agents); source id is the memberUserId that leads and activities name.",
    "leads": "Lofty's contact record. The delta walks LastActivity order down to its cursor; webhooks (Lead Info, "
    "Pipeline Change) bring changes within minutes; a full re-walk catches the rest.",
    "tags": "One row per tag on a lead (tags are objects: id, name, creator, times); key `<leadId>:<tagId>`.",
    "activities": "Calls, texts and emails of a lead (/v2.0/leads/{id}/activities).",
}

_MAPPINGS: dict[str, tuple[M, ...]] = {
    "users": (
        M("createTime", "created_at_source", "timestamptz"),
        M("updateTime", "_source_updated_at", "timestamptz"),
        M("id", "member_id", "bigint"),
        M("teamId", "team_id", "bigint"),
        M("email", "email", transformation="trim_lower"),
        M("firstName", "first_name", transformation="trim"),
        M("lastName", "last_name", transformation="trim"),
        M("phoneNumber", "phone", transformation="trim"),
        M("role", "role", "integer"),
        M("roleName", "role_name"),
        M("isAdmin", "is_admin", "boolean"),
        M("status", "status", "integer"),
        M("accountStatus", "account_status"),
        M("groupId", "group_id", "bigint"),
        M("groupName", "group_name", transformation="trim"),
        M("timeZoneId", "time_zone"),
    ),
    "leads": (
        M("createTime", "created_at_source", "timestamptz", is_required=True),
        M("updateTime", "_source_updated_at", "timestamptz"),
        M("leadUserId", "lead_user_id", "bigint"),
        M("teamId", "team_id", "bigint"),
        M("firstName", "first_name", transformation="trim"),
        M("lastName", "last_name", transformation="trim"),
        M("emails[0]", "email", transformation="trim_lower"),
        M("phones[0]", "phone", transformation="trim"),
        M("emails", "emails", "jsonb", default_value="[]"),
        M("phones", "phones", "jsonb", default_value="[]"),
        M("stageId", "stage_id", "bigint"),
        M("stage", "stage"),
        M("leadSource", "lead_source_id", "bigint"),
        M("source", "lead_source"),
        M("assignedUserId", "assigned_user_source_id"),
        M("assignedUser", "assigned_user", transformation="trim"),
        M("lenderUserId", "lender_user_source_id"),
        M("score", "score", "integer"),
        M("streetAddress", "street_address", transformation="trim"),
        M("city", "city", transformation="trim"),
        M("state", "state", transformation="upper"),
        M("zipCode", "zip", transformation="trim"),
        M("leadTypes", "lead_types", "jsonb", default_value="[]"),
        M("leadInquiry", "lead_inquiry", "jsonb"),
        M("leadPropertyList", "properties", "jsonb", default_value="[]"),
        M("tags", "tags", "jsonb", default_value="[]"),
        M("hiddenFlag", "hidden", "boolean"),
        M("cannotText", "cannot_text", "boolean"),
        M("cannotCall", "cannot_call", "boolean"),
        M("cannotEmail", "cannot_email", "boolean"),
        M("referredBy", "referred_by"),
        M("assignTime", "assigned_at", "timestamptz"),
    ),
    "tags": (
        M("createTime", "created_at_source", "timestamptz", is_required=True),
        M("updateTime", "_source_updated_at", "timestamptz"),
        M("leadId", "lead_source_id", is_required=True),
        M("tagId", "tag_id", "bigint", is_required=True),
        M("tagName", "tag_name", transformation="trim"),
        M("creatorUserId", "creator_user_source_id"),
        M("visibleType", "visible_type", "integer"),
    ),
    "activities": (
        M("activityTime", "created_at_source", "timestamptz", is_required=True),
        M("activityTime", "_source_updated_at", "timestamptz"),
        M("leadId", "lead_source_id", is_required=True),
        M("agentId", "agent_source_id"),
        M("channel", "channel", transformation="lower"),
        M("communicationType", "communication_type"),
        M("direction", "direction", transformation="lower"),
        M("callingOutcome", "calling_outcome"),
        M("duration", "duration_seconds", "integer"),
        M("leadPhoneNumber", "lead_phone_number", transformation="trim"),
        M("emailEventType", "email_event_type"),
        M("emailSubject", "email_subject"),
        M("note", "note"),
    ),
}
DEFAULT_MAPPINGS: dict[str, tuple[M, ...]] = {
    entity: (M(ID_FIELDS[entity], "source_id", "text", is_required=True), *_MAPPINGS[entity]) for entity in LOAD_ORDER
}


def _spec(entity: str) -> EntitySpec:
    return EntitySpec(
        integration=INTEGRATION,
        entity=entity,
        staging=tables.staging(entity),
        core=tables.core(entity),
        mappings=DEFAULT_MAPPINGS[entity],
        # A tag or an activity waits for its lead (a webhook can name an activity before the lead's page is read).
        parent=ParentRef("leads", "lead_source_id") if entity in ("tags", "activities") else None,
        id_field=ID_FIELDS[entity],
        created_field=CREATED_FIELDS[entity],
    )


SPECS: dict[str, EntitySpec] = {entity: _spec(entity) for entity in LOAD_ORDER}
