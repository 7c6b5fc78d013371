"""Follow Up Boss's staging and core tables, on the shared warehouse metadata (lib/schema.py holds only what every
integration shares). Importing this module registers them; migration 0002 created them."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Integer, Numeric, Text
from sqlalchemy.dialects.postgresql import JSONB

from sync_pipelines.lib.schema import core_entity_table, staging_table

FUB_ENTITIES = (
    "people",
    "users",
    "groups",
    "stages",
    "deals",
    "events",
    "calls",
    "text_messages",
    "appointments",
)
for _entity in FUB_ENTITIES:
    staging_table(f"fub_{_entity}")

core_entity_table(
    "fub_people",
    Column("name", Text),
    Column("first_name", Text),
    Column("last_name", Text),
    Column("email", Text),
    Column("phone", Text),
    Column("stage", Text),
    Column("lead_source", Text),
    Column("price", Numeric(14, 2)),
    Column("assigned_user_source_id", Text),
    Column("tags", JSONB),
)
core_entity_table(
    "fub_users", Column("name", Text), Column("email", Text), Column("role", Text), Column("status", Text)
)
core_entity_table("fub_groups", Column("name", Text), Column("type", Text))
core_entity_table("fub_stages", Column("name", Text), Column("order_weight", Integer))
core_entity_table(
    "fub_deals",
    Column("name", Text),
    Column("stage_source_id", Text),
    Column("price", Numeric(14, 2)),
    Column("person_source_id", Text),
    Column("user_source_id", Text),
    Column("projected_close_date", DateTime(timezone=True)),
)
core_entity_table(
    "fub_events",
    Column("person_source_id", Text),
    Column("type", Text),
    Column("lead_source", Text),
    Column("message", Text),
)
core_entity_table(
    "fub_calls",
    Column("person_source_id", Text),
    Column("user_source_id", Text),
    Column("phone", Text),
    Column("is_incoming", Boolean),
    Column("duration_seconds", Integer),
    Column("outcome", Text),
)
core_entity_table(
    "fub_text_messages",
    Column("person_source_id", Text),
    Column("user_source_id", Text),
    Column("message", Text),
    Column("is_incoming", Boolean),
)
core_entity_table(
    "fub_appointments",
    Column("person_source_id", Text),
    Column("user_source_id", Text),
    Column("title", Text),
    Column("starts_at", DateTime(timezone=True)),
    Column("ends_at", DateTime(timezone=True)),
    Column("location", Text),
)
