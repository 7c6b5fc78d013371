"""Staging and core tables of the Lofty entities, on the shared warehouse metadata (migration 0012).

Importing this module registers them; a second registration (the module re-imported under another name) is a
no-op. Lofty's ids are int64: they are kept as text source ids (exact, whatever their size) and, where a column
holds another record's id, as text too, so a join on source_id needs no cast.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Integer, Table, Text
from sqlalchemy.dialects.postgresql import JSONB

from sync_pipelines.lib import schema

PREFIX = "lofty_"
ENTITIES = ("users", "leads", "tags", "activities")


def _columns() -> dict[str, tuple[Column, ...]]:
    """Typed columns besides those every core entity table has (ids, created, change guard, soft delete)."""
    return {
        "users": (
            Column("member_id", BigInteger),
            Column("team_id", BigInteger),
            Column("email", Text),
            Column("first_name", Text),
            Column("last_name", Text),
            Column("phone", Text),
            Column("role", Integer),
            Column("role_name", Text),
            Column("is_admin", Boolean),
            Column("status", Integer),
            Column("account_status", Text),
            Column("group_id", BigInteger),
            Column("group_name", Text),
            Column("time_zone", Text),
        ),
        "leads": (
            Column("lead_user_id", BigInteger),
            Column("team_id", BigInteger),
            Column("first_name", Text),
            Column("last_name", Text),
            Column("email", Text),
            Column("phone", Text),
            Column("emails", JSONB),
            Column("phones", JSONB),
            Column("stage_id", BigInteger),
            Column("stage", Text),
            Column("lead_source_id", BigInteger),
            Column("lead_source", Text),
            Column("assigned_user_source_id", Text),
            Column("assigned_user", Text),
            Column("lender_user_source_id", Text),
            Column("score", Integer),
            Column("street_address", Text),
            Column("city", Text),
            Column("state", Text),
            Column("zip", Text),
            Column("lead_types", JSONB),
            Column("lead_inquiry", JSONB),
            Column("properties", JSONB),
            Column("tags", JSONB),
            Column("hidden", Boolean),
            Column("cannot_text", Boolean),
            Column("cannot_call", Boolean),
            Column("cannot_email", Boolean),
            Column("referred_by", Text),
            Column("assigned_at", DateTime(timezone=True)),
        ),
        "tags": (
            Column("lead_source_id", Text),
            Column("tag_id", BigInteger),
            Column("tag_name", Text),
            Column("creator_user_source_id", Text),
            Column("visible_type", Integer),
        ),
        "activities": (
            Column("lead_source_id", Text),
            Column("agent_source_id", Text),
            Column("channel", Text),
            Column("communication_type", Text),
            Column("direction", Text),
            Column("calling_outcome", Text),
            Column("duration_seconds", Integer),
            Column("lead_phone_number", Text),
            Column("email_event_type", Text),
            Column("email_subject", Text),
            Column("note", Text),
        ),
    }


# A lead's tags and activities are read by lead (the webhook path, the lead page of a contact log): without an index
# each would scan the child table.
INDEXES = {
    "tags": {"lead": ("account_id", "lead_source_id")},
    "activities": {"lead": ("account_id", "lead_source_id")},
}

TABLES = schema.entity_tables(PREFIX, {e: _columns()[e] for e in ENTITIES}, INDEXES)


def staging(entity: str) -> Table:
    return TABLES[entity][0]


def core(entity: str) -> Table:
    return TABLES[entity][1]
