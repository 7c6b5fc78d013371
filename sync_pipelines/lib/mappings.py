"""Field mappings: source JSON path -> typed core column, editable at runtime in bridge.field_mappings.

Each integration declares its default mappings; they are written to the table once (never overwriting an
operator's edit) and read back at the start of every batch, so a change takes effect on the next run with
no code change. Mappings compile to SQL: normalisation and validation run set-based inside Postgres.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from psycopg import sql

from sync_pipelines.lib import schema

DATA_TYPES = {
    "text": "text",
    "integer": "integer",
    "bigint": "bigint",
    "numeric": "numeric",
    "boolean": "boolean",
    "timestamptz": "timestamptz",
    "date": "date",
    "jsonb": "jsonb",
}
TRANSFORMATIONS = ("none", "trim", "lower", "upper", "trim_lower", "digits")
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


@dataclass(frozen=True)
class FieldMapping:
    source_field: str
    target_field: str
    data_type: str = "text"
    transformation: str | None = None
    default_value: str | None = None
    is_required: bool = False

    def validate(self) -> None:
        if self.data_type not in DATA_TYPES:
            raise ValueError(
                f"field mapping {self.source_field} -> {self.target_field}: data_type {self.data_type!r} "
                f"is not one of {', '.join(DATA_TYPES)}"
            )
        if (self.transformation or "none") not in TRANSFORMATIONS:
            raise ValueError(
                f"field mapping {self.source_field} -> {self.target_field}: transformation "
                f"{self.transformation!r} is not one of {', '.join(TRANSFORMATIONS)}"
            )


def json_path(source_field: str) -> list[str]:
    """`emails[0].value` -> ['emails', '0', 'value']."""
    parts = [m.group(1) or m.group(2) for m in _PATH_PART.finditer(source_field)]
    if not parts:
        raise ValueError(f"field mapping source {source_field!r} is not a JSON path like emails[0].value")
    return parts


def seed_defaults(conn: sa.Connection, integration: str, entity: str, defaults: Iterable[FieldMapping]) -> None:
    """Write the defaults for every target column that has no mapping yet; an operator's edit (another
    source path, a transformation, a deactivated row) is never overwritten."""
    table = schema.field_mappings
    existing = set(
        conn.execute(
            sa.select(table.c.target_field).where(table.c.integration == integration, table.c.entity_name == entity)
        ).scalars()
    )
    rows = []
    for position, mapping in enumerate(defaults):
        mapping.validate()
        if mapping.target_field in existing:
            continue
        rows.append(
            {
                "integration": integration,
                "entity_name": entity,
                "source_field": mapping.source_field,
                "target_field": mapping.target_field,
                "data_type": mapping.data_type,
                "transformation": mapping.transformation,
                "default_value": mapping.default_value,
                "is_required": mapping.is_required,
                "position": position,
            }
        )
    if rows:
        conn.execute(sa.insert(table), rows)


def active_mappings(conn: sa.Connection, integration: str, entity: str) -> list[FieldMapping]:
    table = schema.field_mappings
    rows = conn.execute(
        sa.select(table)
        .where(table.c.integration == integration, table.c.entity_name == entity, table.c.is_active)
        .order_by(table.c.position, table.c.target_field)
    ).mappings()
    out = []
    for row in rows:
        mapping = FieldMapping(
            row["source_field"],
            row["target_field"],
            row["data_type"],
            row["transformation"],
            row["default_value"],
            row["is_required"],
        )
        mapping.validate()
        out.append(mapping)
    return out


def _extract(mapping: FieldMapping, raw: sql.Composable) -> sql.Composable:
    path = sql.Literal("{" + ",".join(json_path(mapping.source_field)) + "}")
    if mapping.data_type == "jsonb":
        value: sql.Composable = sql.SQL("({} #> {})").format(raw, path)
        if mapping.default_value is not None:
            value = sql.SQL("coalesce({}, {}::jsonb)").format(value, sql.Literal(mapping.default_value))
        return value
    value = sql.SQL("({} #>> {})").format(raw, path)
    transform = mapping.transformation or "none"
    if transform == "trim":
        value = sql.SQL("btrim({})").format(value)
    elif transform == "lower":
        value = sql.SQL("lower({})").format(value)
    elif transform == "upper":
        value = sql.SQL("upper({})").format(value)
    elif transform == "trim_lower":
        value = sql.SQL("lower(btrim({}))").format(value)
    elif transform == "digits":
        value = sql.SQL("nullif(regexp_replace({}, '[^0-9]', '', 'g'), '')").format(value)
    if mapping.default_value is not None:
        value = sql.SQL("coalesce({}, {})").format(value, sql.Literal(mapping.default_value))
    return value


@dataclass(frozen=True)
class NormalisePlan:
    """Three layers, so each JSON path is read once and each value validated once per row."""

    extracts: list[sql.Composable]  # layer 1: e<i> = the value at the source path (text, or jsonb)
    checks: list[sql.Composable]  # layer 2: v<i> = whether e<i> casts to the target type
    columns: list[sql.Composable]  # layer 3: the typed target columns
    errors: sql.Composable  # layer 3: the array of validation errors


def normalise_plan(mappings: list[FieldMapping], raw: sql.Composable) -> NormalisePlan:
    extracts: list[sql.Composable] = []
    checks: list[sql.Composable] = []
    columns: list[sql.Composable] = []
    errors: list[sql.Composable] = []
    for i, mapping in enumerate(mappings):
        value, valid = sql.Identifier(f"e{i}"), sql.Identifier(f"v{i}")
        target = sql.Identifier(mapping.target_field)
        extracts.append(sql.SQL("{} AS {}").format(_extract(mapping, raw), value))
        if mapping.data_type in ("text", "jsonb"):
            columns.append(sql.SQL("{} AS {}").format(value, target))
        else:
            type_name = DATA_TYPES[mapping.data_type]
            checks.append(
                sql.SQL("({v} IS NULL OR pg_input_is_valid({v}, {t})) AS {ok}").format(
                    v=value, t=sql.Literal(type_name), ok=valid
                )
            )
            columns.append(
                sql.SQL("CASE WHEN {ok} THEN {v}::{tn} END AS {c}").format(
                    ok=valid, v=value, tn=sql.SQL(type_name), c=target
                )
            )
            errors.append(
                sql.SQL(
                    "CASE WHEN NOT {ok} THEN format('%%s: %%s is not a valid %%s', {src}, left({v}, 80), {t}) END"
                ).format(ok=valid, v=value, src=sql.Literal(mapping.source_field), t=sql.Literal(type_name))
            )
        if mapping.is_required:
            errors.append(
                sql.SQL("CASE WHEN {v} IS NULL THEN {msg} END").format(
                    v=value, msg=sql.Literal(f"{mapping.source_field}: required but missing")
                )
            )
    error_array = (
        sql.SQL("array_remove(ARRAY[{}]::text[], NULL)").format(sql.SQL(", ").join(errors))
        if errors
        else sql.SQL("ARRAY[]::text[]")
    )
    return NormalisePlan(extracts, checks, columns, error_array)
